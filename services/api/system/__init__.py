"""``/health``, ``/ready`` and ``/metrics``: the checks behind them and their schema."""
