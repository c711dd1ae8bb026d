"""``GET /s/{share_token}``: the page a recipient opens from a share link.

A small HTML page (no scripts, no external resources) rendered from templates in
``services/api/templates`` with ``string.Template``; every value from the database is
HTML-escaped. It reads the share view (``sharing.share_view``: the anonymous role through
row-level security) and plays the same signed share audio URL the JSON endpoint returns.
The inline style sheet is allowed by its hash, so the Content-Security-Policy needs no
``'unsafe-inline'``.
"""

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from http import HTTPStatus
from importlib.resources import files
from string import Template
from urllib.parse import urlsplit

from litestar import Response

from services.api import sharing
from services.api.database import Database
from services.api.problems import DATABASE_UNAVAILABLE, NotFound
from services.api.schemas import ShareOut
from services.api.signing import UrlSigner
from shared.enums import GenerationStatus, Occasion

__all__ = ["OCCASION_LABELS", "SharePage", "page_response", "render_lyrics", "share_page"]


def _template(name: str) -> str:
    return (files("services.api") / "templates" / name).read_text(encoding="utf-8")


_LAYOUT = Template(_template("share_layout.html"))
_SONG = Template(_template("share_song.html"))
_NOTICE = Template(_template("share_notice.html"))
_CSS = _template("share_page.css")
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
    status: int
    html: str
    audio_url: str | None = None


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_lyrics(lyrics: str | None) -> str:
    """Stanzas as paragraphs with their line breaks kept; ``[Chorus]`` lines as headings."""
    text = (lyrics or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    parts = ['<section class="lyrics" aria-label="Lyrics">', "<h2>Lyrics</h2>"]
    for stanza in _STANZA_BREAK.split(text):
        lines = [line.strip() for line in stanza.split("\n")]
        heading = _SECTION.match(lines[0])
        if heading:
            parts.append(f"<h3>{_e(heading.group(1))}</h3>")
            lines = lines[1:]
        if lines:
            parts.append('<p class="stanza">' + "<br>\n".join(_e(line) for line in lines) + "</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _duration(seconds: float | None) -> str:
    if not seconds or seconds <= 0:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    return f'<p class="duration">{minutes}:{rest:02d}</p>'


def _for_line(share: ShareOut) -> str:
    return (
        f'<p class="for"><span class="occasion">{_e(OCCASION_LABELS[share.occasion])}</span>'
        f' <span class="recipient">for {_e(share.recipient_name)}</span></p>'
    )


def _layout(page_title: str, main: str, *, head: str = "") -> str:
    return _LAYOUT.substitute(page_title=_e(page_title), head=head, css=_CSS, main=main)


def _notice(kind: str, icon: str, heading: str, text: str, *, share: ShareOut | None) -> str:
    return _NOTICE.substitute(
        for_line=_for_line(share) if share else "",
        kind=kind,
        icon=icon,
        heading=_e(heading),
        text=_e(text),
    )


def _song_page(share: ShareOut) -> SharePage:
    title = share.title or "Your song"
    occasion = OCCASION_LABELS[share.occasion]
    description = f"A {occasion} song for {share.recipient_name}"
    head = (
        f'<meta property="og:type" content="music.song">\n'
        f'<meta property="og:title" content="{_e(title)}">\n'
        f'<meta property="og:description" content="{_e(description)}">\n'
        f'<meta name="description" content="{_e(description)}">'
    )
    main = _SONG.substitute(
        occasion=_e(occasion),
        recipient=_e(share.recipient_name),
        title=_e(title),
        audio_url=_e(share.audio_url),
        duration=_duration(share.duration_seconds),
        lyrics=render_lyrics(share.lyrics),
    )
    page = _layout(f"{title} · for {share.recipient_name}", main, head=head)
    return SharePage(HTTPStatus.OK, page, share.audio_url)


def _waiting_page(share: ShareOut) -> SharePage:
    main = _notice(
        "waiting",
        "&#9997;&#65039;",
        "This song is still being written",
        "It is usually ready within a minute or two. This page refreshes by itself.",
        share=share,
    )
    head = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
    return SharePage(HTTPStatus.OK, _layout("A song is on its way", main, head=head))


def _failed_page(share: ShareOut) -> SharePage:
    main = _notice(
        "failed",
        "&#127926;",
        "This song could not be finished",
        "Something went wrong while it was being made. "
        "Ask the person who sent you this link to try again.",
        share=share,
    )
    return SharePage(HTTPStatus.OK, _layout("This song could not be finished", main))


def _missing_page() -> SharePage:
    main = _notice(
        "missing",
        "&#128269;",
        "We could not find this song",
        "The link may be incomplete or mistyped. Check it against the message you received.",
        share=None,
    )
    return SharePage(HTTPStatus.NOT_FOUND, _layout("Song not found", main))


def _unavailable_page() -> SharePage:
    main = _notice(
        "unavailable",
        "&#9203;",
        "This song cannot be reached right now",
        "Please try again in a moment. This page refreshes by itself.",
        share=None,
    )
    head = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
    return SharePage(HTTPStatus.SERVICE_UNAVAILABLE, _layout("Try again shortly", main, head=head))


def render(share: ShareOut) -> SharePage:
    """The page for a share view: the song, or a notice while it is made or if it failed."""
    if share.status is GenerationStatus.COMPLETE and share.audio_url:
        return _song_page(share)
    if share.status is GenerationStatus.FAILED:
        return _failed_page(share)
    return _waiting_page(share)


async def share_page(db: Database, signer: UrlSigner, token: str) -> Response[str]:
    """The share page for ``token``: 404 (as a page) for an unknown or malformed link."""
    try:
        page = render(await sharing.share_view(db, signer, token))
    except NotFound:
        page = _missing_page()
    except DATABASE_UNAVAILABLE:
        page = _unavailable_page()
    return page_response(page)


def _media_sources(audio_url: str | None) -> str:
    sources = ["'self'"]
    parts = urlsplit(audio_url or "")
    if parts.scheme in ("http", "https") and parts.netloc:  # SERENADE_PUBLIC_URL elsewhere
        sources.append(f"{parts.scheme}://{parts.netloc}")
    return " ".join(sources)


def page_response(page: SharePage) -> Response[str]:
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
    return Response(page.html, status_code=page.status, media_type="text/html", headers=headers)
