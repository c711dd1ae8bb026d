"""The suite: servers, services, every measurement in one run, then the table, the JSON and the
chart.

    .venv/bin/python -m bench [--orders 1000] [--concurrency 16] [--duration 8] [--no-durable]

Order of the run (each step on the same servers):
1. the API alone (generator and dead-letter service not started yet): /health, POST and GET
   with their database floors, POST at half its peak rate; then POST and GET with one API
   process and with two (``serenade api --workers 2``, on a port of its own);
2. its requests are published and purged, the generator and dead-letter service start;
3. the pipeline with one generator taking turns with its database floor (``--turns`` rounds of
   ``--orders`` each, summed: both see the machine as it drifts), then its NATS floor;
4. a second generator, the pipeline again;
5. the generators stopped, orders queued, one generator with default settings and a provider
   taking 2 s per song (bench.delayed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats

from bench.apiload import ProcessesRun, measure_api, measure_rates, warm_up
from bench.chart import draw_chart
from bench.delayed import DELAY_MS, DelayedRun, queue_orders, run_delayed
from bench.floors import FloorRun, nats_pipeline_floor, pipeline_db_floor
from bench.pipeline import PipelineRound, PipelineRun, pipeline_round, run_pipeline
from bench.report import Results, machine, print_table, write_json
from bench.stack import (
    JWT_SECRET,
    CpuMeter,
    MemoryWatch,
    Servers,
    Stack,
    fsync_probe,
    start_servers,
)
from bench.workload import User, make_users, wait_outbox_published
from services.launcher import api_url, stop_all
from shared.events import STREAM_NAME, SUBJECT_VARIANT_REQUESTED

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="serenade next to its floors, in one run on embedded servers started here",
    )
    parser.add_argument(
        "--orders", type=int, default=2000, help="orders per pipeline run (issue 14: >= 2000)"
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=2,
        help="rounds of the pipeline and of its database floor, taking turns",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds of each API measurement"
    )
    parser.add_argument(
        "--generator-concurrency",
        type=int,
        default=None,
        help="variants per generator process (default: the service's own default)",
    )
    parser.add_argument(
        "--delayed-orders",
        type=int,
        default=1200,
        help=f"orders (x3 variants) for the phase with a provider taking {DELAY_MS} ms (0: none)",
    )
    parser.add_argument(
        "--no-durable",
        dest="durable",
        action="store_false",
        help="PostgreSQL without fsync and synchronous commit (faster, not honest)",
    )
    parser.add_argument(
        "--audio-on-disk",
        dest="audio_in_memory",
        action="store_false",
        help="write the audio files beside PostgreSQL's data, on disk, instead of in /dev/shm",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json/png")
    return parser.parse_args(argv)


async def _drain_and_purge(dsn: str, nats_url: str) -> None:
    """Wait until the outbox is published, then drop the API phase's generation requests: the
    pipeline starts with an empty queue."""
    await wait_outbox_published(dsn)
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().purge_stream(STREAM_NAME, subject=SUBJECT_VARIANT_REQUESTED)
    finally:
        await nc.close()


async def _run(args: argparse.Namespace, folder: Path, audio: Path | None) -> Results:
    background = CpuMeter.background()
    disk_before = fsync_probe(folder)
    servers = await start_servers(folder, durable=args.durable)
    stack = Stack(
        servers,
        folder,
        generator_concurrency=args.generator_concurrency,
        audio_root=audio,
    )
    users = make_users(JWT_SECRET, args.concurrency)
    memory, cpu = MemoryWatch(), CpuMeter()

    def watch(name: str, pid: int) -> None:
        memory.watch(name, pid)
        cpu.watch(name, pid)

    started = time.monotonic()
    try:
        with memory.running():
            watch("nats-server", servers.nats.pid or 0)
            watch("api", (await stack.start_api()).pid)
            _say("API up; warming it up")
            await warm_up(stack.api_url, users, concurrency=args.concurrency)
            _say("the API alone")
            api = await measure_api(
                stack.api_url,
                servers.dsn,
                users,
                concurrency=args.concurrency,
                duration=args.duration,
                meter=cpu,
            )
            processes = await _api_processes(args, stack=stack, users=users, cpu=cpu)
            await _drain_and_purge(servers.dsn, servers.nats_url)
            watch("generator-1", (await stack.start_generator()).pid)
            watch("deadletter", (await stack.start_deadletter()).pid)
            _say("pipeline warm-up")
            pipeline_options = {"orders": args.orders, "concurrency": args.concurrency}
            await run_pipeline(
                stack.api_url,
                servers.nats_url,
                users,
                orders=max(50, args.orders // 10),
                concurrency=args.concurrency,
                generators=1,
            )
            _say(f"pipeline, one generator, taking turns with its floor ({args.turns} rounds)")
            rounds: list[PipelineRound] = []
            floors: list[FloorRun] = []
            for _ in range(args.turns):
                with cpu.phase("pipeline, 1 generator"):
                    rounds.append(
                        await pipeline_round(
                            stack.api_url, servers.nats_url, users, **pipeline_options
                        )
                    )
                with cpu.phase("pipeline floor (asyncpg)"):
                    floors.append(await pipeline_db_floor(servers.dsn, users, **pipeline_options))
            one = PipelineRun.of(rounds, concurrency=args.concurrency, generators=1)
            db_floor = FloorRun(
                sum(each.orders for each in floors), sum(each.seconds for each in floors)
            )
            _say("pipeline floor (nats-py)")
            with cpu.phase("pipeline floor (nats-py)"):
                nats_floor = await nats_pipeline_floor(servers.nats_url, **pipeline_options)
            watch("generator-2", (await stack.start_generator()).pid)
            _say("pipeline, two generators")
            with cpu.phase("pipeline, 2 generators"):
                two = await run_pipeline(
                    stack.api_url, servers.nats_url, users, generators=2, **pipeline_options
                )
            # 0 leaves the phase out (it would wait its whole timeout for no completion).
            delayed = (
                await _delayed_phase(
                    args, stack=stack, servers=servers, users=users, cpu=cpu, watch=watch
                )
                if args.delayed_orders > 0
                else None
            )
    finally:
        stack.stop()
        servers.stop()
    disk = {"before": disk_before, "after": fsync_probe(folder)}
    return Results(
        machine=machine(durable=args.durable, audio=str(stack.settings.storage_url)),
        command=" ".join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]]),
        seconds=time.monotonic() - started,
        api=api,
        api_processes=processes,
        pipeline=one,
        pipeline_two=two,
        db_floor=db_floor,
        nats_floor=nats_floor,
        memory={name: rss for name, rss in memory.peaks.items() if name != "nats-server"},
        servers_memory={name: rss for name, rss in memory.peaks.items() if name == "nats-server"},
        delayed=delayed,
        cpu=cpu.phases,
        background_cores=background,
        disk_fsync=disk,
    )


async def _api_processes(
    args: argparse.Namespace, *, stack: Stack, users: list[User], cpu: CpuMeter
) -> ProcessesRun:
    """POST and GET rates with the one API process, then with two on a port of their own."""
    _say("the API alone, one process")
    options = {"concurrency": args.concurrency, "duration": args.duration, "meter": cpu}
    post_one, get_one = await measure_rates(stack.api_url, users, label="1 API process", **options)
    _say("the API alone, two processes")
    two = await stack.start_api_processes(2)
    # CPU only: its RSS is three processes' (supervisor and workers), not one service's.
    cpu.watch("api x2", two.pid)
    try:
        url = api_url(two.settings)
        await warm_up(url, users, concurrency=args.concurrency)
        post_two, get_two = await measure_rates(url, users, label="2 API processes", **options)
    finally:
        stop_all([two])
    return ProcessesRun(post_one, get_one, post_two, get_two)


async def _delayed_phase(
    args: argparse.Namespace,
    *,
    stack: Stack,
    servers: Servers,
    users: list[User],
    cpu: CpuMeter,
    watch: Callable[[str, int], None],
) -> DelayedRun:
    """One generator, default settings, a provider taking DELAY_MS per song, on a queue of
    requests made while no generator ran."""
    stack.stop_generators()
    _say(f"delayed provider: queueing {args.delayed_orders} orders")
    await queue_orders(
        stack.api_url,
        servers.dsn,
        users,
        orders=args.delayed_orders,
        concurrency=args.concurrency,
    )

    async def start() -> int:
        service = await stack.start_generator("generator-delayed", provider_delay_ms=DELAY_MS)
        watch("generator-delayed", service.pid)
        return service.pid

    _say(f"delayed provider ({DELAY_MS} ms per song), one generator")
    with cpu.phase(f"provider {DELAY_MS} ms, 1 gen."):
        return await run_delayed(servers.nats_url, start, orders=args.delayed_orders)


# Creating a file on this machine's disk (ext4, mounted with discard, under KVM) costs from
# 0.05 to 2 ms of kernel CPU, varying from hour to hour; in tmpfs 0.05 ms. The generator writes
# one per variant: on disk that cost, which is the disk's and not serenade's (the floors write
# no audio at all, and production stores audio in S3), could outweigh all the Python it runs.
_MEMORY = Path("/dev/shm")  # noqa: S108 - a TemporaryDirectory (0700, random name) inside


@contextlib.contextmanager
def _audio_folder(*, in_memory: bool) -> Iterator[Path | None]:
    """A folder in tmpfs for the run's audio files (removed after it) when asked and there is
    one; None: in the run's folder, on disk."""
    if not (in_memory and _MEMORY.is_dir()):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="serenade-bench-audio-", dir=_MEMORY) as folder:
        yield Path(folder)


def _say(text: str) -> None:
    print(f"-- {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    with (
        tempfile.TemporaryDirectory(prefix="serenade-bench-") as folder,
        _audio_folder(in_memory=args.audio_in_memory) as audio,
    ):
        results = _event_loop_run(_run(args, Path(folder), audio))
    print_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "latest.json")
    draw_chart(results, args.out / "latest.png")
    print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.png'}")
    print(f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    return 0


def _event_loop_run(work: Coroutine[Any, Any, Results]) -> Results:
    """On uvloop when it is installed (a cheaper load generator), else on asyncio's loop."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.run(work)
    result: Results = uvloop.run(work)
    return result
