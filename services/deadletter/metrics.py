"""Prometheus metrics of the dead-letter service (default registry)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["DUPLICATES_SKIPPED", "ROWS_STORED", "VARIANTS_FAILED"]

ROWS_STORED = Counter(
    "serenade_deadletter_rows_stored",
    "failed_jobs rows stored, by reason (envelope, malformed_envelope, max_deliveries, ...).",
    ["reason"],
)
DUPLICATES_SKIPPED = Counter(
    "serenade_deadletter_duplicates_skipped",
    "Redelivered envelopes or advisories whose row already existed.",
    ["reason"],
)
VARIANTS_FAILED = Counter(
    "serenade_deadletter_variants_failed",
    "Variants made failed because their request died without a handler reporting it.",
)
