"""The run's results: the targets judged, the table printed, the JSON written."""

from __future__ import annotations

import dataclasses
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.apiload import ApiRun, ProcessesRun
from bench.delayed import DelayedRun
from bench.floors import FloorRun
from bench.load import Latency, LoadResult
from bench.pipeline import PipelineRun

__all__ = [
    "Results",
    "Target",
    "judge",
    "machine",
    "print_table",
    "print_targets",
    "read_json",
    "targets",
    "write_json",
]

# Issue 14's targets, each judged on figures measured in the same run, on the same servers.
# serenade's rate as a share of its per-statement asyncpg floor doing the same database work.
PIPELINE_SHARE = 1.0
POST_SHARE = 1.0
GET_SHARE = 0.75
# POST p99 as a multiple of its p50, in an open loop at half the measured peak POST rate.
POST_SPREAD = 5.0
# Variants/s with one generator, default settings, 2 s per song.
DELAYED_TARGET = 300.0
# Peak resident memory of each serenade service over the whole run, MB.
MEMORY_LIMIT_MB = 200.0
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Results:
    machine: dict[str, Any]
    command: str
    seconds: float
    api: ApiRun
    pipeline: PipelineRun
    pipeline_two: PipelineRun
    db_floor: FloorRun
    nats_floor: FloorRun
    memory: dict[str, int]
    servers_memory: dict[str, int]
    # Cores used per phase, by process (see bench.stack.CpuMeter).
    cpu: dict[str, dict[str, float]]
    # Cores busy before the run with nothing of the bench running: other work on the machine.
    background_cores: float
    # The disk's fdatasync latency before and after the run (bench.stack.fsync_probe).
    disk_fsync: dict[str, dict[str, float]]
    # One generator, default settings, a provider taking seconds per song (bench.delayed).
    delayed: DelayedRun | None = None
    # The API alone with one process and with two (``serenade api --workers 2``).
    api_processes: ProcessesRun | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """One target of issue 14: a figure of the run, the threshold it is held to, the verdict."""

    name: str
    value: float
    comparison: str  # ">=", "<=" or "<": how ``value`` must stand to ``threshold``
    threshold: float
    unit: str  # "%" (value and threshold are fractions), "x", "/s" or " MB"
    met: bool
    # False when the run left the measurement out (``--delayed-orders 0``): missed, not hidden.
    measured: bool = True

    @property
    def figure(self) -> str:
        return _formatted(self.value, self.unit) if self.measured else "not run"

    @property
    def goal(self) -> str:
        return f"{self.comparison} {_formatted(self.threshold, self.unit)}"

    @property
    def verdict(self) -> str:
        return "met" if self.met else "missed"


def _formatted(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0%}"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "/s":
        return f"{value:.1f}/s"
    return f"{value:.0f}{unit}"


_JUDGES = {
    ">=": lambda value, threshold: value >= threshold,
    "<=": lambda value, threshold: value <= threshold,
    "<": lambda value, threshold: value < threshold,
}


