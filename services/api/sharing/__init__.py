"""Share links and media: ``/v1/share`` (JSON and audio), ``/s`` (the HTML share page) and
``/media`` (signed audio), their queries and schemas."""
