"""The documented deployment's database roles, on a real PostgreSQL 16.

compose.yaml runs ``deploy/postgres/10-serenade-roles.sql`` once, as the superuser, through the
postgres image's entrypoint, then every serenade process (``serenade migrate`` included) logs
in as the role named in compose.yaml's DSN. Here the same script runs through the same psql
invocation (pgserver ships psql) against a server of this module's own (roles are
cluster-wide), then ``serenade migrate`` runs as that role, and the role is held to the design:
neither superuser nor BYPASSRLS, inheriting none of the application roles' rights, unable to
escalate, seeing no row and writing none while acting as itself, and bound by row-level
security once it takes an application role as every request does.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import yaml

from services.api.common.database import Database
from services.api.orders.queries import create_order
from services.api.orders.schemas import CreateOrder
from services.launcher import EmbeddedPostgres
from shared.db import Caller, connect, create_pool, transaction
from shared.migrations import load_migrations

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "10-serenade-roles.sql"
APP_ROLES = ("anon", "authenticated", "service_role")
PASSWORD = "test-login-password-" + uuid.uuid4().hex


def compose_dsn(password: str) -> str:
    """The DSN compose.yaml gives serenade migrate, with ``password`` as SERENADE_DB_PASSWORD."""
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    template = document["services"]["migrate"]["environment"]["SERENADE_DATABASE_URL"]
    assert isinstance(template, str)
    dsn, substituted = re.subn(r"\$\{SERENADE_DB_PASSWORD(?::?[-?][^}]*)?\}", password, template)
    assert substituted == 1, template
    return dsn


def run_init_script(
    server: EmbeddedPostgres, password: str | None
) -> subprocess.CompletedProcess[str]:
    """What the postgres image's entrypoint does with the script: psql as the superuser, with
    the container's environment, which holds SERENADE_DB_PASSWORD."""
    return server.run_script(INIT_SCRIPT, {"SERENADE_DB_PASSWORD": password} if password else {})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL 16 of this module's own: the script creates cluster-wide roles."""
    postgres = EmbeddedPostgres(tmp_path_factory.mktemp("deployment-postgres"), durable=False)
    postgres.start()
    yield postgres
    postgres.stop()


@pytest.fixture(scope="module")
def initialised(server: EmbeddedPostgres) -> subprocess.CompletedProcess[str]:
    assert server.port is not None
    result = run_init_script(server, PASSWORD)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def login_dsn(server: EmbeddedPostgres, initialised: subprocess.CompletedProcess[str]) -> str:
    """compose.yaml's DSN, pointed at this module's server."""
    template = urlsplit(compose_dsn(PASSWORD))
    assert template.username == "serenade"
    assert template.password == PASSWORD
    netloc = f"{template.username}:{template.password}@127.0.0.1:{server.port}"
    return urlunsplit(template._replace(netloc=netloc))


