"""Drill 8: access, against the running stack.

- The JWT negative suite (tests/cases/tokens.py) over HTTP: every one is 401 problem details
  with a Bearer challenge; roles reach only their endpoints, a stranger's order is 404.
- Every console route (tests/cases/console.py) without a session, with a user's and with a
  service_role bearer token: a 303 to the sign-in form, never cached, never framed; a user's
  token cannot sign in; the console's cookie opens nothing under /v1.
- The signed-URL tamper suite over HTTP, for owner audio (``/media``) and share audio: altered
  path, expiry or signature, missing parameters, an expired signature, and traversals: each
  refused, never served.
- The row-level security matrix (tests/cases/rls_matrix.py) in the drill's database.
- A static check of the schema: no ``USING (true)`` / ``WITH CHECK (true)`` policy for anon or
  authenticated; no SECURITY DEFINER function without a fixed search_path; row-level security
  enabled and forced on every table in public; the services' login role (the documented
  deployment's, which the drill stack uses) neither superuser nor BYPASSRLS, inheriting none of
  the application roles' rights.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx

from services.api.common.signing import UrlSigner
from services.launcher import wait_until
from shared.auth import issue_token
from shared.db import Role
from tests.cases.console import ROUTES as CONSOLE_ROUTES
from tests.cases.media import TRAVERSALS
from tests.cases.rls_matrix import build_cases, evaluate, seed_world
from tests.cases.tokens import BAD_TOKENS
from tests.drills.load import LoadDriver
from tests.drills.stack import LOGIN_ROLE, SECRET, Stack, StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    import asyncpg

    from tests.drills.config import DrillSettings

_CHECKS = {
    "open policy for anon or authenticated": """
        SELECT schemaname || '.' || tablename || ' ' || policyname FROM pg_policies
        WHERE roles && ARRAY['anon', 'authenticated', 'public']::name[]
          AND (btrim(coalesce(qual, ''), '() ') = 'true'
               OR btrim(coalesce(with_check, ''), '() ') = 'true')""",
    "SECURITY DEFINER without a fixed search_path": """
        SELECT p.oid::regprocedure::text FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) AS c
                          WHERE c LIKE 'search_path=%')""",
    "table without forced row-level security": """
        SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND NOT (c.relrowsecurity AND c.relforcerowsecurity)""",
    "login role that is superuser or bypasses RLS": f"""
        SELECT rolname::text FROM pg_roles
        WHERE rolname IN ('{LOGIN_ROLE}', 'anon', 'authenticated', 'service_role')
          AND (rolsuper OR rolbypassrls)""",
    "login role inheriting an application role": f"""
        SELECT r.rolname::text FROM pg_auth_members m
        JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE u.rolname = '{LOGIN_ROLE}' AND (m.inherit_option OR u.rolinherit)""",
}


async def _static_findings(stack: Stack) -> dict[str, list[str]]:
    findings = {}
    async with stack.admin() as conn:
        for name, sql in _CHECKS.items():
            rows = await conn.fetch(sql)
            if rows:
                findings[name] = [row[0] for row in rows]
        # The services really log in as that role.
    services = await stack_current_user(stack)
    if services != LOGIN_ROLE:
        findings["services' login role"] = [services]
    return findings


# One careless change per check, each of which the check must notice (in a rolled-back
# transaction, so they never take effect).
_DAMAGE = [
    "CREATE POLICY drill_open ON orders FOR SELECT TO anon USING (true)",
    "CREATE FUNCTION drill_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
    "ALTER TABLE outbox NO FORCE ROW LEVEL SECURITY",
    f"ALTER ROLE {LOGIN_ROLE} BYPASSRLS",
    f"ALTER ROLE {LOGIN_ROLE} INHERIT",
]


@contextlib.asynccontextmanager
async def _undone(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction that is always rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()


async def _static_checks_notice_damage(stack: Stack) -> set[str]:
    noticed = set()
    async with stack.admin() as conn, _undone(conn):
        for statement in _DAMAGE:
            await conn.execute(statement)
        for name, sql in _CHECKS.items():
            if await conn.fetch(sql):
                noticed.add(name)
    return noticed


async def stack_current_user(stack: Stack) -> str:
    from shared.db import connect  # noqa: PLC0415

    conn = await connect(stack.login_dsn)
    try:
        return str(await conn.fetchval("SELECT current_user"))
    finally:
        await conn.close()


async def _jwt_suite(client: httpx.AsyncClient) -> list[str]:
    # The stack signs with the suite's secret: the tokens signed with the right key must be
    # refused for what else is wrong.
    wrong = []
    for name, token in BAD_TOKENS.items():
        # Over the wire a header value cannot end in a space: "Bearer " goes as "Bearer".
        header = f"Bearer {token}".strip()
        answer = await client.get("/v1/orders", headers={"Authorization": header})
        if not (
            answer.status_code == 401
            and answer.headers.get("content-type") == "application/problem+json"
            and answer.headers.get("www-authenticate", "").startswith("Bearer")
        ):
            wrong.append(f"{name}: {answer.status_code}")
    return wrong


async def _role_suite(client: httpx.AsyncClient, order: dict[str, Any], owner: str) -> list[str]:
    user = {"Authorization": f"Bearer {owner}"}
    stranger = {"Authorization": f"Bearer {issue_token(SECRET, user_id=uuid.uuid4())}"}
    service = {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}
    some = uuid.uuid4()
    variant = order["variants"][0]["id"]
    expected = [
        ("GET", f"/v1/orders/{order['id']}", stranger, 404),
        ("GET", f"/v1/variants/{variant}/audio", stranger, 404),
        ("POST", f"/v1/variants/{variant}/retry", stranger, 404),
        ("GET", f"/v1/orders/{order['id']}", {}, 401),
        ("GET", "/v1/orders", {}, 401),
        ("GET", "/v1/admin/failed-jobs", user, 403),
        ("GET", f"/v1/admin/failed-jobs/{some}", user, 403),
        ("GET", "/v1/orders", service, 403),
        ("GET", f"/v1/variants/{variant}/audio", service, 403),
        ("GET", f"/v1/orders/{order['id']}", service, 200),
        ("GET", f"/v1/orders/{order['id']}", user, 200),
    ]
    wrong = []
    for method, path, headers, status in expected:
        answer = await client.request(method, path, headers=headers)
        if answer.status_code != status:
            wrong.append(f"{method} {path} as {headers or 'anon'}: {answer.status_code}")
    listed = (await client.get("/v1/orders", headers=stranger)).json()["items"]
    if listed:
        wrong.append("a stranger's listing shows orders")
    return wrong


async def _console_suite(client: httpx.AsyncClient) -> tuple[int, list[str]]:
    """Every console route refuses anyone without a session (303 to the sign-in form, never
    cached, never framed), bearer tokens included; a user's token cannot sign in; an
    operator's session cookie opens nothing under /v1."""
    user = {"Authorization": f"Bearer {issue_token(SECRET, user_id=uuid.uuid4())}"}
    service = {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}
    wrong, cases = [], 0
    for method, path in CONSOLE_ROUTES:
        for who, headers in (("anon", {}), ("user", user), ("service bearer", service)):
            cases += 1
            answer = await client.request(method, path, headers=headers, data={"csrf_token": "x"})
            if not (
                answer.status_code == 303
                and answer.headers.get("location", "").startswith("/console/login")
                and answer.headers.get("cache-control") == "no-store"
                and "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
            ):
                wrong.append(f"{method} {path} as {who}: {answer.status_code}")
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as browser:
        for who, token, expected in (("user", user, 403), ("service", service, 303)):
            cases += 1
            form = await browser.get("/console/login")
            csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed = await browser.post(
                "/console/login",
                data={"csrf_token": csrf, "token": token["Authorization"].split()[1]},
            )
            if signed.status_code != expected:
                wrong.append(f"sign-in with a {who} token: {signed.status_code}")
        cookie = browser.cookies.get("serenade_console")
        cases += 1
        if not cookie:
            wrong.append("an operator's sign-in set no session cookie")
        api = await client.get(
            "/v1/admin/failed-jobs", headers={"Cookie": f"serenade_console={cookie}"}
        )
        if api.status_code != 401:
            wrong.append(f"the console cookie on /v1/admin/failed-jobs: {api.status_code}")
    return cases, wrong


