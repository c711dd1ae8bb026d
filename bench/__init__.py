"""serenade's benchmark suite: ``python -m bench`` (``make bench``).

It starts embedded PostgreSQL and nats-server in a temporary folder, runs serenade's services as
child processes, and measures them next to their floors (the same database work done with bare
asyncpg, the same NATS traffic with bare nats-py) in one run on the same servers. The older
single-purpose scripts (``bench_generator.py``, ``bench_local_provider.py``) still run alone.
"""
