"""The consumer the code wants, the pipeline's numbers, the app's document."""

from __future__ import annotations

import orjson
from nats.js.api import AckPolicy, DeliverPolicy

from services.generator.app import build_app
from services.generator.consumer import DURABLE, MAX_ACK_PENDING, consumer_config
from services.generator.pipeline import Policy
from shared.settings import Settings
from shared.stream import consumer_differences


def test_the_consumer_is_durable_explicit_and_sized_for_the_fleet() -> None:
    config = consumer_config(
        Settings(generator_ack_wait=12.0, max_attempts=4, generator_concurrency=3)
    )

    assert config.durable_name == DURABLE
    assert config.name == DURABLE
    assert config.filter_subject == "serenade.variants.requested"
    assert config.ack_policy is AckPolicy.EXPLICIT
    assert config.deliver_policy is DeliverPolicy.ALL
    assert config.ack_wait == 12.0
    assert config.max_deliver == 4 + 10
    assert config.max_ack_pending == MAX_ACK_PENDING
    assert config.max_ack_pending > 3 * 64  # far above one process's slots


def test_a_process_concurrency_does_not_change_the_shared_consumer() -> None:
    one = consumer_config(Settings(generator_concurrency=1))
    many = consumer_config(Settings(generator_concurrency=64))
    assert consumer_differences(one, many) == []


def test_differences_name_what_changed() -> None:
    base = consumer_config(Settings())
    changed = consumer_config(Settings(generator_ack_wait=7.5, max_attempts=9))
    assert consumer_differences(base, changed) == ["ack_wait", "max_deliver"]


def test_the_policy_comes_from_the_settings_and_its_backoff_repeats_the_last() -> None:
    policy = Policy.from_settings(
        Settings(retry_backoff="1,5,25", generator_ack_wait=30.0, max_attempts=5)
    )

    assert policy.max_attempts == 5
    assert policy.heartbeat == 10.0
    assert [policy.backoff_for(n) for n in (0, 1, 2, 3, 4, 9)] == [1, 1, 5, 25, 25, 25]


def test_the_app_is_built_without_connecting_and_documents_its_subjects() -> None:
    app = build_app(Settings(nats_url="nats://127.0.0.1:9", database_url="postgresql://x/y"))

    document = orjson.loads(app.schema.to_specification().to_json())
    subjects = {channel["address"] for channel in document["channels"].values()}
    assert {
        "serenade.variants.requested",
        "serenade.variants.status",
        "serenade.orders.completed",
        "serenade.deadletter.generator",
    } <= subjects
