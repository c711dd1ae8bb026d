"""The migration runner's statement splitter keeps semicolons that are not terminators."""

from __future__ import annotations

from shared.migrations.sqlsplit import split_statements


def test_splits_on_terminating_semicolons_and_reports_start_lines() -> None:
    script = "-- heading\nCREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\n"
    statements = split_statements(script)
    assert [s.sql for s in statements] == ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)"]
    assert [s.line for s in statements] == [2, 4]


def test_keeps_semicolons_inside_quotes_comments_and_dollar_bodies() -> None:
    script = (
        "SELECT 'a;b', \"odd;name\" FROM t; -- trailing; comment\n"
        "/* block; /* nested; */ still; */ SELECT 2;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; SELECT 2 $body$;\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "SELECT 'it''s; fine'"
    )
    statements = split_statements(script)
    assert len(statements) == 5
    assert statements[0].sql == "SELECT 'a;b', \"odd;name\" FROM t"
    assert statements[1].sql == "SELECT 2"
    assert "SELECT 1; SELECT 2" in statements[2].sql
    assert statements[3].sql == "DO $$ BEGIN PERFORM 1; END $$"
    assert statements[4].sql == "SELECT 'it''s; fine'"


def test_a_script_of_only_comments_has_no_statements() -> None:
    assert split_statements("-- nothing\n/* here */\n;\n") == []


def test_positional_parameters_are_not_dollar_quotes() -> None:
    statements = split_statements("SELECT $1; SELECT $2")
    assert [s.sql for s in statements] == ["SELECT $1", "SELECT $2"]
