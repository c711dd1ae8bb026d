"""The benchmark chart: a PNG a person can open, with one panel per question the bench answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from bench.apiload import ApiRun
from bench.chart import chart_figure, draw_chart, main, panels
from bench.floors import FloorRun
from bench.load import Latency, LoadResult
from bench.pipeline import PipelineRun
from bench.report import Results, read_json, write_json

_MB = 1024 * 1024
PANEL_TITLES = [
    "serenade as a share of its floor, same run",
    "pipeline: orders/s (1000 orders, 3 variants each)",
    "API alone: requests/s at 16 clients",
    "POST /v1/orders latency, ms",
    "POST to orders.completed, ms",
    "peak resident memory, MB",
]


def _latency(p50: float, p99: float) -> Latency:
    return Latency(p50=p50, p90=p50, p99=p99, max=p99, mean=p50, count=100)


def _load(per_second: float, p50: float = 5.0, p99: float = 20.0) -> LoadResult:
    return LoadResult(
        operations=round(per_second * 8), errors=0, seconds=8.0, concurrency=16,
        latency=_latency(p50, p99),
    )  # fmt: skip


def _pipeline(generators: int, seconds: float) -> PipelineRun:
    return PipelineRun(
        orders=1000, concurrency=16, generators=generators, seconds=seconds,
        post=_latency(111.1, 815.9), completion=_latency(6624, 8954), failed=0,
    )  # fmt: skip


@pytest.fixture
def results() -> Results:
    return Results(
        machine={
            "cpus": 2, "cpu_model": "AMD EPYC", "ram_gib": 23.5, "python": "3.11.7",
            "postgres_durable": True,
        },
        command="python -m bench",
        seconds=118.0,
        api=ApiRun(
            health=_load(3724), post=_load(302), post_floor=_load(677), get=_load(588),
            get_floor=_load(1191), post_half_load=_load(151, p50=6.4, p99=20.8),
            half_load_rate=151.0,
        ),
        pipeline=_pipeline(1, 1000 / 51.6),
        pipeline_two=_pipeline(2, 1000 / 40.6),
        db_floor=FloorRun(orders=1000, seconds=1000 / 330.7),
        nats_floor=FloorRun(orders=1000, seconds=1000 / 325.8),
        memory={"api": 66 * _MB, "deadletter": 71 * _MB, "generator-1": 57 * _MB},
        servers_memory={"nats-server": 20 * _MB},
        cpu={},
        background_cores=0.0,
        disk_fsync={},
    )  # fmt: skip


def test_chart_is_a_png_of_the_figure_size(results: Results, tmp_path: Path) -> None:
    path = tmp_path / "latest.png"
    draw_chart(results, path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(path) as image:
        image.verify()  # raises on a truncated or corrupt file
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        # Drawn pixels, not a blank page: the bars' blue is there.
        colours = {colour for _, colour in image.convert("RGB").getcolors(1 << 20) or []}
    expected = chart_figure(results)
    dpi = expected.get_dpi()
    assert (width, height) == (
        round(expected.get_figwidth() * dpi),
        round(expected.get_figheight() * dpi),
    )
    assert (0x2F, 0x6E, 0xBA) in colours


def test_chart_has_one_panel_per_question_with_every_figure(results: Results) -> None:
    figure = chart_figure(results)
    axes = figure.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == PANEL_TITLES

    def bars(index: int) -> dict[str, float]:
        ax = axes[index]
        labels = [tick.get_text() for tick in ax.get_yticklabels()]
        widths = [patch.get_width() for patch in ax.patches if isinstance(patch, Rectangle)]
        return dict(zip(labels, widths, strict=True))

    def texts(index: int) -> list[str]:
        return [text.get_text() for text in axes[index].texts]

    shares = bars(0)
    assert shares["POST /v1/orders"] == pytest.approx(302 / 677 * 100, rel=0.01)
    assert "45% (302 of 677/s)" in texts(0)
    assert "target 100% (GET 75%)" in texts(0)
    api = bars(2)
    assert api["GET /health (ceiling)"] == pytest.approx(3724, rel=0.001)
    assert api["GET /v1/orders/{id}"] == pytest.approx(588, rel=0.001)
    assert "20.8 (3.2x p50)" in texts(3)
    assert bars(4)["p99, 1 generator"] == pytest.approx(8954)
    assert bars(5) == pytest.approx({"api": 66, "deadletter": 71, "generator-1": 57})
    assert "limit 200 MB" in texts(5)


def test_chart_redrawn_from_a_runs_json_shows_the_same_figures(
    results: Results, tmp_path: Path
) -> None:
    # `python -m bench.chart` redraws a past run's chart from the JSON the run wrote.
    write_json(results, tmp_path / "run.json")
    main([str(tmp_path / "run.json"), str(tmp_path / "run.png")])
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
    assert panels(read_json(tmp_path / "run.json")) == panels(results)
