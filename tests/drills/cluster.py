"""A NATS cluster on loopback for the drills: ``size`` nats-server processes, each with JetStream
on its own store folder, routed to one another, restartable on the same ports.

The configuration written here is the one docs/reliability.md documents for running serenade
on several machines (with real addresses in place of 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from shared.embedded import EmbeddedNats, EmbeddedServerError, free_port

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ClusterNode", "NatsCluster", "node_config"]

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


@dataclass
class ClusterNode:
    name: str
    root: Path
    port: int
    cluster_port: int
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.root / "nats.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "nats-server.log"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(EmbeddedNats.binary()), "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: a machine lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class NatsCluster:
    """``size`` routed nats-servers with JetStream, named ``n1`` .. ``nN``."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root.resolve()
        self.nodes: list[ClusterNode] = []
        ports = [(free_port(), free_port()) for _ in range(size)]
        for index, (port, cluster_port) in enumerate(ports, start=1):
            folder = self.root / f"n{index}"
            folder.mkdir(parents=True, exist_ok=True)
            node = ClusterNode(f"n{index}", folder, port, cluster_port)
            routes = [other for _, other in ports if other != cluster_port]
            node.config_path.write_text(
                node_config(
                    name=node.name,
                    port=port,
                    cluster_port=cluster_port,
                    routes=routes,
                    store=folder / "jetstream",
                )
            )
            self.nodes.append(node)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def start(self, *, timeout: float = 30.0) -> list[str]:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            self.wait_accepting(node, timeout=timeout)
        return self.urls

    @staticmethod
    def wait_accepting(node: ClusterNode, *, timeout: float = 30.0) -> None:
        """Until ``node`` takes client connections (its JetStream may still be electing)."""
        deadline = time.monotonic() + timeout
        while True:
            if node.process is not None and node.process.poll() is not None:
                raise EmbeddedServerError(f"{node.name} exited:\n{node.log_path.read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", node.port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"{node.name} did not start in {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
