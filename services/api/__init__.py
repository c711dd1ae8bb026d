"""The HTTP API: orders, upsell, retry, signed audio, sharing, admin, health; the outbox to
JetStream. ``create_app(settings)`` in ``app`` is its composition root; ``main.run`` serves it."""
