"""Paths that try to climb out of the media root: each must be refused, never served
(tests/integration/api/test_media.py in process, the access drill over HTTP)."""

from __future__ import annotations

__all__ = ["TRAVERSALS"]

TRAVERSALS = [
    "/media/../../etc/passwd",
    "/media/%2e%2e/%2e%2e/etc/passwd",
    "/media/..%2f..%2fetc%2fpasswd",
    "/media/%2Fetc%2Fpasswd",
    "/media//etc/passwd",
    "/media/a/..%5c..%5cetc",
    "/media/%252e%252e/etc",
]
