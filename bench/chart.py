"""The results as one PNG of horizontal bar panels, drawn with matplotlib (Agg, no display).

``python -m bench`` draws it after a run; ``python -m bench.chart [RESULTS.json [OUT.png]]``
redraws it from a run's JSON (default ``bench/results/latest.json`` to ``latest.png`` beside it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from bench.report import DELAYED_TARGET, GET_SHARE, POST_SHARE, read_json

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bench.load import Latency
    from bench.report import Results

__all__ = ["Bar", "Panel", "chart_figure", "draw_chart", "main", "panels"]

SERENADE = "#2f6eba"
FLOOR = "#969696"
CEILING = "#4ca05a"
LIMIT = "#c82828"
INK = "#141414"
MUTED = "#5a5a5a"

_WIDTH_INCHES = 11.0
_ROW_INCHES = 0.3
_PANEL_INCHES = 0.75  # a panel's title and margins, beside its rows
_HEADER_INCHES = 0.8
_DPI = 100
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str
    color: str


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    bars: list[Bar]
    # A vertical line (a target or a limit) at this value, with its caption.
    marker: tuple[float, str] | None = None
    # The value at the bars' full length (default: the largest bar, or past the marker).
    top: float | None = None

    @property
    def inches(self) -> float:
        return _PANEL_INCHES + len(self.bars) * _ROW_INCHES


def _figure(label: str, value: float, color: str, digits: int = 0) -> Bar:
    return Bar(label, value, f"{value:.{digits}f}", color)


def panels(results: Results) -> list[Panel]:
    """The chart's panels, top to bottom."""
    api, one, db = results.api, results.pipeline, results.db_floor

    def share(label: str, value: float, floor: float) -> Bar:
        ratio = value / floor if floor else 0.0
        return Bar(label, ratio * 100, f"{ratio:.0%} ({value:.0f} of {floor:.0f}/s)", SERENADE)

    shares = [
        share("pipeline orders/s", one.per_second, db.per_second),
        share("POST /v1/orders", api.post.per_second, api.post_floor.per_second),
        share("GET /v1/orders/{id}", api.get.per_second, api.get_floor.per_second),
    ]
    half = api.post_half_load.latency
    spread = half.p99 / half.p50 if half.p50 else 0.0
    return [
        *_main_panels(results, shares, half, spread),
        *_optional_panels(results),
        Panel(
            "peak resident memory, MB",
            [_figure(name, rss / _MB, SERENADE) for name, rss in sorted(results.memory.items())],
            (200.0, "limit 200 MB"),
        ),
    ]


def _optional_panels(results: Results) -> list[Panel]:
    """The phases a run may leave out: two API processes, the provider that takes time."""
    drawn: list[Panel] = []
    processes, delayed = results.api_processes, results.delayed
    if processes is not None:
        drawn.append(
            Panel(
                f"API alone: 1 vs 2 processes, requests/s at {processes.post_one.concurrency}"
                " clients",
                [
                    _figure("POST, 1 process", processes.post_one.per_second, SERENADE),
                    _figure("POST, 2 processes", processes.post_two.per_second, SERENADE),
                    _figure("GET, 1 process", processes.get_one.per_second, SERENADE),
                    _figure("GET, 2 processes", processes.get_two.per_second, SERENADE),
                ],
            )
        )
    if delayed is not None:
        drawn.append(
            Panel(
                f"provider taking {delayed.delay_ms} ms per song: variants/s, 1 generator",
                [
                    _figure("sustained", delayed.per_second, SERENADE, 1),
                    _figure("from the generator's start", delayed.overall_per_second, SERENADE, 1),
                ],
                (DELAYED_TARGET, f"target {DELAYED_TARGET:.0f}/s"),
            )
        )
    return drawn


