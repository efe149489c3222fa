"""Backends list a user's or a tag's installations page by page, and count who a send would reach:
exactly the installations GET finds, each once, from the index partitions a send reads."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.services.registration import register_installation, remove_installation
from pushfuncs.validation import InstallationRequest
from sandbox import SandboxClient
from tests.harness import Response, call_function
from tests.integration.test_targeting import register_many
from tests.security.support import assert_response_documented


async def get(name: str, route: str, route_params: dict[str, str] | None = None, **params: str) -> Response:
    url = f"http://localhost:7071/api/{route}"
    request = func.HttpRequest(method="GET", url=url, params=params, route_params=route_params or {}, body=b"")
    response: func.HttpResponse = await call_function(name, req=request)
    parsed = Response(response.status_code, json.loads(response.get_body()), dict(response.headers))
    assert_response_documented(name, parsed)
    return parsed


async def list_all(limit: int, **query: str) -> tuple[list[dict[str, Any]], int]:
    """Every listed installation, following continuation tokens; and the number of requests."""
    listed: list[dict[str, Any]] = []
    token: str | None = None
    requests = 0
    while True:
        params = {**query, "limit": str(limit), **({"continuationToken": token} if token else {})}
        response = await get("list_installations", "installations", **params)
        assert response.status == 200, response.body
        assert len(response.body["installations"]) <= limit
        listed += response.body["installations"]
        requests += 1
        token = response.body["continuationToken"]
        if token is None:
            return listed, requests


async def count(**query: str) -> int:
    total, token = 0, None
    while True:
        response = await get(
            "count_audience", "audience/count", **query, **({"continuationToken": token} if token else {})
        )
        assert response.status == 200, response.body
        total += response.body["count"]
        token = response.body["continuationToken"]
        assert response.body["complete"] is (token is None)
        if token is None:
            return total


async def test_listing_and_counting_follow_the_registry(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    specs = [
        (f"aud-{i:03d}", channel, "dana" if i % 3 == 0 else None, ["aud"] + (["vip"] if i % 4 == 0 else []))
        for i in range(57)
    ]
    await register_many(specs)
    ctx = await get_context()
    now = datetime.now(UTC)
    # One expires: no send reaches it, so it is neither listed nor counted.
    soon = InstallationRequest(channel, "dana", ["aud", "vip"], now + timedelta(seconds=1))
    await register_installation(ctx.installations, ctx.index, "aud-expiring", soon, now)
    # One is removed: gone from every partition once the DELETE has returned.
    await remove_installation(ctx.installations, ctx.index, "aud-000")
    await asyncio.sleep(1.2)
    tagged = sorted(s[0] for s in specs if s[0] != "aud-000")
    vip = sorted(s[0] for s in specs if "vip" in s[3] and s[0] != "aud-000")
    dana = sorted(s[0] for s in specs if s[2] == "dana" and s[0] != "aud-000")

    listed, requests = await list_all(7, tag="aud")
    assert sorted(i["installationId"] for i in listed) == tagged  # each once, none missing
    assert requests >= len(tagged) // 7
    assert all(i["channelUri"] == channel and "aud" in i["tags"] for i in listed)
    by_user, _ = await list_all(100, userId="dana")
    assert sorted(i["installationId"] for i in by_user) == dana and all(i["userId"] == "dana" for i in by_user)

    assert await count(tag="aud") == len(tagged)
    assert await count(tag="vip") == len(vip)
    assert await count(tagExpression="aud && !vip") == len(tagged) - len(vip)
    assert await count(tagExpression="aud || vip") == len(tagged)  # an installation with both: once
    assert await count(userId="dana") == len(dana)
    assert await count(all="true") == len(tagged)
    assert await count(tag="nobody") == 0
    assert (await get("list_installations", "installations", tag="nobody")).body == {
        "installations": [],
        "continuationToken": None,
    }


async def test_bad_queries_are_400s_naming_the_parameter(app_env: dict[str, str]) -> None:
    cases: list[tuple[str, str, dict[str, str], str]] = [
        ("list_installations", "installations", {}, "userId"),
        ("list_installations", "installations", {"userId": "a", "tag": "b"}, "userId"),
        ("list_installations", "installations", {"tag": "no spaces"}, "tag"),
        ("list_installations", "installations", {"userId": "../x"}, "userId"),
        ("list_installations", "installations", {"tag": "a", "limit": "0"}, "limit"),
        ("list_installations", "installations", {"tag": "a", "limit": "1001"}, "limit"),
        ("list_installations", "installations", {"tag": "a", "limit": "ten"}, "limit"),
        ("list_installations", "installations", {"tag": "a", "continuationToken": "garbage!"}, "continuationToken"),
        (
            "list_installations",
            "installations",
            {"tag": "a", "continuationToken": "eyJzIjoxNiwiYSI6IiJ9"},
            "continuationToken",
        ),
        ("count_audience", "audience/count", {}, "tag"),
        ("count_audience", "audience/count", {"tagExpression": "a &&"}, "tagExpression"),
        ("count_audience", "audience/count", {"all": "yes"}, "all"),
        (
            "count_audience",
            "audience/count",
            {"userId": "a", "continuationToken": "eyJzIjoxLCJhIjoiIn0"},
            "continuationToken",
        ),
    ]
    # A cursor that is not an installation id (crafted: tokens are not signed) is refused.
    for after in ("%27 or PartitionKey ne %27", "' or PartitionKey ne '", "a&b", "x" * 129):
        crafted = base64.urlsafe_b64encode(json.dumps({"s": 0, "a": after}).encode()).decode().rstrip("=")
        cases.append(
            ("list_installations", "installations", {"userId": "a", "continuationToken": crafted}, "continuationToken")
        )
        cases.append(
            ("count_audience", "audience/count", {"tag": "a", "continuationToken": crafted}, "continuationToken")
        )
    for name, route, params, field in cases:
        response = await get(name, route, **params)
        assert response.status == 400, (params, response.body)
        assert response.body["error"]["field"] == field, (params, response.body)