def run_migrate(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate"],
        env={"PATH": "/usr/bin:/bin", "SERENADE_DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def migrated(login_dsn: str) -> subprocess.CompletedProcess[str]:
    result = run_migrate(login_dsn)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
async def as_login_role(
    login_dsn: str, migrated: subprocess.CompletedProcess[str]
) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(login_dsn)
    yield conn
    await conn.close()


def test_compose_dsn_names_the_role_and_database_the_init_script_creates() -> None:
    dsn = urlsplit(compose_dsn(PASSWORD))
    assert (dsn.username, dsn.path) == ("serenade", "/serenade")
    script = INIT_SCRIPT.read_text("utf-8")
    assert "CREATE ROLE serenade LOGIN" in script
    assert "CREATE DATABASE serenade OWNER serenade" in script


def test_init_script_refuses_to_run_without_the_login_password(
    server: EmbeddedPostgres, initialised: subprocess.CompletedProcess[str]
) -> None:
    assert server.port is not None
    result = run_init_script(server, password=None)
    assert result.returncode != 0
    assert "SERENADE_DB_PASSWORD is not set" in result.stderr


def test_init_script_can_run_again_on_a_cluster_it_already_set_up(
    server: EmbeddedPostgres, initialised: subprocess.CompletedProcess[str]
) -> None:
    assert server.port is not None
    again = run_init_script(server, PASSWORD)
    assert again.returncode == 0, again.stderr


def test_migrate_as_the_login_role_takes_the_database_to_head_then_does_nothing(
    login_dsn: str, migrated: subprocess.CompletedProcess[str]
) -> None:
    for migration in load_migrations():
        assert f"applied {migration.name}" in migrated.stdout
    again = run_migrate(login_dsn)
    assert again.returncode == 0, again.stderr
    assert "database is up to date" in again.stdout


async def test_login_role_is_neither_superuser_nor_bypassrls_and_inherits_no_app_role(
    as_login_role: asyncpg.Connection,
) -> None:
    conn = as_login_role
    assert await conn.fetchval("SELECT session_user") == "serenade"
    me = await conn.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolinherit, rolcreaterole, rolcreatedb, rolreplication,"
        " rolcanlogin FROM pg_roles WHERE rolname = session_user"
    )
    assert me is not None
    assert dict(me) == {
        "rolsuper": False, "rolbypassrls": False, "rolinherit": False, "rolcreaterole": False,
        "rolcreatedb": False, "rolreplication": False, "rolcanlogin": True,
    }  # fmt: skip
    grants = await conn.fetch(
        "SELECT r.rolname, m.inherit_option, m.set_option, m.admin_option"
        " FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = session_user)"
        " ORDER BY r.rolname"
    )
    assert [tuple(grant) for grant in grants] == [
        (role, False, True, False) for role in sorted(APP_ROLES)
    ]
    app_roles = await conn.fetch(
        "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles"
        " WHERE rolname = ANY($1::text[])",
        list(APP_ROLES),
    )
    assert sorted(tuple(row) for row in app_roles) == [
        (role, False, False, False) for role in sorted(APP_ROLES)
    ]


async def test_schema_belongs_to_the_login_role_and_forces_row_level_security_on_it(
    as_login_role: asyncpg.Connection,
) -> None:
    tables = await as_login_role.fetch(
        "SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity,"
        " c.relforcerowsecurity FROM pg_class c"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
    )
    assert {row["relname"] for row in tables} >= {"orders", "song_variants", "failed_jobs"}
    for row in tables:
        assert row["owner"] == "serenade", row["relname"]
        assert row["relrowsecurity"], row["relname"]
        assert row["relforcerowsecurity"], row["relname"]


@pytest.mark.parametrize(
    "statement",
    [
        "SET ROLE postgres",
        "CREATE ROLE intruder LOGIN",
        "ALTER ROLE serenade BYPASSRLS",
        "ALTER ROLE serenade SUPERUSER",
        "GRANT pg_read_all_data TO serenade",
        "CREATE DATABASE another",
    ],
)
async def test_login_role_cannot_give_itself_more_power(
    as_login_role: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_login_role.execute(statement)


async def _seed_two_orders(conn: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    """One order for each of two users, written as service_role (the system's own writes)."""
    users = (uuid.uuid4(), uuid.uuid4())
    async with transaction(conn, Caller.service()):
        for user in users:
            order = await conn.fetchval(
                "INSERT INTO orders (user_id, recipient_name, occasion, genre)"
                " VALUES ($1, 'Ada', 'birthday', 'pop') RETURNING id",
                user,
            )
            await conn.execute(
                "INSERT INTO song_variants (order_id, variant_number) VALUES ($1, 1)", order
            )
    return users


async def test_login_role_acting_as_itself_sees_no_row_and_writes_none(
    as_login_role: asyncpg.Connection,
) -> None:
    conn = as_login_role
    await _seed_two_orders(conn)
    # It owns the tables, so it holds their privileges; FORCE ROW LEVEL SECURITY with no policy
    # for it leaves it nothing: default deny.
    for table in ("orders", "song_variants", "failed_jobs", "outbox"):
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await conn.execute(
            "INSERT INTO orders (user_id, recipient_name, occasion, genre)"
            " VALUES ($1, 'Eve', 'birthday', 'pop')",
            uuid.uuid4(),
        )
    assert await conn.execute("UPDATE song_variants SET attempts = 7") == "UPDATE 0"
    assert await conn.execute("DELETE FROM orders") == "DELETE 0"


async def test_login_role_taking_authenticated_sees_only_that_users_rows(
    as_login_role: asyncpg.Connection,
) -> None:
    conn = as_login_role
    user_a, user_b = await _seed_two_orders(conn)
    async with transaction(conn, Caller.user(user_a)):
        assert await conn.fetchval("SELECT current_user") == "authenticated"
        owners = await conn.fetch("SELECT DISTINCT user_id FROM orders")
        variants = await conn.fetchval(
            "SELECT count(*) FROM song_variants v JOIN orders o ON o.id = v.order_id"
            " WHERE o.user_id = $1",
            user_b,
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT id FROM failed_jobs")
    assert [row["user_id"] for row in owners] == [user_a]
    assert variants == 0
    # The role lasted for the transaction only: acting as itself again, it sees nothing.
    assert await conn.fetchval("SELECT current_user") == "serenade"
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0


async def test_login_role_writes_a_group_of_orders_in_one_statement_each_as_its_caller(
    login_dsn: str, as_login_role: asyncpg.Connection
) -> None:
    """The API's group of orders (migration 0120's api.create_orders, outside any transaction)
    works for the deployment's login role, which takes service_role and each order's caller
    only for the statement, and not as a superuser, as in the other tests."""
    users = [uuid.uuid4(), uuid.uuid4()]
    woken: list[None] = []
    pool = await create_pool(login_dsn, min_size=1, max_size=1)
    try:
        db = Database(pool, lambda: woken.append(None))
        body = CreateOrder.model_validate(
            {"recipient_name": "Ada", "occasion": "birthday", "genre": "pop", "variant_count": 2}
        )
        made = await asyncio.gather(
            *(
                create_order(db, Caller.user(u), body, idempotency_key=None, correlation_id="c")
                for u in users
            )
        )
    finally:
        await pool.close()

    assert [created.order.user_id for created in made] == users
    assert len(woken) == 1  # one group, one statement
    conn = as_login_role
    assert await conn.fetchval("SELECT current_user") == "serenade"
    async with transaction(conn, Caller.service()):
        xmins = await conn.fetch(
            "SELECT DISTINCT xmin::text FROM orders WHERE user_id = ANY($1::uuid[])", users
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE (payload->>'order_id')::uuid = ANY($1::uuid[])",
            [created.order.id for created in made],
        )
    assert len(xmins) == 1
    assert events == 2 * 3