def _main_panels(results: Results, shares: list[Bar], half: Latency, spread: float) -> list[Panel]:
    api, one, two = results.api, results.pipeline, results.pipeline_two
    db, nats = results.db_floor, results.nats_floor
    return [
        Panel(
            "serenade as a share of its floor, same run",
            shares,
            # The pipeline's and POST's target; GET's (lower) is in the caption.
            (
                POST_SHARE * 100,
                f"target {POST_SHARE:.0%} (GET {GET_SHARE:.0%})",
            ),
            top=max(100.0, *(bar.value for bar in shares)),
        ),
        Panel(
            f"pipeline: orders/s ({one.orders} orders, 3 variants each)",
            [
                _figure("serenade, 1 generator", one.per_second, SERENADE, 1),
                _figure("serenade, 2 generators", two.per_second, SERENADE, 1),
                _figure("asyncpg floor", db.per_second, FLOOR, 1),
                _figure("nats-py floor", nats.per_second, FLOOR, 1),
            ],
        ),
        Panel(
            f"API alone: requests/s at {api.post.concurrency} clients",
            [
                _figure("GET /health (ceiling)", api.health.per_second, CEILING),
                _figure("POST /v1/orders", api.post.per_second, SERENADE),
                _figure("  asyncpg floor", api.post_floor.per_second, FLOOR),
                _figure("GET /v1/orders/{id}", api.get.per_second, SERENADE),
                _figure("  asyncpg floor", api.get_floor.per_second, FLOOR),
            ],
        ),
        Panel(
            "POST /v1/orders latency, ms",
            [
                _figure("p50, pipeline", one.post.p50, SERENADE, 1),
                _figure("p99, pipeline", one.post.p99, SERENADE, 1),
                _figure(f"p50 at {api.half_load_rate:.0f}/s (half peak)", half.p50, CEILING, 1),
                Bar(
                    f"p99 at {api.half_load_rate:.0f}/s (half peak)",
                    half.p99,
                    f"{half.p99:.1f} ({spread:.1f}x p50)",
                    CEILING,
                ),
            ],
        ),
        Panel(
            "POST to orders.completed, ms",
            [
                _figure("p50, 1 generator", one.completion.p50, SERENADE),
                _figure("p99, 1 generator", one.completion.p99, SERENADE),
                _figure("p50, 2 generators", two.completion.p50, SERENADE),
                _figure("p99, 2 generators", two.completion.p99, SERENADE),
            ],
        ),
    ]


def _draw(axes: Axes, panel: Panel) -> None:
    values = [bar.value for bar in panel.bars]
    if panel.marker:
        values.append(panel.marker[0] * 1.15)
    top_value = panel.top or max([*values, 1e-9])
    rows = range(len(panel.bars))
    axes.barh(
        rows,
        [min(bar.value, top_value) for bar in panel.bars],
        height=0.7,
        color=[bar.color for bar in panel.bars],
    )
    for row, bar in zip(rows, panel.bars, strict=True):
        axes.annotate(
            bar.text,
            (min(bar.value, top_value), row),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            color=INK,
            fontsize=9,
        )
    if panel.marker:
        value, caption = panel.marker
        axes.axvline(value, color=LIMIT, linewidth=1.5, zorder=0)
        axes.annotate(
            caption,
            (value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -2),
            textcoords="offset points",
            va="top",
            color=LIMIT,
            fontsize=8,
            # Legible where a bar runs past the line.
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            zorder=3,
        )
    axes.set_title(panel.title, loc="left", fontsize=11, color=INK, fontweight="bold")
    axes.set_yticks(list(rows), [bar.label for bar in panel.bars], color=MUTED, fontsize=9)
    axes.invert_yaxis()  # the first bar on top, as it reads
    # Room on the right for the figure written after the longest bar.
    axes.set_xlim(0, top_value * 1.3)
    axes.xaxis.set_visible(False)
    for side in ("top", "right", "bottom"):
        axes.spines[side].set_visible(False)


def chart_figure(results: Results) -> Figure:
    """The chart of ``results``: one axes per panel, in ``panels`` order."""
    drawn = panels(results)
    machine = results.machine
    subtitle = (
        f"{machine['cpus']} cpus, {machine['cpu_model']}, {machine['ram_gib']} GiB, "
        f"postgres {'durable' if machine['postgres_durable'] else 'not durable'}"
    )
    body = sum(panel.inches for panel in drawn)
    height = _HEADER_INCHES + body
    figure = Figure(figsize=(_WIDTH_INCHES, height), dpi=_DPI)
    # The panels below the title block; the layout keeps labels and titles from overlapping.
    figure.set_layout_engine(ConstrainedLayoutEngine(rect=(0, 0, 1, body / height), h_pad=0.06))
    figure.text(0.01, 1 - 0.3 / height, "serenade benchmark", fontsize=16, fontweight="bold")
    figure.text(0.01, 1 - 0.6 / height, subtitle, fontsize=10, color=MUTED)
    grid = figure.add_gridspec(len(drawn), 1, height_ratios=[panel.inches for panel in drawn])
    for index, panel in enumerate(drawn):
        _draw(figure.add_subplot(grid[index]), panel)
    return figure


def draw_chart(results: Results, path: Path) -> None:
    """Write the chart of ``results`` to ``path`` (PNG)."""
    figure = chart_figure(results)
    # The Agg canvas renders without a display, whatever backend the environment names.
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    source = Path(arguments[0]) if arguments else Path(__file__).parent / "results" / "latest.json"
    target = Path(arguments[1]) if len(arguments) > 1 else source.with_suffix(".png")
    draw_chart(read_json(source), target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
