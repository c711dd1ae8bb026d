"""Why a failed_jobs row was stored: the metric label and the log field, shared by the
records and the advisories they are built from."""

from __future__ import annotations

from typing import Final

__all__ = ["Reason"]


class Reason:
    """Why a row was stored: the metric label and the log field."""

    ENVELOPE: Final = "envelope"
    MALFORMED_ENVELOPE: Final = "malformed_envelope"
    MAX_DELIVERIES: Final = "max_deliveries"
    TERMINATED: Final = "terminated"
    MALFORMED_ADVISORY: Final = "malformed_advisory"
