"""Embedded PostgreSQL and nats-server: start, connect, restart with data kept, stop cleanly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats
import psutil

from services.launcher import EmbeddedNats, EmbeddedPostgres
from shared.db import connect

if TYPE_CHECKING:
    from pathlib import Path


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            found.append(process)
    return found


async def test_embedded_postgres_keeps_data_across_restart_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", durable=False)
    dsn = server.start()
    assert server.port not in (5432, None)
    conn = await connect(dsn)
    await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('hello')")
    await conn.close()
    server.stop()
    assert server.running_pid() is None
    assert _postgres_processes(server.pgdata) == []

    again = EmbeddedPostgres(tmp_path / "pg", durable=False)
    conn = await connect(again.start())
    try:
        assert await conn.fetchval("SELECT note FROM kept") == "hello"
    finally:
        await conn.close()
        again.stop()
    assert _postgres_processes(again.pgdata) == []


async def test_embedded_postgres_start_finds_a_server_already_running_on_its_folder(
    tmp_path: Path,
) -> None:
    first = EmbeddedPostgres(tmp_path / "pg", durable=False)
    dsn = first.start()
    second = EmbeddedPostgres(tmp_path / "pg", durable=False)
    try:
        assert second.start() == dsn
    finally:
        first.stop()


async def test_embedded_nats_keeps_jetstream_data_across_restart(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    assert server.port not in (4222, None)
    client = await nats.connect(url)
    js = client.jetstream()
    await js.add_stream(name="KEPT", subjects=["kept.>"])
    ack = await js.publish("kept.one", b"hello")
    await client.close()
    pid = server.pid
    server.stop()
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    url = server.start()
    client = await nats.connect(url)
    try:
        message = await client.jetstream().get_msg("KEPT", ack.seq)
        assert message.data == b"hello"
    finally:
        await client.close()
        server.stop()


def test_embedded_nats_kill_is_a_crash_and_start_recovers(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    pid = server.pid
    server.kill()
    assert pid is not None
    assert not psutil.pid_exists(pid)
    server.start()
    try:
        assert server.pid != pid
    finally:
        server.stop()
