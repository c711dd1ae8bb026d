"""Drill 7: API abuse against ``serenade api`` as a process.

- A body sent very slowly is cut off after the API's body timeout (408, or the connection
  closed), never held open for ever; so are headers sent very slowly.
- A body over the limit is refused with 413, with or without a Content-Length.
- A burst of concurrent requests (1,000 in the full version) gets nothing but statuses the
  OpenAPI document lists for each operation, and no stack trace.
- schemathesis for each role: the short version is tests/integration/api/test_schemathesis.py
  (part of ``make test``); the full one runs 10,000+ cases per role here.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from shared.auth import issue_token
from shared.db import Role
from tests.cases.schemathesis import CHECKS
from tests.drills.load import LoadDriver, looks_like_a_stack_trace
from tests.drills.stack import SECRET, Stack, StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.drills.config import DrillSettings

# How long a client that trickles its request may hold a connection: the API's body timeout
# and some slack for a slow machine.
_CUT_OFF_WITHIN = 25.0
ORDER = {
    "recipient_name": "Abuse",
    "occasion": "other",
    "genre": "rock",
    "mood": "epic",
    "story": "x",
    "variant_count": 1,
}


async def _trickle(stack: Stack, head: bytes, rest: bytes, *, every: float) -> tuple[float, str]:
    """Send ``head`` at once, then ``rest`` one byte every ``every`` seconds, until the server
    answers or hangs up. Returns the seconds it took and what ended it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.settings.api_port)
    started = time.monotonic()
    reading = asyncio.create_task(reader.read(4096))
    outcome = "held open"
    try:
        writer.write(head)
        await writer.drain()
        for byte in rest:
            # The abuse itself: one byte now and then.
            done, _ = await asyncio.wait({reading}, timeout=every)
            if done:
                break
            if time.monotonic() - started > _CUT_OFF_WITHIN + 10:
                break
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
        done, _ = await asyncio.wait({reading}, timeout=_CUT_OFF_WITHIN)
        if done:
            try:
                data = reading.result()
            except ConnectionError:
                data = b""
            outcome = data.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
    finally:
        reading.cancel()
        writer.close()
    return time.monotonic() - started, outcome


async def _slow_body(stack: Stack, token: str) -> tuple[float, str]:
    body = b'{"recipient_name": "Slow", "occasion": "other", "genre": "pop"}'
    head = (
        "POST /v1/orders HTTP/1.1\r\nHost: drill\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body) + 2000}\r\n\r\n"
    ).encode()
    return await _trickle(stack, head, body + b" " * 2000, every=1.0)


async def _slow_headers(stack: Stack) -> tuple[float, str]:
    head = b"GET /v1/orders HTTP/1.1\r\nHost: drill\r\n"
    return await _trickle(stack, head, b"X-Slow: " + b"a" * 200 + b"\r\n\r\n", every=1.0)


async def _oversized(stack: Stack, token: str) -> list[tuple[int, bool]]:
    """A 100 KB order with a Content-Length, and 1 MB sent chunked (no length)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    big = b'{"recipient_name": "' + b"x" * 100_000 + b'"}'

    async def chunks() -> Any:
        for _ in range(64):
            yield b"y" * 16_384

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        answers = [
            await client.post("/v1/orders", content=big, headers=headers),
            await client.post("/v1/orders", content=chunks(), headers=headers),
        ]
    return [
        (a.status_code, a.headers.get("content-type", "").startswith("application/problem+json"))
        for a in answers
    ]


def _documented(document: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    statuses = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                codes = {int(code) for code in operation["responses"] if code.isdigit()}
                statuses[(method.upper(), path)] = codes
    return statuses


async def _burst(stack: Stack, size: int, order: dict[str, Any]) -> tuple[Counter[str], int, int]:
    """``size`` requests at once, over many operations and callers; returns the statuses by
    operation, how many were not documented for their operation, and stack traces seen."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        document = (await client.get("/schema/openapi.json")).json()
    documented = _documented(document)
    user = uuid.UUID(order["user_id"])
    owner = {"Authorization": f"Bearer {issue_token(SECRET, user_id=user)}"}
    stranger = {"Authorization": f"Bearer {issue_token(SECRET, user_id=uuid.uuid4())}"}
    service = {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}
    forged = {"Authorization": f"Bearer {issue_token('not-the-secret' * 4, user_id=user)}"}
    order_id, variant_id = order["id"], order["variants"][0]["id"]
    share = order["variants"][0]["share_token"]
    kinds: list[tuple[str, str, str, dict[str, str], Any]] = [
        ("POST", "/v1/orders", "/v1/orders", owner, ORDER),
        ("POST", "/v1/orders", "/v1/orders", forged, ORDER),
        ("POST", "/v1/orders", "/v1/orders", owner, {"recipient_name": " "}),
        ("GET", "/v1/orders", "/v1/orders", owner, None),
        ("GET", "/v1/orders", "/v1/orders?limit=500", owner, None),
        ("GET", "/v1/orders/{order_id}", f"/v1/orders/{order_id}", owner, None),
        ("GET", "/v1/orders/{order_id}", f"/v1/orders/{order_id}", stranger, None),
        ("GET", "/v1/orders/{order_id}", f"/v1/orders/{order_id}", service, None),
        ("POST", "/v1/variants/{variant_id}/retry", f"/v1/variants/{variant_id}/retry", owner,
         None),
        ("GET", "/v1/variants/{variant_id}/audio", f"/v1/variants/{variant_id}/audio", owner,
         None),
        ("GET", "/v1/share/{share_token}", f"/v1/share/{share}", {}, None),
        ("GET", "/v1/share/{share_token}", f"/v1/share/{uuid.uuid4()}", {}, None),
        ("GET", "/v1/admin/failed-jobs", "/v1/admin/failed-jobs", service, None),
        ("GET", "/v1/admin/failed-jobs", "/v1/admin/failed-jobs", owner, None),
        ("GET", "/health", "/health", {}, None),
        ("GET", "/ready", "/ready", {}, None),
    ]  # fmt: skip
    chance = random.Random(7)  # noqa: S311 - a burst's mix, not a secret
    plan = [chance.choice(kinds) for _ in range(size)]
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as client:
        go = asyncio.Event()

        async def one(method: str, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
            await go.wait()
            return await client.request(method, path, headers=headers, json=body)

        tasks = [
            asyncio.create_task(one(method, url, headers, body))
            for method, _, url, headers, body in plan
        ]
        await asyncio.sleep(0.5)  # every request is ready to go
        go.set()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
    seen: Counter[str] = Counter()
    undocumented = traces = 0
    for (method, template, _, _, _), answer in zip(plan, answers, strict=True):
        if isinstance(answer, BaseException):
            seen[f"{method} {template} {type(answer).__name__}"] += 1
            undocumented += 1
            continue
        seen[f"{method} {template} {answer.status_code}"] += 1
        if answer.status_code not in documented.get((method, template), set()):
            undocumented += 1
        traces += looks_like_a_stack_trace(answer.text)
    return seen, undocumented, traces


def _schemathesis(base: str, examples: int, *headers: str) -> subprocess.CompletedProcess[str]:
    # One worker thread per run: with two, hypothesis's lambda descriptions (``ast.parse``) ran
    # in two threads at once and CPython 3.11.7's AST recursion check raised "AST constructor
    # recursion depth mismatch" inside schemathesis (a crash of the tool, every case passed).
    # The roles run side by side instead, as processes of their own.
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/schema/openapi.json",
        "--checks", CHECKS, "--max-examples", str(examples),
        "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "10",
        "--suppress-health-check", "all", "--no-color",
    ]  # fmt: skip
    for header in headers:
        command += ["--header", header]
    return subprocess.run(command, capture_output=True, text=True, check=False)


