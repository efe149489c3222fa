"""HTTP triggers through the local host: routing, methods, keys, requests and responses."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from devhost.host import LocalFunctionsHost
from tests.devhost.conftest import write_host_json


@pytest.fixture
async def host(start_host: Callable[..., Any]) -> AsyncIterator[LocalFunctionsHost]:
    async with start_host() as running:
        yield running


@pytest.fixture
async def client(host: LocalFunctionsHost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=host.base_url) as http:
        yield http


def function_key(host: LocalFunctionsHost) -> str:
    assert host.keys is not None
    return host.keys.default_function_key


def master_key(host: LocalFunctionsHost) -> str:
    assert host.keys is not None
    return host.keys.master_key


async def test_route_parameters_query_headers_and_json_response(
    host: LocalFunctionsHost, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        "/api/items/books/42",
        params={"q": "blue"},
        headers={"x-functions-key": function_key(host), "X-Sample": "yes"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "method": "GET",
        "route": {"category": "books", "id": "42"},
        "q": "blue",
        "header": "yes",
    }
    assert response.headers.get_list("x-multi") == ["one", "two"]


async def test_code_query_parameter_is_accepted(host: LocalFunctionsHost, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/items/books/1", params={"code": function_key(host)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "params"),
    [({}, {}), ({"x-functions-key": "wrong"}, {}), ({}, {"code": "wrong"}), ({"x-functions-key": ""}, {})],
    ids=["missing", "wrong-header", "wrong-code", "empty"],
)
async def test_missing_or_wrong_key_is_401_with_empty_body(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get("/api/items/books/1", headers=headers, params=params)
    assert response.status_code == 401
    assert response.content == b""


async def test_master_key_satisfies_function_level(host: LocalFunctionsHost, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/items/books/1", headers={"x-functions-key": master_key(host)})
    assert response.status_code == 200


async def test_admin_level_takes_only_the_master_key(host: LocalFunctionsHost, client: httpx.AsyncClient) -> None:
    with_function_key = await client.post("/api/ops/reindex", headers={"x-functions-key": function_key(host)})
    with_master_key = await client.post("/api/ops/reindex", params={"code": master_key(host)})
    assert with_function_key.status_code == 401
    assert with_master_key.status_code == 202


async def test_keys_file_is_created_once_and_reused(host: LocalFunctionsHost, start_host: Callable[..., Any]) -> None:
    document = json.loads(host.keys_path.read_text())
    assert document["functionKeys"]["default"] == function_key(host)
    assert document["masterKey"] == master_key(host)
    async with start_host() as second:
        assert second.keys == host.keys


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/books/forty-two",  # int constraint
        "/api/items/books/99999999999",  # beyond int32
        "/api/items/123/42",  # alpha constraint
        "/api/items/books",  # missing segment
        "/api/items/books/42/extra",  # extra segment
        "/api/things/not-a-guid",
        "/api/nowhere",
        "/items/books/42",  # outside the route prefix
    ],
)
async def test_unmatched_paths_are_404(host: LocalFunctionsHost, client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"x-functions-key": master_key(host)})
    assert response.status_code == 404
    assert response.content == b""


async def test_wrong_method_is_404_like_the_host(host: LocalFunctionsHost, client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/items/books/42", headers={"x-functions-key": function_key(host)})
    assert response.status_code == 404


async def test_wrong_method_can_be_405_with_allow(start_host: Callable[..., Any]) -> None:
    async with (
        start_host(host_options={"method_not_allowed_status": 405}) as host,
        httpx.AsyncClient(base_url=host.base_url) as client,
    ):
        response = await client.delete("/api/items/books/42", headers={"x-functions-key": function_key(host)})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_no_methods_means_every_method(client: httpx.AsyncClient) -> None:
    guid = "0f8fad5b-d19d-4dea-a1b5-0d3e3b1f0c5a"
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        response = await client.request(method, f"/api/things/{guid}")
        assert response.status_code == 200, method
        assert response.text == f"thing {guid}"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_guid_in_braces_matches(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/things/{0F8FAD5B-D19D-4DEA-A1B5-0D3E3B1F0C5A}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/hello", "hello world"),
        ("/api/hello/", "hello world"),
        ("/api/hello/bob", "hello bob"),
        ("/API/Hello/Bob", "hello Bob"),
        ("/api/hello/b%20o%2Fb", "hello b o/b"),
    ],
)
async def test_optional_parameter_case_and_decoding(client: httpx.AsyncClient, path: str, expected: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.text == expected


@pytest.mark.parametrize(
    ("path", "expected"), [("/api/files/a/b/c.txt", "a/b/c.txt"), ("/api/files", ""), ("/api/files/x", "x")]
)
async def test_catch_all(client: httpx.AsyncClient, path: str, expected: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.text == expected


async def test_unhandled_exception_is_500_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost"):
        response = await client.get("/api/boom")
    assert response.status_code == 500
    assert response.content == b""
    failed = [r for r in caplog.records if "Functions.boom" in r.getMessage()]
    assert len(failed) == 1
    assert "Failed" in failed[0].getMessage()
    assert failed[0].exc_info is not None


async def test_one_log_line_per_invocation_without_keys_or_bodies(
    host: LocalFunctionsHost, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_body, secret_header = "body-secret-123", "header-secret-456"
    with caplog.at_level(logging.DEBUG):
        response = await client.post(
            "/api/items/books/7",
            params={"code": master_key(host), "q": "query-secret-789"},
            headers={"authorization": secret_header},
            content=secret_body,
        )
    assert response.status_code == 201
    lines = [r.getMessage() for r in caplog.records if r.name == "devhost"]
    executed = [line for line in lines if line.startswith("Executed 'Functions.items' (Succeeded, Id=")]
    assert len(executed) == 1
    assert "Duration=" in executed[0]
    # The test's own HTTP client logs the URL it called; everything else is the host's.
    host_side = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    everything = "\n".join(host_side)
    for secret in (master_key(host), "query-secret-789", secret_header, secret_body):
        assert secret not in everything


async def test_body_larger_than_the_limit_is_413(start_host: Callable[..., Any]) -> None:
    async with (
        start_host(host_options={"max_request_body_size": 1024}) as host,
        httpx.AsyncClient(base_url=host.base_url) as client,
    ):
        headers = {"x-functions-key": function_key(host)}
        small = await client.post("/api/items/books/1", headers=headers, content=b"")
        large = await client.post("/api/items/books/1", headers=headers, content=b"x" * 4096)
    assert small.status_code == 201
    assert large.status_code == 413


async def test_route_prefix_from_host_json(project: Any, start_host: Callable[..., Any]) -> None:
    write_host_json(project, http={"routePrefix": "v1"})
    async with start_host() as host, httpx.AsyncClient(base_url=host.base_url) as client:
        assert (await client.get("/v1/hello")).status_code == 200
        assert (await client.get("/api/hello")).status_code == 404


async def test_empty_route_prefix(project: Any, start_host: Callable[..., Any]) -> None:
    write_host_json(project, http={"routePrefix": ""})
    async with start_host() as host, httpx.AsyncClient(base_url=host.base_url) as client:
        assert (await client.get("/hello/x")).text == "hello x"


async def test_disabled_function_is_not_served(start_host: Callable[..., Any]) -> None:
    async with (
        start_host(**{"AzureWebJobs.hello.Disabled": "true"}) as host,
        httpx.AsyncClient(base_url=host.base_url) as client,
    ):
        assert (await client.get("/api/hello")).status_code == 404
        assert (await client.get("/api/files/a")).status_code == 200


async def test_port_in_use_fails_start_and_restores_settings(
    host: LocalFunctionsHost, start_host: Callable[..., Any]
) -> None:
    with pytest.raises(OSError):
        async with start_host(host_options={"port": host.port}, DEVHOST_PROBE="set"):
            pass
    assert "DEVHOST_PROBE" not in os.environ
