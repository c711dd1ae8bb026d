"""A NATS cluster on loopback for the drills: ``size`` nats-server processes, each with JetStream
on its own store folder, routed to one another, restartable on the same ports.

The configuration written here is the one docs/reliability.md documents for running serenade
on several machines (with real addresses in place of 127.0.0.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.launcher import EmbeddedNats, free_port

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["NatsCluster", "node_config"]

CLUSTER_NAME = "serenade"
# How often JetStream's file store is flushed to disk (nats-server's default): a message is
# acknowledged once a majority of the replicas hold it, so losing it would take a majority of
# the machines losing power inside one interval. "always" trades throughput for one-machine
# durability; see docs/reliability.md.
SYNC_INTERVAL = "2m"


def node_config(*, name: str, port: int, cluster_port: int, routes: list[int], store: Path) -> str:
    """One node's nats-server configuration file."""
    route_urls = ", ".join(f'"nats-route://127.0.0.1:{route}"' for route in routes)
    return f"""\
server_name: "{name}"
listen: "127.0.0.1:{port}"
jetstream {{
  store_dir: "{store}"
  sync_interval: "{SYNC_INTERVAL}"
}}
cluster {{
  name: "{CLUSTER_NAME}"
  listen: "127.0.0.1:{cluster_port}"
  routes: [{route_urls}]
}}
"""


class NatsCluster:
    """``size`` routed nats-servers with JetStream, named ``n1`` .. ``nN``."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root.resolve()
        self.nodes: dict[str, EmbeddedNats] = {}
        ports = [(free_port(), free_port()) for _ in range(size)]
        for index, (port, cluster_port) in enumerate(ports, start=1):
            name = f"n{index}"
            folder = self.root / name
            routes = [other for _, other in ports if other != cluster_port]
            config = node_config(
                name=name,
                port=port,
                cluster_port=cluster_port,
                routes=routes,
                store=folder / "jetstream",
            )
            self.nodes[name] = EmbeddedNats(folder, config=config, port=port)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes.values()]

    def node(self, name: str) -> EmbeddedNats:
        return self.nodes[name]

    def start(self) -> list[str]:
        """Every node, each waited on until it takes client connections (their JetStream may
        still be electing its meta leader)."""
        for node in self.nodes.values():
            node.start()
        return self.urls

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
