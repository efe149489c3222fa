"""Devices sign in with Entra ID: forged tokens are refused, and a device reaches only its own installations.

Every token starts at the sandbox's real token endpoint; the functions get real HttpRequests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import pushfuncs.signing_keys
from pushfuncs.config import applied_settings
from sandbox import SandboxClient
from tests.harness import QueueDriver, Response
from tests.security.device_tokens import (
    claims_of,
    hs256_with_public_key,
    signed_by_stranger,
    unsigned,
    with_claims,
)
from tests.security.support import assert_response_documented, call

TOAST = "<toast><visual><binding template='ToastGeneric'><text>sign-in code 123456</text></binding></visual></toast>"


async def as_device(token: str | None, method: str, installation_id: str, body: object = None) -> Response:
    name = {"PUT": "put_my_installation", "GET": "get_my_installation", "DELETE": "delete_my_installation"}[method]
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    route = f"me/installations/{installation_id}"
    response = await call(name, method, route, body, headers=headers, installationId=installation_id)
    assert_response_documented(name, response)  # every answer is one pushfuncs/openapi.json describes
    return response


async def as_backend(method: str, installation_id: str, body: object = None) -> Response:
    name = {"PUT": "put_installation", "GET": "get_installation", "DELETE": "delete_installation"}[method]
    route = f"installations/{installation_id}"
    return await call(name, method, route, body, installationId=installation_id)


def assert_refused(response: Response) -> None:
    assert response.status == 401, response.body
    assert response.body["error"]["code"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def shaped(**shape: Any) -> Callable[[SandboxClient], str]:
    def make(client: SandboxClient) -> str:
        client.shape_next_token(**shape)
        return client.user_token("alice")

    return make


REFUSED: dict[str, Callable[[SandboxClient], str]] = {
    "forged signature": lambda c: with_claims(c.user_token("mallory"), oid=claims_of(c.user_token("alice"))["oid"]),
    "expired": shaped(expiresIn=-300),
    "not yet valid": shaped(notBeforeIn=600),
    "wrong audience": shaped(audience="api://someone-else"),
    "wrong issuer (v1.0)": lambda c: shaped(issuer=f"https://sts.windows.net/{c.info()['tenantId']}/")(c),
    "wrong tenant": shaped(tenant="another-tenant"),
    "alg none": lambda c: unsigned(c.user_token("alice")),
    "HS256 with the public key": lambda c: hs256_with_public_key(c.user_token("alice"), c),
    "unknown kid": lambda c: signed_by_stranger(c.user_token("alice")),
    "garbage": lambda c: "not.a.token",
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_token_is_refused_with_401(
    app_env: dict[str, str], sandbox_client: SandboxClient, case: str
) -> None:
    channel = sandbox_client.create_channel()
    token = REFUSED[case](sandbox_client)
    assert_refused(await as_device(token, "PUT", "bad-token-pc", {"channelUri": channel["channelUri"]}))
    assert_refused(await as_device(token, "GET", "bad-token-pc"))
    assert (await as_backend("GET", "bad-token-pc")).status == 404  # nothing was registered
    # The same request with a real token goes through: the refusal was the token's.
    good = await as_device(
        sandbox_client.user_token("alice"), "PUT", "bad-token-pc", {"channelUri": channel["channelUri"]}
    )
    assert good.status == 201, good.body


async def test_no_token_is_a_bare_bearer_challenge(app_env: dict[str, str]) -> None:
    response = await as_device(None, "GET", "any-pc")
    assert_refused(response)
    assert "error=" not in response.headers["WWW-Authenticate"]


async def test_a_rotated_signing_key_is_picked_up(
    app_env: dict[str, str], sandbox_client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = sandbox_client.create_channel()
    body = {"channelUri": channel["channelUri"]}
    assert (await as_device(sandbox_client.user_token("alice"), "PUT", "rotating-pc", body)).status == 201
    sandbox_client.rotate_signing_key()
    # Keys were fetched a moment ago: within the refetch interval an unknown kid is not fetched for...
    assert_refused(await as_device(sandbox_client.user_token("alice"), "GET", "rotating-pc"))
    # ...and once it has passed (here: made zero), the new key is fetched and accepted.
    monkeypatch.setattr(pushfuncs.signing_keys, "MIN_REFETCH_SECONDS", 0.0)
    with applied_settings({}):  # new settings object: a new verifier, built with the new interval
        pass
    response = await as_device(sandbox_client.user_token("alice"), "GET", "rotating-pc")
    assert response.status == 200, response.body


async def test_a_device_cannot_see_change_or_delete_anothers_installation(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    alice, bob = sandbox_client.user_token("alice"), sandbox_client.user_token("bob")
    alices_channel, bobs_channel = sandbox_client.create_channel(), sandbox_client.create_channel()
    created = await as_device(alice, "PUT", "alice-pc", {"channelUri": alices_channel["channelUri"]})
    assert created.status == 201
    assert (await as_device(alice, "GET", "alice-pc")).body["channelUri"] == alices_channel["channelUri"]

    # Bob reads it as he reads an id nobody registered.
    taken, missing = await as_device(bob, "GET", "alice-pc"), await as_device(bob, "GET", "nobody-pc")
    assert taken.status == missing.status == 404
    assert taken.body["error"]["code"] == missing.body["error"]["code"] == "InstallationNotFound"
    assert taken.body["error"]["message"].replace("alice-pc", "X") == missing.body["error"]["message"].replace(
        "nobody-pc", "X"
    )
    assert alices_channel["channelUri"] not in str(taken.body)

    # He cannot take it over...
    stolen = await as_device(bob, "PUT", "alice-pc", {"channelUri": bobs_channel["channelUri"]})
    assert stolen.status == 403 and stolen.body["error"]["code"] == "InstallationNotOwned"
    assert alices_channel["channelUri"] not in str(stolen.body)
    # ...nor delete it: the answer is a missing one's.
    assert (await as_device(bob, "DELETE", "alice-pc")).status == 204
    assert (await as_device(bob, "DELETE", "nobody-pc")).status == 204
    kept = await as_backend("GET", "alice-pc")
    assert kept.status == 200 and kept.body["channelUri"] == alices_channel["channelUri"]

    # Alice updates and deletes her own.
    assert (await as_device(alice, "PUT", "alice-pc", {"channelUri": bobs_channel["channelUri"]})).status == 200
    assert (await as_device(alice, "DELETE", "alice-pc")).status == 204
    assert (await as_backend("GET", "alice-pc")).status == 404


async def test_a_device_cannot_take_a_backends_installation(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    assert (await as_backend("PUT", "kiosk", {"channelUri": channel["channelUri"], "userId": "ops"})).status == 201
    mallory = sandbox_client.user_token("mallory")
    assert (await as_device(mallory, "GET", "kiosk")).status == 404
    assert (await as_device(mallory, "PUT", "kiosk", {"channelUri": channel["channelUri"]})).status == 403
    assert (await as_device(mallory, "DELETE", "kiosk")).status == 204
    assert (await as_backend("GET", "kiosk")).body["userId"] == "ops"


async def test_a_device_cannot_choose_its_user_id(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    """The attack of the issue: mallory registers as alice to receive alice's sign-in codes."""
    alice, mallory = sandbox_client.user_token("alice"), sandbox_client.user_token("mallory")
    alice_oid = claims_of(alice)["oid"]
    alices_channel, mallorys_channel = sandbox_client.create_channel(), sandbox_client.create_channel()
    assert (await as_device(alice, "PUT", "alice-laptop", {"channelUri": alices_channel["channelUri"]})).status == 201
    for user_id in ("alice", alice_oid):
        body = {"channelUri": mallorys_channel["channelUri"], "userId": user_id}
        registered = await as_device(mallory, "PUT", "mallory-pc", body)
        assert registered.status in (200, 201)
        assert registered.body["userId"] == claims_of(mallory)["oid"]

    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")
    delivery = QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")
    for user_id in ("alice", alice_oid):
        sent = await call(
            "send_notification",
            "POST",
            "notifications",
            {"type": "toast", "payload": TOAST, "target": {"userId": user_id}},
        )
        assert sent.status in (202, 404), sent.body
    await fanout.drain()
    await delivery.drain()
    await fanout.close()
    await delivery.close()
    assert sandbox_client.inbox(mallorys_channel["channelId"]) == []
    assert len(sandbox_client.inbox(alices_channel["channelId"])) == 1  # the send to her object id


