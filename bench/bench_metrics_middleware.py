"""What the API's request metrics cost per request: serenade's ``MetricsMiddleware`` next to
Litestar's own ``PrometheusMiddleware`` (``litestar.plugins.prometheus``) and no middleware.

Run: ``.venv/bin/python bench/bench_metrics_middleware.py [requests]`` (default 20000). ASGI calls
go straight into an app with one route shaped like ``GET /v1/orders/{id}`` (no network, no
database), so the difference between the apps is the middleware alone. Figures are CPU time
(``time.process_time``), the best of seven interleaved rounds, so other load on the machine
weighs little on them.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

from litestar import Litestar, get
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig

from services.api.common.metrics import ApiMetrics, MetricsMiddleware

ROUNDS = 7
DEFAULT_REQUESTS = 20_000
# The API's latency buckets, and the plugin set up to name series as close to ours as it can.
_BUCKETS: list[str | float] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


@get("/v1/orders/{order_id:uuid}", sync_to_thread=False)
def order(order_id: uuid.UUID) -> dict[str, str]:
    return {"id": str(order_id), "status": "complete"}


def _apps() -> dict[str, Litestar]:
    plugin = PrometheusConfig(
        app_name="serenade-api", prefix="serenade_http", group_path=True, buckets=_BUCKETS
    )
    return {
        "no middleware": Litestar([order], logging_config=None),
        "serenade MetricsMiddleware": Litestar(
            [order],
            middleware=[DefineMiddleware(MetricsMiddleware, metrics=ApiMetrics())],
            logging_config=None,
        ),
        "Litestar PrometheusMiddleware": Litestar(
            [order], middleware=[plugin.middleware], logging_config=None
        ),
    }


async def _call(app: Litestar, path: str) -> None:
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)  # type: ignore[arg-type]
    assert statuses == [200], statuses


async def _measure(requests: int) -> dict[str, float]:
    apps = _apps()
    path = f"/v1/orders/{uuid.uuid4()}"
    for app in apps.values():
        for _ in range(requests // 10):
            await _call(app, path)
    best = dict.fromkeys(apps, float("inf"))
    for _ in range(ROUNDS):
        for name, app in apps.items():
            started = time.process_time()
            for _ in range(requests):
                await _call(app, path)
            best[name] = min(best[name], (time.process_time() - started) / requests * 1e6)
    return best


def main() -> int:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REQUESTS
    best = asyncio.run(_measure(requests))
    for name, micros in best.items():
        print(f"{name:32}{micros:7.1f} us/request (best of {ROUNDS} x {requests})")
    bare = best["no middleware"]
    for name in ("serenade MetricsMiddleware", "Litestar PrometheusMiddleware"):
        print(f"{name:32}{best[name] - bare:7.1f} us/request for the metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
