"""PATCH /api/installations/{id} (JSON Patch) against Azurite: each operation, each refusal, devices
kept to their own user, and concurrent patches of one installation, none lost."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pushfuncs.context import get_context
from sandbox import SandboxClient
from tests.harness import Response
from tests.registry_checks import invariant_violations, pending_markers, with_jitter
from tests.security.support import assert_response_documented, call

TOAST = "<toast><visual><binding template='ToastGeneric'><text>Hi $(name)</text></binding></visual></toast>"


async def patch(installation_id: str, operations: object, name: str = "patch_installation", **headers: str) -> Response:
    prefix = "me/" if name == "patch_my_installation" else ""
    response = await call(
        name,
        "PATCH",
        f"{prefix}installations/{installation_id}",
        operations,
        headers=headers,
        installationId=installation_id,
    )
    assert_response_documented(name, response)
    return response


async def put(installation_id: str, body: dict[str, Any]) -> Response:
    response = await call(
        "put_installation", "PUT", f"installations/{installation_id}", body, installationId=installation_id
    )
    assert response.status in (200, 201), response.body
    return response


async def test_each_operation_changes_what_get_and_the_index_show(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    first, second = (sandbox_client.create_channel()["channelUri"] for _ in range(2))
    created = await put("patch-pc", {"channelUri": first, "userId": "alice", "tags": ["news", "sports"]})

    response = await patch(
        "patch-pc",
        [
            {"op": "test", "path": "/userId", "value": "alice"},
            {"op": "add", "path": "/tags/-", "value": "vip"},
            {"op": "remove", "path": "/tags/0"},
            {"op": "add", "path": "/templates/greeting", "value": {"type": "toast", "body": TOAST}},
            {"op": "replace", "path": "/channelUri", "value": second},
            {"op": "replace", "path": "/userId", "value": "bob"},
        ],
    )
    assert response.status == 200, response.body
    body = response.body
    assert body["tags"] == ["sports", "vip"]
    assert body["channelUri"] == second and body["userId"] == "bob"
    assert body["templates"] == {"greeting": {"type": "toast", "body": TOAST}}
    assert body["createdAt"] == created.body["createdAt"] and body["expiresAt"] == created.body["expiresAt"]
    read = await call("get_installation", "GET", "installations/patch-pc", installationId="patch-pc")
    assert read.body == body
    ctx = await get_context()
    assert await invariant_violations(ctx.installations, ctx.index_table, ["patch-pc"]) == []

    removed = await patch("patch-pc", [{"op": "remove", "path": "/userId"}, {"op": "remove", "path": "/templates"}])
    assert removed.status == 200, removed.body
    assert removed.body["userId"] is None and removed.body["templates"] == {}
    assert await invariant_violations(ctx.installations, ctx.index_table, ["patch-pc"]) == []


async def test_refusals_name_the_operation_and_store_nothing(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    stored = (await put("refused-pc", {"channelUri": channel, "tags": ["news"]})).body
    cases: list[tuple[object, int, str, str]] = [
        ([{"op": "remove", "path": "/userId"}], 409, "PatchConflict", "patch[0].path"),
        ([{"op": "add", "path": "/tags/5", "value": "x"}], 409, "PatchConflict", "patch[0].path"),
        (
            [{"op": "test", "path": "/tags/0", "value": "sports"}, {"op": "remove", "path": "/tags/0"}],
            409,
            "PatchConflict",
            "patch[0].value",
        ),
        ([{"op": "add", "path": "/tags/-", "value": "no spaces"}], 400, "InvalidField", "tags[1]"),
        (
            [{"op": "replace", "path": "/channelUri", "value": "https://evil.example/?token=x"}],
            400,
            "InvalidChannelUri",
            "channelUri",
        ),
        ([{"op": "add", "path": "/owner", "value": "me"}], 400, "UnknownField", "owner"),
        ([{"op": "add", "path": "/tags/-", "value": "x" * 121}], 400, "InvalidField", "tags[1]"),
        ([{"op": "replace", "path": "/expiresAt", "value": "2000-01-01T00:00:00Z"}], 400, "InvalidField", "expiresAt"),
        ([{"op": "replace", "path": "", "value": []}], 400, "InvalidJson", ""),
        ([{"op": "merge", "path": "/tags"}], 400, "InvalidPatch", "patch[0].op"),
        ({"op": "add", "path": "/tags/-", "value": "x"}, 400, "InvalidPatch", "patch[0]"),
        (b'[{"op": "add", "op": "remove", "path": "/tags/0"}]', 400, "DuplicateField", "[0].op"),
    ]
    for operations, status, code, field in cases:
        response = await patch("refused-pc", operations)
        assert response.status == status, (operations, response.body)
        assert response.body["error"]["code"] == code, (operations, response.body)
        assert response.body["error"].get("field", "") == field, (operations, response.body)
    read = await call("get_installation", "GET", "installations/refused-pc", installationId="refused-pc")
    assert read.body == stored

    missing = await patch("never-registered", [{"op": "add", "path": "/tags/-", "value": "x"}])
    assert missing.status == 404 and missing.body["error"]["code"] == "InstallationNotFound"
    assert (
        await call("get_installation", "GET", "installations/never-registered", installationId="never-registered")
    ).status == 404
    ctx = await get_context()
    assert await pending_markers(ctx.index_table) == []


async def test_concurrent_patches_each_add_their_tag_and_none_is_lost(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    with_jitter(ctx, random.Random(17))
    await put("busy-pc", {"channelUri": sandbox_client.create_channel()["channelUri"], "tags": ["base"]})
    tags = [f"t{i:02d}" for i in range(16)]

    async def add(tag: str) -> int:
        return (await patch("busy-pc", [{"op": "add", "path": "/tags/-", "value": tag}])).status

    # A concurrent patch of another member, too: it must neither be lost nor lose a tag.
    other = patch("busy-pc", [{"op": "add", "path": "/userId", "value": "carol"}])
    statuses = await asyncio.gather(*(add(tag) for tag in tags), other)
    assert [s if isinstance(s, int) else s.status for s in statuses] == [200] * (len(tags) + 1)
    stored = await ctx.installations.get("busy-pc")
    assert stored is not None
    assert stored.tags == sorted(["base", *tags]) and stored.user_id == "carol"
    assert await invariant_violations(ctx.installations, ctx.index_table, ["busy-pc"]) == []
    assert await pending_markers(ctx.index_table) == []


DEVICE = "patch_my_installation"


async def test_a_device_patches_its_own_installation_but_not_its_user(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    token = sandbox_client.user_token("alice")
    auth = {"Authorization": f"Bearer {token}"}
    channel = sandbox_client.create_channel()["channelUri"]
    registered = await call(
        "put_my_installation",
        "PUT",
        "me/installations/alice-tab",
        {"channelUri": channel},
        headers=auth,
        installationId="alice-tab",
    )
    assert registered.status == 201, registered.body
    user = registered.body["userId"]

    added = await patch(
        "alice-tab", [{"op": "add", "path": "/tags/-", "value": "news"}], "patch_my_installation", **auth
    )
    assert added.status == 200, added.body
    assert added.body["tags"] == ["news"] and added.body["userId"] == user

    for operations in (
        [{"op": "replace", "path": "/userId", "value": "bob"}],
        [{"op": "remove", "path": "/userId"}],
        [{"op": "move", "from": "/userId", "path": "/tags/-"}],
        [{"op": "replace", "path": "", "value": {"channelUri": channel, "userId": "bob"}}],
    ):
        refused = await patch("alice-tab", operations, DEVICE, **auth)
        assert refused.status == 403 and refused.body["error"]["code"] == "ReadOnlyMember", refused.body
    tested = await patch(
        "alice-tab", [{"op": "test", "path": "/userId", "value": user}], "patch_my_installation", **auth
    )
    assert tested.status == 200

    # Someone else's installation (a backend's) is refused as a PUT of it would be.
    await put("backend-pc", {"channelUri": sandbox_client.create_channel()["channelUri"]})
    foreign = await patch(
        "backend-pc", [{"op": "add", "path": "/tags/-", "value": "x"}], "patch_my_installation", **auth
    )
    assert foreign.status == 403 and foreign.body["error"]["code"] == "InstallationNotOwned"
    backend = await call("get_installation", "GET", "installations/backend-pc", installationId="backend-pc")
    assert backend.body["tags"] == []
    unsigned = await patch("alice-tab", [{"op": "add", "path": "/tags/-", "value": "x"}], DEVICE)
    assert unsigned.status == 401
