"""Backends send with an app-only Entra ID token on /api/me/notifications; a device's token sends nothing.

Every token starts at the sandbox's real token endpoint; the functions get real HttpRequests, and
every answer is checked against pushfuncs/openapi.json.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pushfuncs.config import applied_settings
from pushfuncs.context import finish_background_sends
from sandbox import SandboxClient
from tests.harness import QueueDriver, Response
from tests.security.device_tokens import signed_by_stranger, unsigned, with_claims
from tests.security.support import assert_response_documented, call

TOAST = "<toast><visual><binding template='ToastGeneric'><text>sign-in code 123456</text></binding></visual></toast>"
NAMES = {"POST": "send_my_notification", "GET": "get_my_notification", "DELETE": "cancel_my_notification"}


async def with_token(
    token: str | None, method: str, notification_id: str | None = None, body: object = None, **headers: str
) -> Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    route, params = "me/notifications", {}
    if notification_id is not None:
        route, params = f"me/notifications/{notification_id}", {"id": notification_id}
    response = await call(NAMES[method], method, route, body, headers=headers, **params)
    assert_response_documented(NAMES[method], response)
    return response


async def register(sandbox_client: SandboxClient, installation_id: str) -> dict[str, Any]:
    channel = sandbox_client.create_channel()
    body = {"channelUri": channel["channelUri"]}
    response = await call("put_installation", "PUT", "x", body, installationId=installation_id)
    assert response.status == 201, response.body
    return channel


async def deliver_everything(app_env: dict[str, str]) -> None:
    """Finish the sends made right after an answer and any delivery queued (retries included).

    Every send here names one installation; a scheduled one waits, delayed, on the fan-out queue.
    """
    await finish_background_sends()
    driver = QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")
    await driver.drain()
    await driver.close()


def toast_to(installation_id: str) -> dict[str, Any]:
    return {"type": "toast", "payload": TOAST, "target": {"installationId": installation_id}}


async def test_a_backends_token_sends_and_reads_the_status(
    app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any
) -> None:
    channel = await register(sandbox_client, "token-sent-pc")
    backend = sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret)

    sent = await with_token(backend, "POST", body=toast_to("token-sent-pc"), **{"Idempotency-Key": "bt-1"})
    assert sent.status == 202, sent.body
    location = f"/api/me/notifications/{sent.body['id']}"
    assert sent.headers["Location"] == sent.body["location"] == location
    # The key routes' Idempotency-Key handling: a retry answers the same id and sends nothing twice...
    replay = await with_token(backend, "POST", body=toast_to("token-sent-pc"), **{"Idempotency-Key": "bt-1"})
    assert replay.status == 202 and replay.body["id"] == sent.body["id"] and replay.body["idempotentReplay"] is True
    # ...and the same key with another body is refused.
    other = {**toast_to("token-sent-pc"), "type": "raw", "payload": "x"}
    reused = await with_token(backend, "POST", body=other, **{"Idempotency-Key": "bt-1"})
    assert reused.status == 422, reused.body
    # The same validation as the key route: the field at fault is named.
    bad = await with_token(backend, "POST", body={**toast_to("token-sent-pc"), "type": "email"})
    assert bad.status == 400 and bad.body["error"]["field"] == "type"
    missing = await with_token(backend, "POST", body=toast_to("nobody-pc"))
    assert missing.status == 404, missing.body

    await deliver_everything(app_env)
    inbox = sandbox_client.inbox(channel["channelId"])
    assert [m["payload"] for m in inbox] == [TOAST]

    status = await with_token(backend, "GET", sent.body["id"])
    assert status.status == 200, status.body
    assert status.body["status"] == "delivered" and status.body["counts"]["delivered"] == 1
    assert status.body["targets"][0]["installationId"] == "token-sent-pc"
    # The same status as a key holder reads it.
    by_key = await call("get_notification", "GET", "x", id=sent.body["id"])
    assert by_key.body == status.body
    assert (await with_token(backend, "GET", "0" * 32)).status == 404
    assert (await with_token(backend, "GET", "no such id")).status == 400


async def test_a_backends_token_cancels_a_scheduled_send(
    app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any
) -> None:
    channel = await register(sandbox_client, "token-cancel-pc")
    backend = sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    scheduled = await with_token(backend, "POST", body={**toast_to("token-cancel-pc"), "sendAt": later})
    assert scheduled.status == 202 and scheduled.body["status"] == "scheduled"
    cancelled = await with_token(backend, "DELETE", scheduled.body["id"])
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    now = await with_token(backend, "POST", body=toast_to("token-cancel-pc"))
    assert (await with_token(backend, "DELETE", now.body["id"])).status == 409
    await deliver_everything(app_env)
    assert len(sandbox_client.inbox(channel["channelId"])) == 1  # the one sent at once


def assert_forbidden(response: Response) -> None:
    assert response.status == 403, response.body
    assert response.body["error"]["code"] == "InsufficientScope"
    assert "Installations.Manage" in response.body["error"]["message"]
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="Installations.Manage"' in challenge


def device_token(sandbox_client: SandboxClient, **shape: Any) -> str:
    if shape:
        sandbox_client.shape_next_token(**shape)
    return sandbox_client.user_token("alice")


FORBIDDEN: dict[str, Callable[[SandboxClient, Any], str]] = {
    "a device's token": lambda c, s: device_token(c),
    # A delegated token is a device's whatever roles its user was assigned.
    "a device whose user holds the backend role": lambda c, s: device_token(c, roles=["Installations.Manage"]),
    "a user's token without the device scope": lambda c, s: device_token(c, scope="User.Read"),
    "an app-only token with another role": lambda c, s: (
        c.shape_next_token(roles=["Something.Else"]) or c.backend_token(s.client_id, s.client_secret)
    ),
}


@pytest.mark.parametrize("case", list(FORBIDDEN))
async def test_anything_but_a_backends_token_is_forbidden_and_sends_nothing(
    app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any, case: str
) -> None:
    # Alice's own device, registered with her token: even to herself she cannot send.
    channel = sandbox_client.create_channel()
    own = await call(
        "put_my_installation",
        "PUT",
        "x",
        {"channelUri": channel["channelUri"]},
        headers={"Authorization": f"Bearer {sandbox_client.user_token('alice')}"},
        installationId="alice-own-pc",
    )
    assert own.status == 201, own.body
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    by_key = await call("send_notification", "POST", "notifications", {**toast_to("alice-own-pc"), "sendAt": later})
    assert by_key.status == 202

    token = FORBIDDEN[case](sandbox_client, sandbox)
    assert_forbidden(await with_token(token, "POST", body=toast_to("alice-own-pc")))
    assert_forbidden(await with_token(token, "POST", body={"type": "raw", "payload": "x", "target": {"all": True}}))
    assert_forbidden(await with_token(token, "GET", by_key.body["id"]))
    assert_forbidden(await with_token(token, "DELETE", by_key.body["id"]))

    status = await call("get_notification", "GET", "x", id=by_key.body["id"])
    assert status.body["status"] == "scheduled"  # the refused DELETE cancelled nothing
    await deliver_everything(app_env)
    assert sandbox_client.inbox(channel["channelId"]) == []


def assert_unauthorized(response: Response) -> None:
    assert response.status == 401, response.body
    assert response.body["error"]["code"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="pushfuncs"')


UNAUTHORIZED: dict[str, Callable[[SandboxClient, Any], str | None]] = {
    "no token": lambda c, s: None,
    # A device rewrites its token into an app-only one: the signature no longer matches.
    "a device's token forged into a backend's": lambda c, s: with_claims(
        c.user_token("mallory"), scp=None, roles=["Installations.Manage"]
    ),
    "a backend's token signed by an unknown key": lambda c, s: signed_by_stranger(
        c.backend_token(s.client_id, s.client_secret)
    ),
    "a backend's token unsigned": lambda c, s: unsigned(c.backend_token(s.client_id, s.client_secret)),
    "an expired backend's token": lambda c, s: (
        c.shape_next_token(expiresIn=-300) or c.backend_token(s.client_id, s.client_secret)
    ),
    "garbage": lambda c, s: "not.a.token",
}


@pytest.mark.parametrize("case", list(UNAUTHORIZED))
async def test_a_missing_or_bad_token_is_refused_with_401_and_sends_nothing(
    app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any, case: str
) -> None:
    channel = await register(sandbox_client, "token-refused-pc")
    token = UNAUTHORIZED[case](sandbox_client, sandbox)
    sent = await with_token(token, "POST", body=toast_to("token-refused-pc"))
    assert_unauthorized(sent)
    assert ("error=" in sent.headers["WWW-Authenticate"]) == (token is not None)
    assert_unauthorized(await with_token(token, "GET", "0" * 32))
    assert_unauthorized(await with_token(token, "DELETE", "0" * 32))
    await deliver_everything(app_env)
    assert sandbox_client.inbox(channel["channelId"]) == []
    # The refusal was the token's: the same request with a backend's real token is sent.
    good = await with_token(
        sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret),
        "POST",
        body=toast_to("token-refused-pc"),
    )
    assert good.status == 202, good.body


async def test_the_token_routes_answer_404_while_sign_in_is_off(
    app_env: dict[str, str], sandbox_client: SandboxClient, sandbox: Any
) -> None:
    channel = await register(sandbox_client, "token-off-pc")
    backend = sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret)
    with applied_settings({"DEVICE_SIGN_IN_ENABLED": "false"}):
        assert (await with_token(backend, "POST", body=toast_to("token-off-pc"))).status == 404
        assert (await with_token(backend, "GET", "0" * 32)).status == 404
        assert (await with_token(None, "POST", body=toast_to("token-off-pc"))).status == 404
    await deliver_everything(app_env)
    assert sandbox_client.inbox(channel["channelId"]) == []
