"""Headless Chromium for tests, driven over the DevTools protocol through a pipe.

``--remote-debugging-pipe`` makes Chromium read commands from its fd 3 and write replies and
events to its fd 4, NUL-separated JSON: no port, no websocket library. A tiny Python trampoline
puts the pipes on fds 3 and 4 before it execs Chromium (``/bin/sh`` cannot name fds past 9).

    async with Chromium.launch() as browser:
        page = await browser.open("http://127.0.0.1:8000/s/...", width=375, height=800)
        assert page.problems == []
        title = await page.evaluate("document.title")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "Chromium", "Page", "chromium_missing"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--remote-debugging-pipe",
)
_TRAMPOLINE = (
    "import os, sys\n"
    "os.dup2(int(sys.argv[1]), 3)\n"
    "os.dup2(int(sys.argv[2]), 4)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def chromium_missing() -> str | None:
    """Why Chromium cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(apt-get install -y chromium); the share page is tested in a real browser"
        )
    return None


class CdpError(RuntimeError):
    """Chromium answered a command with an error."""


class Chromium:
    """One headless Chromium process and its DevTools connection."""

    def __init__(self, process: asyncio.subprocess.Process, commands: int, replies: int) -> None:
        self._process = process
        self._commands = commands
        self._replies = replies
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[str, dict[str, Any], str | None], None]] = []
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls) -> AsyncIterator[Chromium]:
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            to_chromium, commands = os.pipe()
            replies, from_chromium = os.pipe()
            log = Path(profile) / "chromium.log"
            with log.open("wb") as output:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    _TRAMPOLINE,
                    str(to_chromium),
                    str(from_chromium),
                    str(CHROMIUM),
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "about:blank",
                    pass_fds=(to_chromium, from_chromium),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                )
            os.close(to_chromium)
            os.close(from_chromium)
            browser = cls(process, commands, replies)
            try:
                try:
                    await browser._start()
                except (TimeoutError, CdpError) as error:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise CdpError(f"Chromium did not start: {error}\n{tail}") from error
                yield browser
            finally:
                await browser._stop()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        pipe = os.fdopen(self._replies, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        self._reader = asyncio.create_task(self._read(reader), name="chromium-reader")
        await self.command("Browser.getVersion", timeout=30)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                message = orjson.loads((await reader.readuntil(b"\0"))[:-1])
                if "id" in message:
                    future = self._waiting.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                for listener in list(self._listeners):
                    listener(message["method"], message.get("params", {}), message.get("sessionId"))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CdpError("Chromium closed its DevTools pipe"))

    def listen(self, listener: Callable[[str, dict[str, Any], str | None], None]) -> None:
        self._listeners.append(listener)

    async def command(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        os.write(self._commands, orjson.dumps(message) + b"\0")
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(
        self,
        url: str,
        *,
        width: int = 375,
        height: int = 800,
        mobile: bool = True,
        javascript: bool = True,
        private: bool = False,
    ) -> Page:
        """A new tab showing ``url`` as a phone would (``width`` CSS pixels, touch, DPR 2), or
        as a desktop window (``mobile=False``: DPR 1); ``javascript=False`` runs no script of
        the page's (DevTools' own evaluations still work); ``private``: in a browser context of
        its own, sharing no cookies with other tabs (as a private window)."""
        params: dict[str, Any] = {"url": "about:blank"}
        if private:
            context = await self.command("Target.createBrowserContext")
            params["browserContextId"] = context["browserContextId"]
        target = await self.command("Target.createTarget", params)
        attached = await self.command(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        await page.prepare(width, height, mobile=mobile)
        if not javascript:
            await page.disable_javascript()
        await page.goto(url)
        return page

    async def _stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.command("Browser.close", timeout=5)
        with contextlib.suppress(OSError):
            os.close(self._commands)
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class Page:
    """One tab: what its scripts and console reported, and a way to evaluate expressions."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self._browser = browser
        self._session = session
        self._loaded = asyncio.Event()
        # Console errors, uncaught exceptions and browser-reported errors (CSP, failed loads).
        self.problems: list[str] = []
        browser.listen(self._on_event)

    def _on_event(self, method: str, params: dict[str, Any], session: str | None) -> None:
        if session != self._session:
            return
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.problems.append(f"exception: {details.get('text')} {details.get('exception')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description"))) for arg in params["args"]]
            self.problems.append("console: " + " ".join(texts))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"log ({entry.get('source')}): {entry.get('text')}")

    async def _command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.command(method, params, session=self._session)

    async def prepare(self, width: int, height: int, *, mobile: bool = True) -> None:
        for domain in ("Runtime", "Log", "Page"):
            await self._command(f"{domain}.enable")
        await self._command(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 2 if mobile else 1,
                "mobile": mobile,
            },
        )

    async def disable_javascript(self) -> None:
        await self._command("Emulation.setScriptExecutionDisabled", {"value": True})

    async def goto(self, url: str, *, timeout: float = 20.0) -> None:
        """Navigate and wait for the load event."""
        self._loaded.clear()
        result = await self._command("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigating to {url} failed: {result['errorText']}")
        await asyncio.wait_for(self._loaded.wait(), timeout)

    async def evaluate(self, expression: str, *, user_gesture: bool = False) -> Any:
        """The value of a JavaScript expression (promises awaited); ``user_gesture``: as if
        the user had just clicked (what ``audio.play()`` needs)."""
        result = await self._command(
            "Runtime.evaluate",
            {
                "expression": expression,
                "returnByValue": True,
                "awaitPromise": True,
                "userGesture": user_gesture,
            },
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    # --- as a person uses a page: typing, clicking, looking -----------------------------------
    async def _node(self, selector: str) -> int:
        document = await self._command("DOM.getDocument", {"depth": 0})
        found = await self._command(
            "DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector}
        )
        if not found.get("nodeId"):
            raise CdpError(f"no element matches {selector!r}")
        node: int = found["nodeId"]
        return node

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the field and type ``text`` into it, as a keyboard would (no page script)."""
        await self._command("DOM.focus", {"nodeId": await self._node(selector)})
        await self._command("Input.insertText", {"text": text})

    async def click(self, selector: str, *, navigates: bool = True, timeout: float = 20.0) -> None:
        """Click the middle of the element with the mouse; wait for the page it loads."""
        node = await self._node(selector)
        await self._command("DOM.scrollIntoViewIfNeeded", {"nodeId": node})
        # The first box of the element: an inline one wrapped over two lines has two.
        quad = (await self._command("DOM.getContentQuads", {"nodeId": node}))["quads"][0]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        self._loaded.clear()
        for kind in ("mousePressed", "mouseReleased"):
            await self._command(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )
        if navigates:
            await asyncio.wait_for(self._loaded.wait(), timeout)

    async def html(self) -> str:
        """The document as it is now (also with the page's scripts off)."""
        document = await self._command("DOM.getDocument", {"depth": 0})
        outer = await self._command("DOM.getOuterHTML", {"nodeId": document["root"]["nodeId"]})
        text: str = outer["outerHTML"]
        return text

    async def url(self) -> str:
        history = await self._command("Page.getNavigationHistory")
        current: str = history["entries"][history["currentIndex"]]["url"]
        return current

    async def screenshot(self) -> bytes:
        """A PNG of the whole page, beyond the window."""
        shot = await self._command(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        return base64.b64decode(shot["data"])
