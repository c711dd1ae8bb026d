"""Generator throughput with the ``instant`` provider: variants per second for one and for two
``serenade generator`` processes, against embedded PostgreSQL and nats-server started here.

Each run gets a fresh database and a fresh nats-server (so a fresh stream and consumer): it seeds
the orders, starts the processes, waits until they are ready, publishes one
``serenade.variants.requested`` per variant and times until every variant is complete.

    .venv/bin/python bench/bench_generator.py [--orders 200] [--concurrency 8] [--processes 1 2]
        [--provider-delay-ms 0]

It prints, per run, the variants per second and the generators' CPU per variant (from ready to
the last variant complete).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.launcher import (  # noqa: E402
    EmbeddedNats,
    EmbeddedPostgres,
    ServiceProcess,
    create_database,
    stop_all,
    wait_until,
)
from shared.db import Caller, create_pool, transaction  # noqa: E402
from shared.events import VariantRequested  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.stream import ensure_stream  # noqa: E402


@dataclass(frozen=True)
class Run:
    processes: int
    variants: int
    seconds: float
    # The generators' CPU seconds from ready to the last variant complete (start-up excluded).
    cpu_seconds: float

    @property
    def cpu_ms_per_variant(self) -> float:
        return self.cpu_seconds * 1000 / self.variants

    @property
    def per_second(self) -> float:
        return self.variants / self.seconds


async def _seed(pool: asyncpg.Pool, orders: int) -> list[VariantRequested]:
    requests = []
    async with transaction(pool, Caller.service()) as conn:
        for _ in range(orders):
            order_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO orders (id, user_id, recipient_name, occasion, genre)"
                " VALUES ($1, $2, 'Bench', 'birthday', 'pop')",
                order_id,
                uuid.uuid4(),
            )
            for number in (1, 2, 3):
                variant_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO song_variants (id, order_id, variant_number) VALUES ($1, $2, $3)",
                    variant_id,
                    order_id,
                    number,
                )
                requests.append(
                    VariantRequested(
                        variant_id=variant_id,
                        order_id=order_id,
                        variant_number=number,
                        reason="created",
                    )
                )
    return requests


async def bench_once(
    root: Path,
    admin_dsn: str,
    *,
    processes: int,
    orders: int,
    concurrency: int,
    provider_delay_ms: int = 0,
) -> Run:
    nats_server = EmbeddedNats(root / f"nats-{processes}")
    nats_url = nats_server.start()
    dsn = await create_database(admin_dsn, prefix="bench")
    pool = await create_pool(dsn, max_size=4)
    nc = await nats.connect(nats_url)
    children: list[ServiceProcess] = []
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        requests = await _seed(pool, orders)
        settings = Settings(
            database_url=dsn,
            nats_url=nats_url,
            provider="instant",
            provider_delay_ms=provider_delay_ms,
            storage_url=(root / f"storage-{processes}").as_uri(),
            generator_concurrency=concurrency,
            data_dir=root / "data",
        )
        children = [
            ServiceProcess(["generator"], settings, root / f"generator-{processes}-{n}.log")
            for n in range(processes)
        ]
        await asyncio.gather(*(child.start().wait_ready() for child in children))
        generators = [psutil.Process(child.pid) for child in children]
        cpu_before = sum(_cpu(process) for process in generators)

        started = time.monotonic()
        await asyncio.gather(
            *(js.publish(r.subject, r.to_json(), headers=r.headers()) for r in requests)
        )

        async def done() -> bool:
            async with transaction(pool, Caller.service()) as conn:
                complete = await conn.fetchval(
                    "SELECT count(*) FROM song_variants WHERE status = 'complete'"
                )
            return bool(complete == len(requests))

        await wait_until(done, timeout=600, interval=0.02, what="every variant complete")
        seconds = time.monotonic() - started
        cpu = sum(_cpu(process) for process in generators) - cpu_before
        return Run(processes, len(requests), seconds, cpu)
    finally:
        stop_all(children)
        await nc.close()
        await pool.close()
        nats_server.stop()


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200, help="orders of 3 variants each")
    parser.add_argument("--concurrency", type=int, default=8, help="slots per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--provider-delay-ms",
        type=int,
        default=0,
        help="each song takes this long (a remote "
        "provider's wait: the generator is then bound by its slots, not its work)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serenade-bench-") as folder:
        root = Path(folder)
        postgres = EmbeddedPostgres(root / "postgres", durable=False)
        admin_dsn = postgres.start()
        try:
            runs = [
                await bench_once(
                    root,
                    admin_dsn,
                    processes=count,
                    orders=args.orders,
                    concurrency=args.concurrency,
                    provider_delay_ms=args.provider_delay_ms,
                )
                for count in args.processes
            ]
        finally:
            postgres.stop()
    delay = f" taking {args.provider_delay_ms} ms" if args.provider_delay_ms else ""
    print(
        f"generator, instant provider{delay}, {args.orders * 3} variants, "
        f"concurrency {args.concurrency} per process, {os.cpu_count()} CPUs"
    )
    for run in runs:
        print(
            f"  {run.processes} process(es): {run.per_second:7.1f} variants/s "
            f"({run.variants} in {run.seconds:.2f} s), "
            f"generator CPU {run.cpu_ms_per_variant:.2f} ms per variant"
        )


if __name__ == "__main__":
    asyncio.run(main())
