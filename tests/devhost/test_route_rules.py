"""The real host's load-time route rules, enforced locally: reserved prefixes and conflicts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest

from devhost.azurite import Azurite
from devhost.host import LocalFunctionsHost
from devhost.route_rules import BUILT_IN_ROUTE_CONFLICT, check_http_routes
from tests.devhost.conftest import write_host_json


def http(route: str | None, *methods: str) -> dict[str, Any]:
    return {"type": "httpTrigger", "route": route, "methods": list(methods)}


@pytest.mark.parametrize(
    "route",
    [
        "admin/resume-sending",
        "/Admin/x",
        "administrators",
        "adminstuff/{id}",
        "runtime/webhooks/x",
        "RUNTIMEinfo",
    ],
)
def test_routes_beginning_with_a_reserved_word_are_refused(route: str) -> None:
    assert check_http_routes([("f", http(route, "POST"))]) == {"f": BUILT_IN_ROUTE_CONFLICT}


@pytest.mark.parametrize("route", ["sending/resume", "ops/admin", "my-admin", "x/runtime", "~/admin"])
def test_other_routes_are_accepted(route: str) -> None:
    assert check_http_routes([("f", http(route, "POST"))]) == {}


def test_a_function_without_a_route_is_routed_by_its_name_and_checked_so() -> None:
    assert check_http_routes([("adminReport", http(None)), ("report", http("  "))]) == {
        "adminReport": BUILT_IN_ROUTE_CONFLICT
    }


def test_the_same_route_with_intersecting_methods_conflicts_with_the_first_function() -> None:
    errors = check_http_routes(
        [
            ("first", http("items/{id}", "GET")),
            ("writes", http("/Items/{id}/", "PUT", "POST")),
            ("reads", http("items/{id}", "get")),
            ("any", http("items/{id}")),
            ("other_name", http("items/{key}", "GET")),
        ]
    )
    assert errors == {
        "reads": "The route specified conflicts with the route defined by function 'first'.",
        "any": "The route specified conflicts with the route defined by function 'first'.",
    }


def test_a_refused_function_does_not_hold_its_route() -> None:
    errors = check_http_routes(
        [("first", http("items", "GET")), ("refused", http("items", "GET", "POST")), ("later", http("items", "POST"))]
    )
    assert set(errors) == {"refused"}


def _app_with_reserved_and_conflicting_routes() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="admin/resume", methods=["POST"])
    def resume(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("resumed")

    @app.route(route="sending/resume", methods=["POST"])
    def resume_sending(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("resumed")

    @app.route(route="sending/resume", methods=["POST", "PUT"])
    def resume_again(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("again")

    return app


@pytest.mark.parametrize("prefix", ["api", "", "admin"])
async def test_the_host_loads_the_others_and_reports_the_refused_functions(
    azurite: Azurite, tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The rule reads the route without the prefix: an empty prefix does not free `admin`,
    # and an `admin` prefix does not reserve the routes under it.
    write_host_json(tmp_path, http={"routePrefix": prefix})
    host = LocalFunctionsHost(
        _app_with_reserved_and_conflicting_routes(),
        root=tmp_path,
        settings={"AzureWebJobsStorage": azurite.connection_string},
        port=0,
        keys_path=tmp_path / "keys.json",
    )
    with caplog.at_level(logging.ERROR, logger="devhost"):
        async with host, httpx.AsyncClient(base_url=host.base_url) as client:
            base = f"/{prefix}" if prefix else ""
            assert set(host.specs) == {"resume_sending"}
            assert host.function_errors == {
                "resume": BUILT_IN_ROUTE_CONFLICT,
                "resume_again": "The route specified conflicts with the route defined by function 'resume_sending'.",
            }
            assert (await client.post(f"{base}/sending/resume")).text == "resumed"
            assert (await client.post(f"{base}/admin/resume")).status_code == 404
            assert (await client.put(f"{base}/sending/resume")).status_code == 404
    assert "The 'resume' function is in error" in caplog.text