def judge(
    name: str, value: float, comparison: str, threshold: float, unit: str, *, valid: bool = True
) -> Target:
    """``value`` held to ``threshold``; ``valid`` False (a figure that measured nothing, a run
    that did not finish) misses whatever the value."""
    met = valid and bool(_JUDGES[comparison](value, threshold))
    return Target(name, value, comparison, threshold, unit, met)


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def machine(*, durable: bool, audio: str) -> dict[str, Any]:
    """The machine, and the two choices of the run that weigh on its figures."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "postgres_durable": durable,
        "audio_storage": audio,
    }


def _ratio(value: float, floor: float) -> float:
    return value / floor if floor else 0.0


PIPELINE = "pipeline end to end vs its asyncpg floor"
POST = "POST /v1/orders vs its asyncpg floor"
GET = "GET /v1/orders/{id} vs its asyncpg floor"
SPREAD = "POST p99 / p50 at half the peak POST rate"
DELAYED = "delayed provider variants/s, 1 generator"


def _memory_name(service: str) -> str:
    return f"{service} peak RSS"


def targets(results: Results) -> list[Target]:
    """Every target of issue 14, judged on this run's figures."""
    api, pipe = results.api, results.pipeline
    half = api.post_half_load.latency
    db_floor = results.db_floor.per_second
    found = [
        judge(
            PIPELINE,
            _ratio(pipe.per_second, db_floor),
            ">=",
            PIPELINE_SHARE,
            "%",
            valid=db_floor > 0 and pipe.failed == 0,
        ),
        judge(
            POST,
            _ratio(api.post.per_second, api.post_floor.per_second),
            ">=",
            POST_SHARE,
            "%",
            valid=api.post_floor.per_second > 0,
        ),
        judge(
            GET,
            _ratio(api.get.per_second, api.get_floor.per_second),
            ">=",
            GET_SHARE,
            "%",
            valid=api.get_floor.per_second > 0,
        ),
        # No latency measured (p50 0) is no evidence of a tight spread.
        judge(
            SPREAD,
            half.p99 / half.p50 if half.p50 else 0.0,
            "<=",
            POST_SPREAD,
            "x",
            valid=half.p50 > 0 and api.post_half_load.errors == 0,
        ),
    ]
    delayed = results.delayed
    found.append(
        judge(
            DELAYED,
            delayed.per_second,
            ">=",
            DELAYED_TARGET,
            "/s",
            valid=delayed.completed == delayed.variants,
        )
        if delayed is not None
        else Target(DELAYED, 0.0, ">=", DELAYED_TARGET, "/s", met=False, measured=False)
    )
    found += [
        judge(_memory_name(name), rss / _MB, "<", MEMORY_LIMIT_MB, " MB")
        for name, rss in sorted(results.memory.items())
    ]
    return found


def _row(label: str, serenade: str = "", floor: str = "", ratio: str = "", goal: str = "") -> str:
    return f"  {label:<44}{serenade:>16}{floor:>18}{ratio:>8}  {goal}"


