"""The results as one PNG of horizontal bar panels (drawn with ``bench.canvas``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.canvas import GLYPH_HEIGHT, Canvas, Color

if TYPE_CHECKING:
    from pathlib import Path

    from bench.report import Results

__all__ = ["draw_chart"]

SERENADE: Color = (47, 110, 186)
FLOOR: Color = (150, 150, 150)
CEILING: Color = (76, 160, 90)
LIMIT: Color = (200, 40, 40)
INK: Color = (20, 20, 20)
MUTED: Color = (90, 90, 90)
PAPER: Color = (255, 255, 255)

_WIDTH = 1100
_LABEL_X = 20
_BAR_X = 380
_BAR_WIDTH = 480
_ROW = 26
_BAR_HEIGHT = 18
_SCALE = 2
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str
    color: Color


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    bars: list[Bar]
    # A vertical line (a target or a limit) at this value, with its caption.
    marker: tuple[float, str] | None = None
    # The value at the bars' full length (default: the largest bar, or past the marker).
    top: float | None = None

    @property
    def height(self) -> int:
        return 40 + len(self.bars) * _ROW + 18


def _draw(canvas: Canvas, top: int, panel: Panel) -> None:
    canvas.text(_LABEL_X, top + 8, panel.title, INK, _SCALE)
    canvas.rect(_LABEL_X, top + 30, _WIDTH - 2 * _LABEL_X, 1, (210, 210, 210))
    values = [bar.value for bar in panel.bars]
    if panel.marker:
        values.append(panel.marker[0] * 1.15)
    top_value = panel.top or max([*values, 1e-9])
    rows_top = top + 40
    bottom = rows_top + len(panel.bars) * _ROW
    if panel.marker:  # first, so that bars and figures are drawn over it
        value, caption = panel.marker
        x = _BAR_X + round(_BAR_WIDTH * value / top_value)
        canvas.rect(x, rows_top - 4, 2, bottom - rows_top, LIMIT)
        canvas.text(x + 6, bottom - 2, caption, LIMIT, 1)
    for index, bar in enumerate(panel.bars):
        y = rows_top + index * _ROW
        text_y = y + (_BAR_HEIGHT - GLYPH_HEIGHT * _SCALE) // 2
        canvas.text(_LABEL_X, text_y, bar.label, MUTED, _SCALE)
        share = min(bar.value / top_value, 1.0)
        length = max(1, round(_BAR_WIDTH * share)) if bar.value > 0 else 0
        canvas.rect(_BAR_X, y, length, _BAR_HEIGHT, bar.color)
        figure_x = _BAR_X + length + 8
        canvas.rect(figure_x - 2, y, Canvas.text_width(bar.text) + 4, _BAR_HEIGHT, PAPER)
        canvas.text(figure_x, text_y, bar.text, INK, _SCALE)


def _figure(label: str, value: float, color: Color, digits: int = 0) -> Bar:
    return Bar(label, value, f"{value:.{digits}f}", color)


def _panels(results: Results) -> list[Panel]:
    api, one, two = results.api, results.pipeline, results.pipeline_two
    db, nats = results.db_floor, results.nats_floor

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
        Panel(
            "serenade as a share of its floor, same run",
            shares,
            (50.0, "target 50%"),
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
        Panel(
            "peak resident memory, MB",
            [_figure(name, rss / _MB, SERENADE) for name, rss in sorted(results.memory.items())],
            (200.0, "limit 200 MB"),
        ),
    ]


def draw_chart(results: Results, path: Path) -> None:
    """Write the chart of ``results`` to ``path`` (PNG)."""
    panels = _panels(results)
    machine = results.machine
    subtitle = (
        f"{machine['cpus']} cpus, {machine['cpu_model']}, {machine['ram_gib']} GiB, "
        f"postgres {'durable' if machine['postgres_durable'] else 'not durable'}"
    )
    height = 70 + sum(panel.height for panel in panels) + 10
    canvas = Canvas(_WIDTH, height)
    canvas.text(_LABEL_X, 16, "serenade benchmark", INK, 3)
    canvas.text(_LABEL_X, 46, subtitle, MUTED, _SCALE)
    top = 70
    for panel in panels:
        _draw(canvas, top, panel)
        top += panel.height
    canvas.save_png(path)
