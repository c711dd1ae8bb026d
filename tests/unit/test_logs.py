"""JSON log lines carry the unit of work's ids wherever they are written."""

from __future__ import annotations

import datetime as dt
import io
import logging

import orjson
import pytest

from shared.logs import JsonFormatter, log_context


def _capture(fields: dict[str, object] | None = None) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("generator", fields))
    logger = logging.getLogger("test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_lines_are_json_with_context_fields_and_extras() -> None:
    logger, stream = _capture()
    with log_context(correlation_id="req-1", order_id="o-1"), log_context(variant_id="v-1"):
        logger.info("variant done", extra={"outcome": "complete", "attempt": 2})
    logger.info("outside")
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "variant done"
    assert first["service"] == "generator"
    assert (first["correlation_id"], first["order_id"], first["variant_id"]) == (
        "req-1",
        "o-1",
        "v-1",
    )
    assert (first["outcome"], first["attempt"]) == ("complete", 2)
    assert "order_id" not in second


def test_exceptions_are_kept_in_the_line() -> None:
    logger, stream = _capture()
    try:
        int("boom")
    except ValueError:
        logger.exception("failed")
    line = orjson.loads(stream.getvalue())
    assert line["level"] == "error"
    assert "ValueError: invalid literal" in line["exc"]


def test_a_field_named_like_a_standard_key_is_kept_beside_it_not_instead() -> None:
    logger, stream = _capture()
    with log_context(service="payments"):
        logger.info("done", extra={"level": "debug", "logger": "spoof", "ts": "then"})
    (line,) = (orjson.loads(text) for text in stream.getvalue().splitlines())
    assert (line["level"], line["service"], line["logger"]) == ("info", "generator", "test.logs")
    assert line["ts"] != "then"
    assert (line["extra_level"], line["extra_service"], line["extra_logger"]) == (
        "debug",
        "payments",
        "spoof",
    )


def test_fields_of_the_process_are_on_every_line() -> None:
    logger, stream = _capture({"worker": 2, "pid": 4321})
    logger.info("one")
    with log_context(order_id="o-1"):
        logger.info("two", extra={"status": 200})
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line["worker"], line["pid"]) for line in lines] == [
        ("one", 2, 4321),
        ("two", 2, 4321),
    ]
    assert lines[1]["order_id"] == "o-1"


@pytest.mark.parametrize(
    "created",
    [1765000000.0, 1765000000.0004995, 1765000000.9995, 1765000000.9999996, 1673026914.277],
)
def test_the_time_is_rfc_3339_in_utc_to_the_millisecond(created: float) -> None:
    record = logging.makeLogRecord({"msg": "tick", "created": created})
    line = orjson.loads(JsonFormatter("generator").format(record))
    expected = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
    assert line["ts"] == expected
    assert dt.datetime.fromisoformat(line["ts"]).tzinfo == dt.UTC
