"""``GET /s/{share_token}``: the page a recipient opens from a share link.

A small HTML page (no scripts, no external resources) rendered by the app's Jinja template
engine (autoescape on) from ``services/api/templates/sharing``. It reads the share view
(``shares.share_view``: the anonymous role through row-level security) and plays the same
signed share audio URL the JSON endpoint returns. The inline style sheet is allowed by its
hash, so the Content-Security-Policy needs no ``'unsafe-inline'``.
"""

import base64
import hashlib
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from litestar.response import Template

from services.api.common.database import Database
from services.api.common.problems import NotFound
from services.api.common.signing import UrlSigner
from services.api.sharing import shares
from services.api.sharing.schemas import ShareOut
from shared.db import DATABASE_UNREACHABLE
from shared.enums import GenerationStatus, Occasion

__all__ = ["OCCASION_LABELS", "SharePage", "Stanza", "page_response", "share_page", "stanzas"]

# Inlined as it is (our own file, never user input): its hash below must match the bytes sent.
_CSS = (files("services.api") / "templates" / "sharing" / "page.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

OCCASION_LABELS: dict[Occasion, str] = {
    Occasion.BIRTHDAY: "Birthday",
    Occasion.ANNIVERSARY: "Anniversary",
    Occasion.WEDDING: "Wedding",
    Occasion.VALENTINES: "Valentine's Day",
    Occasion.GRADUATION: "Graduation",
    Occasion.MOTHERS_DAY: "Mother's Day",
    Occasion.FATHERS_DAY: "Father's Day",
    Occasion.HOLIDAY: "Holidays",
    Occasion.OTHER: "Special occasion",
}
# Seconds between reloads of a page whose song is still being made.
REFRESH_SECONDS = 10
_SECTION = re.compile(r"^\[(.{1,40})\]$")
_STANZA_BREAK = re.compile(r"\n[ \t]*\n+")


@dataclass(frozen=True, slots=True)
class SharePage:
    """Which template to render, with what, and the status it is sent with."""

    status: int
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    audio_url: str | None = None


@dataclass(frozen=True, slots=True)
class Stanza:
    heading: str | None
    lines: list[str]


def stanzas(lyrics: str | None) -> list[Stanza]:
    """Stanzas with their lines; a first line like ``[Chorus]`` becomes the stanza's heading."""
    text = (lyrics or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return []
    result = []
    for stanza in _STANZA_BREAK.split(text):
        lines = [line.strip() for line in stanza.split("\n")]
        heading = _SECTION.match(lines[0])
        if heading:
            lines = lines[1:]
        result.append(Stanza(heading.group(1) if heading else None, lines))
    return result


def _duration(seconds: float | None) -> str | None:
    if not seconds or seconds <= 0:
        return None
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _page(page_title: str, **context: Any) -> dict[str, Any]:
    return {"page_title": page_title, "css": _CSS, "refresh_seconds": None, **context}


def _notice(
    kind: str, icon: str, heading: str, text: str, *, share: ShareOut | None
) -> dict[str, Any]:
    """A notice's context; with ``share``, the occasion and recipient line above it."""
    return {
        "kind": kind,
        "icon": icon,
        "heading": heading,
        "text": text,
        "occasion": OCCASION_LABELS[share.occasion] if share else None,
        "recipient": share.recipient_name if share else None,
    }


def _song_page(share: ShareOut) -> SharePage:
    title = share.title or "Your song"
    occasion = OCCASION_LABELS[share.occasion]
    context = _page(
        f"{title} \u00b7 for {share.recipient_name}",
        occasion=occasion,
        recipient=share.recipient_name,
        title=title,
        description=f"A {occasion} song for {share.recipient_name}",
        audio_url=share.audio_url,
        duration=_duration(share.duration_seconds),
        stanzas=stanzas(share.lyrics),
    )
    return SharePage(HTTPStatus.OK, "sharing/song.html", context, share.audio_url)


def _waiting_page(share: ShareOut) -> SharePage:
    notice = _notice(
        "waiting",
        "\u270d\ufe0f",
        "This song is still being written",
        "It is usually ready within a minute or two. This page refreshes by itself.",
        share=share,
    )
    context = _page("A song is on its way", refresh_seconds=REFRESH_SECONDS, **notice)
    return SharePage(HTTPStatus.OK, "sharing/notice.html", context)


def _failed_page(share: ShareOut) -> SharePage:
    notice = _notice(
        "failed",
        "\U0001f3b6",
        "This song could not be finished",
        "Something went wrong while it was being made. "
        "Ask the person who sent you this link to try again.",
        share=share,
    )
    context = _page("This song could not be finished", **notice)
    return SharePage(HTTPStatus.OK, "sharing/notice.html", context)


def _missing_page() -> SharePage:
    notice = _notice(
        "missing",
        "\U0001f50d",
        "We could not find this song",
        "The link may be incomplete or mistyped. Check it against the message you received.",
        share=None,
    )
    return SharePage(HTTPStatus.NOT_FOUND, "sharing/notice.html", _page("Song not found", **notice))


def _unavailable_page() -> SharePage:
    notice = _notice(
        "unavailable",
        "\u23f3",
        "This song cannot be reached right now",
        "Please try again in a moment. This page refreshes by itself.",
        share=None,
    )
    context = _page("Try again shortly", refresh_seconds=REFRESH_SECONDS, **notice)
    return SharePage(HTTPStatus.SERVICE_UNAVAILABLE, "sharing/notice.html", context)


def render(share: ShareOut) -> SharePage:
    """The page for a share view: the song, or a notice while it is made or if it failed."""
    if share.status is GenerationStatus.COMPLETE and share.audio_url:
        return _song_page(share)
    if share.status is GenerationStatus.FAILED:
        return _failed_page(share)
    return _waiting_page(share)


async def share_page(db: Database, signer: UrlSigner, token: str) -> Template:
    """The share page for ``token``: 404 (as a page) for an unknown or malformed link."""
    try:
        page = render(await shares.share_view(db, signer, token))
    except NotFound:
        page = _missing_page()
    except DATABASE_UNREACHABLE:
        page = _unavailable_page()
    return page_response(page)


def _media_sources(audio_url: str | None) -> str:
    sources = ["'self'"]
    parts = urlsplit(audio_url or "")
    if parts.scheme in ("http", "https") and parts.netloc:  # SERENADE_PUBLIC_URL elsewhere
        sources.append(f"{parts.scheme}://{parts.netloc}")
    return " ".join(sources)


def page_response(page: SharePage) -> Template:
    """The page with headers that let it do nothing but show itself and play its audio."""
    policy = "; ".join(
        [
            "default-src 'none'",
            f"style-src 'sha256-{_CSS_HASH}'",
            "img-src 'self' data:",
            f"media-src {_media_sources(page.audio_url)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        # The page carries a short-lived signed URL and a status that changes.
        "Cache-Control": "no-store",
    }
    if page.status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = str(REFRESH_SECONDS)
    return Template(
        page.template,
        context=page.context,
        status_code=page.status,
        media_type="text/html",
        headers=headers,
    )
