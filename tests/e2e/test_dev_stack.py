"""``serenade dev`` end to end, as a newcomer runs it: nothing configured but a free API port.

It starts, prints the summary; the order made with the printed command completes; Ctrl-C
(SIGINT) leaves no process behind; a second start finds the order of the first.
"""

from __future__ import annotations

import asyncio
import html
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from services.launcher import free_port
from tests.helpers import wait_for

_SUMMARY_END = "Ctrl-C stops everything."


class DevStack:
    """``serenade dev`` in a folder of its own, its output read line by line."""

    def __init__(self, folder: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = port
        self.env = env or {}
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SERENADE_")}
        env["SERENADE_API_PORT"] = str(self.port)
        env.update(self.env)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "serenade"), "dev"],
            cwd=self.folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        try:
            for line in self.process.stdout:
                self.lines.put(line.rstrip("\n"))
        except ValueError:
            pass  # closed by interrupt() once the process ended

    def summary(self, timeout: float = 150.0) -> str:
        """Every line up to the end of the start-up summary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process is not None
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if line.strip() == _SUMMARY_END:
                return "\n".join(self.output)
        raise AssertionError("no start-up summary:\n" + "\n".join(self.output[-60:]))

    def interrupt(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def _leftovers(folder: Path) -> list[str]:
    """Processes still running whose command line or working folder lies in ``folder``."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        mine = str(folder) in cmdline or str(folder) == (process.info["cwd"] or "")
        if mine and process.pid != os.getpid():
            found.append(f"{process.pid}: {cmdline}")
    return found


async def _console_signs_in(summary: str, base: str, order_id: str) -> None:
    console = re.search(r"console  (\S+)", summary)
    operator = re.search(r"token    ([\w.-]+)", summary)
    assert console is not None
    assert operator is not None
    assert console.group(1) == f"{base}/console"
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        form = await browser.get("/console/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = await browser.post(
            "/console/login", data={"csrf_token": csrf.group(1), "token": operator.group(1)}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/console"
        order_page = await browser.get(f"/console/orders/{order_id}")
    assert order_page.status_code == 200
    assert "<audio" in order_page.text


def _printed_command(summary: str) -> str:
    start = summary.index("curl ")
    end = summary.index("Each variant in the answer has a share_token")
    return summary[start:end].strip()


@pytest.mark.timeout(420)
async def test_dev_stack_starts_serves_an_order_stops_clean_and_keeps_data(tmp_path: Path) -> None:
    port = free_port()
    stack = DevStack(tmp_path, port)
    stack.start()
    try:
        summary = await asyncio.to_thread(stack.summary)
        assert f"http://127.0.0.1:{port}" in summary
        assert f"http://127.0.0.1:{port}/schema" in summary

        command = _printed_command(summary)
        created = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", command], capture_output=True, text=True, check=True
        )
        order = httpx.Response(200, content=created.stdout).json()
        assert order["status"] == "pending", created.stdout
        token = re.search(r"Bearer ([\w.-]+)", command)
        assert token is not None
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        url = f"http://127.0.0.1:{port}/v1/orders/{order['id']}"

        async with httpx.AsyncClient(timeout=10) as client:

            async def finished() -> dict[str, object] | None:
                body: dict[str, object] = (await client.get(url, headers=headers)).json()
                return body if body["status"] in ("complete", "failed") else None

            done = await wait_for(finished, timeout=120, interval=0.5, what="the order to finish")
        assert done["status"] == "complete", done
        storage = tmp_path / ".serenade" / "storage"
        files = sorted(path.name for path in storage.rglob("variant-*"))
        assert files == ["variant-1.mp3", "variant-2.mp3", "variant-3.mp3"]
        # The share page the summary points at plays the finished song.
        assert f"http://127.0.0.1:{port}/s/<share_token>" in summary
        variant = done["variants"][0]
        async with httpx.AsyncClient(timeout=10) as client:
            page = await client.get(f"http://127.0.0.1:{port}/s/{variant['share_token']}")
        assert page.status_code == 200
        assert "<audio" in page.text
        assert html.escape(variant["title"]) in page.text
        # The console the summary points at opens with the printed operator token.
        await _console_signs_in(summary, f"http://127.0.0.1:{port}", order["id"])
    finally:
        code = await asyncio.to_thread(stack.interrupt)
    assert code == 0
    assert await wait_for(
        lambda: asyncio.to_thread(lambda: not _leftovers(tmp_path)),
        timeout=15,
        what="every process of the stack to end",
    ), _leftovers(tmp_path)

    again = DevStack(tmp_path, port)
    again.start()
    try:
        await asyncio.to_thread(again.summary)
        async with httpx.AsyncClient(timeout=10) as client:
            kept = await client.get(url, headers=headers)
        assert kept.status_code == 200
        assert kept.json()["status"] == "complete"
    finally:
        assert await asyncio.to_thread(again.interrupt) == 0
    assert await wait_for(
        lambda: asyncio.to_thread(lambda: not _leftovers(tmp_path)), timeout=15, what="a clean stop"
    ), _leftovers(tmp_path)