def _tampered(url: str) -> list[str]:
    path, query = url.split("?")
    params = {key: values[0] for key, values in parse_qs(query).items()}
    sig = params["signature"]
    other_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    later = str(int(params["expires"]) + 60)
    if "variant-1" in path:
        other_path = path.replace("variant-1", "variant-2")
    else:  # a share link's audio: another share token
        other_path = path.replace(path.split("/")[3], str(uuid.uuid4()))
    return [
        f"{other_path}?expires={params['expires']}&signature={sig}",
        f"{path}?expires={later}&signature={sig}",
        f"{path}?expires={params['expires']}&signature={other_sig}",
        f"{path}?expires={params['expires']}&signature={sig[:-2]}",
        f"{path}?expires={params['expires']}",
        f"{path}?signature={sig}",
        path,
        f"{path}?expires=abc&signature={sig}",
    ]


async def _tamper_suite(
    client: httpx.AsyncClient, order: dict[str, Any], owner: str
) -> tuple[int, list[str]]:
    variant = order["variants"][0]
    user = {"Authorization": f"Bearer {owner}"}
    media_url = (await client.get(f"/v1/variants/{variant['id']}/audio", headers=user)).json()[
        "url"
    ]
    share_url = (await client.get(f"/v1/share/{variant['share_token']}")).json()["audio_url"]
    wrong = []
    for good in (media_url, share_url):
        served = await client.get(good)
        if served.status_code != 200:
            wrong.append(f"the untampered {urlsplit(good).path} is {served.status_code}")
    candidates = _tampered(media_url) + _tampered(share_url)
    expired = UrlSigner(SECRET, ttl_seconds=1).sign_path(
        urlsplit(media_url).path, now=time.time() - 3600
    )
    candidates.append(expired.url)
    for candidate in candidates:
        answer = await client.get(candidate)
        if answer.status_code != 403 or not answer.headers["content-type"].startswith(
            "application/problem+json"
        ):
            wrong.append(f"{candidate}: {answer.status_code}")
    for raw in TRAVERSALS:
        url = httpx.URL(
            str(client.base_url), raw_path=f"{raw}?expires=9999999999&signature=abc".encode()
        )
        answer = await client.send(httpx.Request("GET", url))
        if answer.status_code not in (400, 403, 404):
            wrong.append(f"{raw}: {answer.status_code}")
    return len(candidates) + len(TRAVERSALS), wrong