async def test_backends_keep_full_access(app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any) -> None:
    alice = sandbox_client.user_token("alice")
    channel, other = sandbox_client.create_channel(), sandbox_client.create_channel()
    assert (await as_device(alice, "PUT", "alice-tablet", {"channelUri": channel["channelUri"]})).status == 201
    # With a function key...
    read = await as_backend("GET", "alice-tablet")
    assert read.status == 200 and read.body["userId"] == claims_of(alice)["oid"]
    changed = await as_backend("PUT", "alice-tablet", {"channelUri": other["channelUri"], "userId": "support"})
    assert changed.status == 200 and changed.body["userId"] == "support"
    # ...the device still owns it after a backend's change...
    assert (await as_device(alice, "GET", "alice-tablet")).body["channelUri"] == other["channelUri"]
    # ...and an app-only token with the backend role reads and deletes anyone's.
    backend = sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret)
    assert (await as_device(backend, "GET", "alice-tablet")).body["userId"] == "support"
    assert (await as_device(backend, "DELETE", "alice-tablet")).status == 204
    assert (await as_backend("GET", "alice-tablet")).status == 404


async def test_device_routes_answer_404_while_sign_in_is_off(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    with applied_settings({"DEVICE_SIGN_IN_ENABLED": "false"}):
        response = await as_device(
            sandbox_client.user_token("alice"), "PUT", "off-pc", {"channelUri": channel["channelUri"]}
        )
        assert response.status == 404
    assert (await as_backend("GET", "off-pc")).status == 404


async def test_a_token_without_the_scope_or_role_is_forbidden(
    app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any
) -> None:
    sandbox_client.shape_next_token(scope="User.Read")
    response = await as_device(sandbox_client.user_token("alice"), "GET", "any-pc")
    assert response.status == 403 and response.body["error"]["code"] == "InsufficientScope"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    sandbox_client.shape_next_token(roles=["Something.Else"])
    response = await as_device(sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret), "GET", "any-pc")
    assert response.status == 403 and response.body["error"]["code"] == "InsufficientScope"


async def test_a_user_holding_the_backend_role_is_still_a_device(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    assert (await as_backend("PUT", "ops-console", {"channelUri": channel["channelUri"]})).status == 201
    # A delegated token is a device's whatever roles its user was assigned.
    sandbox_client.shape_next_token(roles=["Installations.Manage"])
    token = sandbox_client.user_token("mallory")
    assert claims_of(token)["roles"] == ["Installations.Manage"]
    assert (await as_device(token, "GET", "ops-console")).status == 404
    registered = await as_device(token, "PUT", "mallory-2", {"channelUri": channel["channelUri"], "userId": "ops"})
    assert registered.body["userId"] == claims_of(token)["oid"]
