"""The pydantic row models mirror the live catalog: columns, types, nullability, enum labels."""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
import uuid
from typing import Any

import pytest

from shared.db import connect
from shared.enums import GenerationStatus, Genre, Mood, Occasion, PaymentKind, PaymentStatus
from shared.rows import ROW_MODELS, TableRow

# How a PostgreSQL type reads in Python through asyncpg (with our json codecs).
PYTHON_TYPE_OF = {
    "uuid": uuid.UUID,
    "text": str,
    "date": dt.date,
    "timestamp with time zone": dt.datetime,
    "integer": int,
    "smallint": int,
    "bigint": int,
    "double precision": float,
    "jsonb": Any,
}
ENUMS = {
    "generation_status": GenerationStatus,
    "occasion": Occasion,
    "genre": Genre,
    "mood": Mood,
    "payment_kind": PaymentKind,
    "payment_status": PaymentStatus,
}


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of a field annotation."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        assert len(members) == 1, annotation
        return members[0], nullable
    return annotation, annotation is Any


def _matches(pg_type: str, udt_name: str, python_type: Any) -> bool:
    if pg_type == "USER-DEFINED":
        return ENUMS.get(udt_name) is python_type
    expected = PYTHON_TYPE_OF[pg_type]
    if expected is Any:
        return python_type is Any or typing.get_origin(python_type) is dict
    return bool(python_type is expected)


@pytest.mark.parametrize("model", ROW_MODELS, ids=lambda model: model.table)
async def test_row_model_matches_its_table(database_url: str, model: type[TableRow]) -> None:
    conn = await connect(database_url)
    try:
        columns = await conn.fetch(
            "SELECT column_name, data_type, udt_name, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            model.table,
        )
    finally:
        await conn.close()
    assert columns, f"no table {model.table}"
    fields = typing.get_type_hints(model)
    fields.pop("table", None)
    assert [c["column_name"] for c in columns] == list(model.model_fields), "columns differ"
    for column in columns:
        name = column["column_name"]
        python_type, nullable = _split_optional(fields[name])
        assert _matches(column["data_type"], column["udt_name"], python_type), (
            f"{model.table}.{name}: {column['data_type']} ({column['udt_name']}) vs {python_type}"
        )
        if column["data_type"] != "jsonb":
            assert nullable == (column["is_nullable"] == "YES"), f"{model.table}.{name} nullability"


@pytest.mark.parametrize("name", sorted(ENUMS))
async def test_enum_labels_match(database_url: str, name: str) -> None:
    conn = await connect(database_url)
    try:
        labels = await conn.fetch(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
            " WHERE t.typname = $1 ORDER BY e.enumsortorder",
            name,
        )
    finally:
        await conn.close()
    python_enum: type[enum.StrEnum] = ENUMS[name]
    assert [row["enumlabel"] for row in labels] == [member.value for member in python_enum]
