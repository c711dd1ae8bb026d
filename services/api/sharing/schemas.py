"""The sharing feature's HTTP bodies: the share view mirrors the contract's field for field."""

import datetime as dt

from pydantic import BaseModel, Field

from shared.enums import GenerationStatus, Occasion

__all__ = ["ShareOut"]


class ShareOut(BaseModel):
    """What a share link shows: one variant, nothing about its owner or the other variants."""

    variant_number: int = Field(ge=1, le=5)
    status: GenerationStatus
    title: str | None
    lyrics: str | None
    duration_seconds: float | None
    recipient_name: str
    occasion: Occasion
    audio_url: str | None = Field(description="Signed URL of the audio; null until complete.")
    expires_at: dt.datetime | None = Field(description="When audio_url stops working.")
