"""Reliability and security drills (issue 8): each drill starts its own stack (PostgreSQL,
nats-server, ``serenade api``, ``generator`` and ``deadletter`` as processes), injects a fault,
checks the invariants and prints one line of figures. ``make test`` runs the short versions;
``make drills`` (``SERENADE_DRILLS_FULL=1``) the full ones, recorded in docs/reliability.md."""
