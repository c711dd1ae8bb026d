"""The operator console's routes: the access suites (tests/integration/api/test_console_access.py
and the access drill) walk every one, so a new route that forgets the session check fails there.
"""

from __future__ import annotations

import uuid

__all__ = ["OPEN_ROUTES", "ROUTES"]

# Any id: the session check comes before the lookup.
_SOME = uuid.uuid4()
# Every console route that needs a session: (method, path).
ROUTES = [
    ("GET", "/console"),
    ("GET", "/console/system/figures"),
    ("GET", "/console/dead-letters"),
    ("GET", f"/console/dead-letters/{_SOME}"),
    ("GET", "/console/dead-letters/replay-all"),
    ("POST", "/console/dead-letters/replay-all"),
    ("POST", f"/console/dead-letters/{_SOME}/replay"),
    ("GET", "/console/orders"),
    ("GET", f"/console/orders/{_SOME}"),
    ("POST", f"/console/variants/{_SOME}/retry"),
    ("POST", "/console/logout"),
]
# Open to anyone: the sign-in form and the console's own style sheet and script.
OPEN_ROUTES = [
    ("GET", "/console/login"),
    ("GET", "/console/static/console.css"),
    ("GET", "/console/static/console.js"),
]
