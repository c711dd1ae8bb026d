"""Split a SQL script into statements, so a failing migration can name the statement.

Kept because PostgreSQL cannot do it for us: run as one script, an error carries a position
(asyncpg's ``PostgresError.position``) only when it is found while parsing; errors found while
running (a constraint that existing rows break, a duplicate or missing table, a failing ``DO``
block) carry none, and those are the usual ways a migration fails
(``tests/integration/test_migrations.py`` holds both facts).

Aware of what may hide a semicolon: quoted strings and identifiers, dollar-quoted bodies,
line and block comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Statement", "split_statements"]

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a script and the line it starts on (1-based)."""

    sql: str
    line: int


def _skip_quoted(script: str, start: int, quote: str) -> int:
    """Index just past the quoted run opening at ``start`` (doubled quotes escape)."""
    index = start + 1
    while index < len(script):
        if script[index] == quote:
            if index + 1 < len(script) and script[index + 1] == quote:
                index += 2
                continue
            return index + 1
        index += 1
    return index


def _skip_block_comment(script: str, start: int) -> int:
    depth, index = 0, start
    while index < len(script):
        if script.startswith("/*", index):
            depth, index = depth + 1, index + 2
        elif script.startswith("*/", index):
            depth, index = depth - 1, index + 2
            if depth == 0:
                return index
        else:
            index += 1
    return index


def _skip_line_comment(script: str, start: int) -> int:
    end = script.find("\n", start)
    return len(script) if end == -1 else end + 1


def _skip_dollar_quoted(script: str, start: int) -> int | None:
    """Index past a dollar-quoted body opening at ``start``, or None if none opens there."""
    match = _DOLLAR_TAG.match(script, start)
    if match is None:
        return None
    tag = match.group(0)
    end = script.find(tag, match.end())
    return len(script) if end == -1 else end + len(tag)


def _first_code(sql: str, start: int, end: int) -> int:
    """Index of the first character in ``sql[start:end]`` that is neither space nor comment."""
    index = start
    while index < end:
        if sql[index].isspace():
            index += 1
        elif sql.startswith("--", index):
            index = _skip_line_comment(sql, index)
        elif sql.startswith("/*", index):
            index = _skip_block_comment(sql, index)
        else:
            return index
    return end


def split_statements(script: str) -> list[Statement]:
    """The statements of ``script`` in order, without their terminating semicolons."""
    statements: list[Statement] = []
    start, index = 0, 0
    while index < len(script):
        char = script[index]
        if char in "'\"":
            index = _skip_quoted(script, index, char)
        elif script.startswith("--", index):
            index = _skip_line_comment(script, index)
        elif script.startswith("/*", index):
            index = _skip_block_comment(script, index)
        elif char == "$" and (past := _skip_dollar_quoted(script, index)) is not None:
            index = past
        elif char == ";":
            _append(statements, script, start, index)
            index += 1
            start = index
        else:
            index += 1
    _append(statements, script, start, len(script))
    return statements


def _append(statements: list[Statement], script: str, start: int, end: int) -> None:
    code = _first_code(script, start, end)
    if code >= end:
        return
    line = script.count("\n", 0, code) + 1
    statements.append(Statement(sql=script[code:end].strip(), line=line))