async def _rls_matrix(stack: Stack) -> tuple[int, list[str]]:
    """The matrix in one transaction that is rolled back: it leaves nothing behind."""
    async with stack.admin() as conn, _undone(conn):
        world = await seed_world(conn)
        return len(build_cases(world)), await evaluate(conn, world)


async def _complete(stack: Stack, order_id: uuid.UUID) -> bool:
    async with stack.admin() as conn:
        statuses = await conn.fetch(
            "SELECT status::text AS s FROM song_variants WHERE order_id = $1", order_id
        )
    return bool(statuses) and all(row["s"] == "complete" for row in statuses)


async def test_tokens_signed_urls_and_row_level_security_leak_nothing(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    async with running_stack(tmp_path, StackOptions()) as stack:
        # First, while the database holds no other rows ("service_role sees everything" is
        # counted exactly), and undone afterwards.
        rls_cases, rls_wrong = await _rls_matrix(stack)
        load = LoadDriver(stack.api_url, users=1, concurrency=1, variant_counts=(2,))
        await load.run(orders=1)
        order_id = next(iter(load.accepted))
        await wait_until(lambda: _complete(stack, order_id), timeout=30, what="the order")
        owner = load.token_of_first_user
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as client:
            order = (
                await client.get(
                    f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {owner}"}
                )
            ).json()
            jwt_wrong = await _jwt_suite(client)
            role_wrong = await _role_suite(client, order, owner)
            tamper_cases, tamper_wrong = await _tamper_suite(client, order, owner)
            console_cases, console_wrong = await _console_suite(client)
        static = await _static_findings(stack)
        noticed = await _static_checks_notice_damage(stack)
    leaked = (
        len(jwt_wrong) + len(role_wrong) + len(tamper_wrong) + len(rls_wrong) + len(console_wrong)
    )
    report(
        "access",
        {
            "jwt_cases": len(BAD_TOKENS),
            "role_cases": 12,
            "tamper_cases": tamper_cases,
            "console_cases": console_cases,
            "rls_cases": rls_cases,
            "static_checks": len(_CHECKS) + 1,
            "leaked": leaked,
            "static_findings": sum(len(rows) for rows in static.values()),
        },
    )
    assert not rls_wrong, "\n".join(rls_wrong)
    assert not jwt_wrong, jwt_wrong
    assert not role_wrong, role_wrong
    assert not tamper_wrong, tamper_wrong
    assert not console_wrong, console_wrong
    assert not rls_wrong, "\n".join(rls_wrong)
    assert not static, static
    assert noticed == set(_CHECKS), set(_CHECKS) - noticed
