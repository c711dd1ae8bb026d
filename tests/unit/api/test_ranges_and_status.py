"""HTTP Range parsing and the order status derived from its variants."""

from __future__ import annotations

import pytest

from services.api.common.problems import BadRequest, RangeNotSatisfiable
from services.api.orders.views import derive_status
from services.api.sharing.media import ByteRange, parse_range, storage_key
from shared.enums import GenerationStatus as S


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=10-", ByteRange(10, 100)),
        ("bytes=-10", ByteRange(90, 100)),
        ("bytes=-500", ByteRange(0, 100)),
        ("bytes=90-500", ByteRange(90, 100)),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_ranges_are_parsed_against_the_object_size(
    header: str | None, expected: ByteRange | None
) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0"])
def test_unsatisfiable_ranges_are_416_with_the_size(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, 100)
    assert raised.value.headers["Content-Range"] == "bytes */100"


@pytest.mark.parametrize(
    "raw",
    [b"/media/%2e%2e/x", b"/media/a%2Fb", b"/media/a%5cb", b"/media/%252e", b"/media/a%00"],
)
def test_encoded_dots_slashes_and_percents_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        storage_key(raw, "a/b.mp3")


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../b", "a//b", ".env", "a\\b"])
def test_keys_outside_storage_are_refused(key: str) -> None:
    with pytest.raises(BadRequest):
        storage_key(b"/media/whatever", key)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "pending"),
        ([S.PENDING, S.PENDING], "pending"),
        ([S.PENDING, S.GENERATING], "generating"),
        ([S.COMPLETE, S.PENDING], "generating"),
        ([S.COMPLETE, S.COMPLETE], "complete"),
        ([S.COMPLETE, S.FAILED], "failed"),
        ([S.FAILED], "failed"),
        ([S.FAILED, S.GENERATING], "generating"),
    ],
)
def test_order_status_is_derived_from_its_variants(statuses: list[S], expected: str) -> None:
    assert derive_status(statuses) == expected