async def _schemathesis_every_role(stack: Stack, examples: int) -> tuple[int, dict[str, str]]:
    """Each role's run; the fewest test cases one role ran, and the roles whose run failed
    (with the end of its report)."""
    roles = {
        "authenticated": [f"Authorization: Bearer {issue_token(SECRET, user_id=uuid.uuid4())}"],
        "service_role": [f"Authorization: Bearer {issue_token(SECRET, role=Role.SERVICE)}"],
        "anon": [],
    }
    results = await asyncio.gather(
        *(
            asyncio.to_thread(_schemathesis, stack.api_url, examples, *headers)
            for headers in roles.values()
        )
    )
    cases, failed = [], {}
    for role, result in zip(roles, results, strict=True):
        counted = re.search(r"(\d+) generated", result.stdout)
        cases.append(int(counted[1]) if counted else 0)
        if result.returncode != 0:
            failed[role] = result.stdout[-4000:]
    return min(cases), failed


async def test_slow_oversized_and_bursty_clients_get_documented_answers(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    burst = drills.pick(200, 1000)
    async with running_stack(tmp_path, StackOptions()) as stack:
        load = LoadDriver(stack.api_url, users=1, concurrency=1, variant_counts=(1,))
        await load.run(orders=1)
        order_id = next(iter(load.accepted))
        token = load.token_of_first_user
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            order = (
                await client.get(
                    f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
                )
            ).json()
        (body_s, body_end), (head_s, head_end) = await asyncio.gather(
            _slow_body(stack, token), _slow_headers(stack)
        )
        oversized = await _oversized(stack, token)
        seen, undocumented, traces = await _burst(stack, burst, order)
        # The short version is tests/integration/api/test_schemathesis.py, in `make test`.
        cases, schemathesis_failed = 0, dict[str, str]()
        if drills.full:
            # About 10,500 cases for each role (16 operations, three phases).
            cases, schemathesis_failed = await _schemathesis_every_role(stack, examples=850)
        alive = stack.api.alive()
    server_errors = sum(n for key, n in seen.items() if key.split()[-1].startswith("5"))
    report(
        "api-abuse",
        {
            "slow_body_s": round(body_s, 1),
            "slow_body": body_end.replace(" ", "_"),
            "slow_headers_s": round(head_s, 1),
            "slow_headers": head_end.replace(" ", "_"),
            "oversized": "/".join(str(status) for status, _ in oversized),
            "burst": burst,
            "undocumented": undocumented,
            "5xx": server_errors,
            "traces": traces,
            "schemathesis_cases_per_role": cases,
            "schemathesis_failed": len(schemathesis_failed),
        },
    )
    assert body_s < _CUT_OFF_WITHIN, (body_s, body_end)
    assert body_end != "held open"
    assert head_s < _CUT_OFF_WITHIN, (head_s, head_end)
    assert head_end != "held open"
    assert oversized == [(413, True), (413, True)], oversized
    assert undocumented == 0, seen
    assert traces == 0
    assert alive
    for role, tail in schemathesis_failed.items():
        print(f"--- schemathesis as {role}, the end of its report:\n{tail}")  # the whole of it
    assert not schemathesis_failed, sorted(schemathesis_failed)
