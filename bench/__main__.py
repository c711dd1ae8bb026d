"""``python -m bench``: the whole suite (``--help`` for its options)."""

from bench.suite import main

raise SystemExit(main())