def print_table(results: Results) -> None:
    api, one, two = results.api, results.pipeline, results.pipeline_two
    m = results.machine
    judged = {target.name: target for target in targets(results)}
    print()
    print(
        f"serenade benchmark: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
        f"PostgreSQL {'durable (fsync on)' if m['postgres_durable'] else 'NOT durable'}, "
        f"Python {m['python']}, {results.seconds:.0f} s"
    )
    print(f"audio files written to {m.get('audio_storage', 'disk')}")
    print(f"command: {results.command}")
    print(
        f"other load on the machine before the run: {results.background_cores:.2f} cores busy"
        + (
            "  (figures disturbed: run again on a quiet machine)"
            if results.background_cores > 0.3
            else ""
        )
    )
    for when, probe in results.disk_fsync.items():
        print(
            f"disk fdatasync {when} the run: p50 {probe['p50_ms']:.2f} ms, p99 "
            f"{probe['p99_ms']:.2f} ms, max {probe['max_ms']:.1f} ms ({probe['per_second']:.0f}/s)"
        )
    print(_row("", "serenade", "floor", "ratio", "target"))
    print(
        f"Pipeline: {one.orders} orders x 3 variants"
        + (f" ({one.rounds} rounds taking turns with the floor)" if one.rounds > 1 else "")
        + f", {one.concurrency} HTTP clients, 1 generator, instant provider"
    )
    e2e = judged[PIPELINE]
    print(
        _row(
            "end-to-end orders/s (vs asyncpg floor)",
            f"{one.per_second:.1f}",
            f"{results.db_floor.per_second:.1f}",
            f"{e2e.value:.0%}",
            f"{e2e.goal} {e2e.verdict}",
        )
    )
    print(
        _row(
            "end-to-end orders/s (vs nats-py floor)",
            f"{one.per_second:.1f}",
            f"{results.nats_floor.per_second:.1f}",
            f"{_ratio(one.per_second, results.nats_floor.per_second):.0%}",
        )
    )
    print(_row("POST latency p50 / p99 (ms)", f"{one.post.p50:.1f} / {one.post.p99:.1f}"))
    print(
        _row(
            "POST -> orders.completed p50 / p99 (ms)",
            f"{one.completion.p50:.0f} / {one.completion.p99:.0f}",
        )
    )
    if one.failed or two.failed:
        print(_row("orders that did not complete", f"{one.failed} / {two.failed}"))
    print("Scale-out: the same pipeline with two generator processes")
    print(
        _row(
            "orders/s, 1 generator -> 2 generators",
            f"{one.per_second:.1f} -> {two.per_second:.1f}",
            "",
            f"x{_ratio(two.per_second, one.per_second):.2f}",
        )
    )
    print(
        _row(
            "POST -> completed p50 / p99 (ms), 2 gen.",
            f"{two.completion.p50:.0f} / {two.completion.p99:.0f}",
        )
    )
    if results.delayed is not None:
        _print_delayed(results.delayed, judged[DELAYED])
    print(f"API alone: {api.post.concurrency} clients (raw keep-alive HTTP), closed loop")
    print(_row("GET /health req/s (HTTP ceiling)", f"{api.health.per_second:.0f}"))
    for label, served, floor, name in (
        ("POST /v1/orders req/s", api.post, api.post_floor, POST),
        ("GET /v1/orders/{id} req/s", api.get, api.get_floor, GET),
    ):
        target = judged[name]
        print(
            _row(
                label,
                f"{served.per_second:.0f}",
                f"{floor.per_second:.0f}",
                f"{target.value:.0%}",
                f"{target.goal} {target.verdict}",
            )
        )
        print(
            _row(
                "  latency p50 / p99 (ms)",
                f"{served.latency.p50:.1f} / {served.latency.p99:.1f}",
                f"{floor.latency.p50:.1f} / {floor.latency.p99:.1f}",
            )
        )
    spread = judged[SPREAD]
    half = api.post_half_load.latency
    print(
        _row(
            f"POST at half peak ({api.half_load_rate:.0f}/s) p50 / p99",
            f"{half.p50:.1f} / {half.p99:.1f}",
            "",
            spread.figure,
            f"{spread.goal} {spread.verdict}",
        )
    )
    if results.api_processes is not None:
        _print_processes(results.api_processes)
    print("Memory: peak RSS during the run")
    for name, rss in sorted(results.memory.items()):
        target = judged[_memory_name(name)]
        print(_row(name, f"{rss / _MB:.0f} MB", "", "", f"{target.goal} {target.verdict}"))
    _print_cpu(results.cpu)
    errors = {
        "health": api.health,
        "post": api.post,
        "post floor": api.post_floor,
        "get": api.get,
        "get floor": api.get_floor,
        "post at half peak": api.post_half_load,
    }
    for name, run in errors.items():
        if run.errors:
            print(f"  ! {name}: {run.errors} errors, first: {run.first_error}")
    print_targets(list(judged.values()))


def print_targets(judged: list[Target]) -> None:
    """Issue 14's targets, one line each: figure, threshold, met or missed."""
    met = sum(target.met for target in judged)
    print(f"Targets (issue 14): {met} of {len(judged)} met")
    for target in judged:
        print(f"  {target.name:<48}{target.figure:>12}  {target.goal:<12}{target.verdict}")


def _print_processes(run: ProcessesRun) -> None:
    print(
        f"API alone, one vs two API processes (serenade api --workers 2): "
        f"{run.post_one.concurrency} clients, closed loop, no floor taking turns"
    )
    for label, one, two in (
        ("POST /v1/orders req/s, 1 -> 2 processes", run.post_one, run.post_two),
        ("GET /v1/orders/{id} req/s, 1 -> 2 processes", run.get_one, run.get_two),
    ):
        print(
            _row(
                label,
                f"{one.per_second:.0f} -> {two.per_second:.0f}",
                "",
                f"x{_ratio(two.per_second, one.per_second):.2f}",
            )
        )
        print(
            _row(
                "  latency p50 / p99 (ms), 2 processes",
                f"{two.latency.p50:.1f} / {two.latency.p99:.1f}",
            )
        )
    for name, served in (
        ("post, 1 process", run.post_one),
        ("get, 1 process", run.get_one),
        ("post, 2 processes", run.post_two),
        ("get, 2 processes", run.get_two),
    ):
        if served.errors:
            print(f"  ! {name}: {served.errors} errors, first: {served.first_error}")


