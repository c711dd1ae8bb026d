"""Signed URLs and cursors: what they accept and what they refuse, without HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.api.common.pagination import CursorCodec, Position
from services.api.common.problems import BadRequest
from services.api.common.signing import UrlSigner, derive_key, sign, verify

SECRET = "unit-secret-" + "u" * 40


def test_derived_keys_differ_by_purpose_and_from_the_secret() -> None:
    url_key, cursor_key = derive_key(SECRET, "signed-url"), derive_key(SECRET, "cursor")
    assert url_key != cursor_key
    assert SECRET.encode() not in (url_key, cursor_key)
    assert derive_key(SECRET, "signed-url") == url_key


def test_the_separator_keeps_parts_apart() -> None:
    key = derive_key(SECRET, "x")
    assert sign(key, "/media/a", "12") != sign(key, "/media/a1", "2")
    with pytest.raises(ValueError, match="newline"):
        sign(key, "/media/a\n", "1")
    assert not verify(key, sign(key, "a", "1"), "a\n", "1")


def test_a_signed_path_verifies_until_it_expires() -> None:
    signer = UrlSigner(SECRET, ttl_seconds=60)
    signed = signer.sign_path("/media/u/o/variant-1.mp3", now=1_000_000)
    expires = str(signed.expires_at)
    signature = signed.url.rsplit("signature=", 1)[1]

    assert signed.expires_at == 1_000_060
    assert signer.check("/media/u/o/variant-1.mp3", expires, signature, now=1_000_059) is None
    assert "expired" in (
        signer.check("/media/u/o/variant-1.mp3", expires, signature, now=1_000_061) or ""
    )
    assert signer.check("/media/u/o/variant-2.mp3", expires, signature, now=1_000_000)
    assert signer.check("/media/u/o/variant-1.mp3", "1000061", signature, now=1_000_000)
    assert signer.check("/media/u/o/variant-1.mp3", expires, None, now=1_000_000)
    assert signer.check("/media/u/o/variant-1.mp3", "²", signature, now=1_000_000)


def test_another_secret_signs_differently() -> None:
    mine = UrlSigner(SECRET, ttl_seconds=60).sign_path("/media/a.mp3", now=0)
    theirs = UrlSigner(SECRET + "!", ttl_seconds=60)
    signature = mine.url.rsplit("signature=", 1)[1]
    assert theirs.check("/media/a.mp3", str(mine.expires_at), signature, now=0)


def test_a_cursor_round_trips_and_refuses_tampering() -> None:
    codec = CursorCodec(SECRET)
    position = Position(dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC), uuid.uuid4())

    cursor = codec.encode("orders", position)

    assert codec.decode("orders", cursor) == position
    assert codec.decode("orders", None) is None
    body, _, signature = cursor.partition(".")
    for bad in (f"{body}x.{signature}", f"{body}.{signature}x", body, "a.b", "....", "é.é"):
        with pytest.raises(BadRequest):
            codec.decode("orders", bad)
    with pytest.raises(BadRequest):
        codec.decode("failed_jobs", cursor)
    with pytest.raises(BadRequest):
        CursorCodec(SECRET + "!").decode("orders", cursor)
