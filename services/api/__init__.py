"""The HTTP API: orders, upsell, retry, signed audio, sharing, admin, health; the outbox to
JetStream. ``create_app(settings)`` in ``app`` is its composition root; ``main.run`` serves it.

One package per feature (``orders``, ``sharing``, ``admin``, ``live``, ``system``), each with its
controllers, queries and schemas; ``common`` holds what they all use. Features never import each
other (import-linter holds it)."""
