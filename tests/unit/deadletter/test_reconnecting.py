"""The dead-letter service reconnects to NATS for as long as it is away (drill 2's long outage):
nats-py's default gives up after 60 attempts, two minutes, and the service then stayed up
consuming nothing, without a word."""

from __future__ import annotations

from faststream.nats import NatsBroker

from services.deadletter.app import build_app
from shared.settings import Settings


def test_the_dead_letter_service_never_stops_reconnecting_to_nats() -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:9/none",
        nats_url="nats://127.0.0.1:9",
        jwt_secret="unit-secret-" + "u" * 32,
    )

    broker = build_app(settings).broker

    assert isinstance(broker, NatsBroker)
    assert broker._connection_kwargs["max_reconnect_attempts"] == -1
