"""Stable seeds for the local provider.

Python's ``hash()`` is salted per process, so it would give a different song after every restart.
SHA-256 of the order id (and variant number) gives the same numbers on every machine and run.
"""

from __future__ import annotations

import hashlib
import uuid

import numpy as np

__all__ = ["order_number", "variant_rng"]


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")


def order_number(order_id: uuid.UUID) -> int:
    """A stable integer for the order alone, shared by all its variants.

    Variants use it to pick *different* entries from the same small tables (progressions,
    titles), so two variants of one order never land on the same choice by chance.
    """
    return _digest_int(f"serenade-order:{order_id}")


def variant_rng(order_id: uuid.UUID, variant_number: int, stream: str) -> np.random.Generator:
    """A random generator seeded by order, variant and a stream name.

    Separate streams (``"music"``, ``"lyrics"``) keep a change in how one part draws numbers from
    shifting every other part's choices.
    """
    return np.random.default_rng(_digest_int(f"serenade:{order_id}:{variant_number}:{stream}"))