def _print_delayed(delayed: DelayedRun, target: Target) -> None:
    print(
        f"Provider taking {delayed.delay_ms} ms per song: {delayed.variants} variants queued, "
        "1 generator, default settings"
    )
    print(
        _row(
            "sustained variants/s",
            f"{delayed.per_second:.1f}",
            "",
            "",
            f"{target.goal} {target.verdict}",
        )
    )
    print(
        _row(
            "variants completed, s from the generator's start",
            f"{delayed.completed} in {delayed.seconds:.1f}",
        )
    )
    # What the rate would be with one core all the generator's: the figure a busy machine
    # does not move.
    print(
        _row(
            "generator CPU per variant (ms), 1 core's rate",
            f"{delayed.cpu_ms_per_variant:.2f} -> "
            f"{1000 / delayed.cpu_ms_per_variant if delayed.cpu_ms_per_variant else 0:.0f}/s",
        )
    )


def _print_cpu(phases: dict[str, dict[str, float]]) -> None:
    """Cores used during each phase, by process: where the time goes."""
    names = sorted({name for usage in phases.values() for name in usage}, key=_cpu_column)
    print("CPU: cores used during each phase (2 = both cores busy)")
    print(f"  {'':<28}" + "".join(f"{_short(name):>12}" for name in names))
    for phase, usage in phases.items():
        cells = "".join(f"{usage.get(name, 0.0):>12.2f}" for name in names)
        print(f"  {phase:<28}{cells}")


def _cpu_column(name: str) -> tuple[int, str]:
    order = [
        "api", "api x2", "generator-1", "generator-2", "generator-delayed", "deadletter",
        "nats-server", "bench client",
    ]  # fmt: skip
    return (order.index(name) if name in order else len(order), name)


def _short(name: str) -> str:
    return {
        "postgres and the rest": "pg+rest",
        "bench client": "client",
        "nats-server": "nats",
        "generator-1": "gen-1",
        "generator-2": "gen-2",
        "generator-delayed": "gen-delay",
    }.get(name, name)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        per_second = getattr(value, "per_second", None)
        if isinstance(per_second, float):
            out["per_second"] = per_second
        return out
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def write_json(results: Results, path: Path) -> None:
    document = _plain(results)
    document["memory_mb"] = {name: round(rss / _MB, 1) for name, rss in results.memory.items()}
    document["targets"] = [
        _plain(target) | {"figure": target.figure, "goal": target.goal, "verdict": target.verdict}
        for target in targets(results)
    ]
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def read_json(path: Path) -> Results:
    """The results ``write_json`` wrote (its derived figures dropped): to redraw the chart."""
    document = orjson.loads(path.read_bytes())

    def fields(kind: type, data: dict[str, Any]) -> dict[str, Any]:
        return {f.name: data[f.name] for f in dataclasses.fields(kind) if f.name in data}

    def load(data: dict[str, Any]) -> LoadResult:
        return LoadResult(**fields(LoadResult, data) | {"latency": Latency(**data["latency"])})

    def pipeline(data: dict[str, Any]) -> PipelineRun:
        latencies = {name: Latency(**data[name]) for name in ("post", "completion")}
        return PipelineRun(**fields(PipelineRun, data) | latencies)

    api = document["api"]
    return Results(
        **fields(Results, document)
        | {
            "api": ApiRun(
                **{name: load(api[name]) for name in api if name != "half_load_rate"},
                half_load_rate=api["half_load_rate"],
            ),
            "pipeline": pipeline(document["pipeline"]),
            "pipeline_two": pipeline(document["pipeline_two"]),
            "db_floor": FloorRun(**fields(FloorRun, document["db_floor"])),
            "nats_floor": FloorRun(**fields(FloorRun, document["nats_floor"])),
            "delayed": (
                DelayedRun(**fields(DelayedRun, document["delayed"]))
                if document.get("delayed")
                else None
            ),
            "api_processes": (
                ProcessesRun(**{name: load(run) for name, run in processes.items()})
                if (processes := document.get("api_processes"))
                else None
            ),
        }
    )
