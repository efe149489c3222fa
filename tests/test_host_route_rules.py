"""The app's HTTP routes pass the Functions host's load-time rules (reserved prefixes, conflicts)."""

from __future__ import annotations

import json

from devhost.route_rules import check_http_routes
from tests.harness import FUNCTIONS


def test_no_function_of_the_app_would_be_refused_by_the_host() -> None:
    triggers = []
    for name, function in FUNCTIONS.items():
        bindings = json.loads(function.get_function_json())["bindings"]
        triggers += [(name, b) for b in bindings if b["type"] == "httpTrigger"]
    assert len(triggers) >= 8
    assert check_http_routes(triggers) == {}
