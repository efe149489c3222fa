"""No access token, client secret or channel token reaches a log record, at any level, from any logger."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pushfuncs.context import get_context
from sandbox import SandboxClient
from tests.harness import QueueDriver
from tests.security.device_tokens import unsigned, with_claims
from tests.security.support import call

TOAST = "<toast><visual><binding template='ToastGeneric'><text>hi</text></binding></visual></toast>"
NOISY_LOGGERS = ("azure", "azure.core", "azure.identity", "azure.data.tables", "azure.storage", "aiohttp", "urllib3")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[tuple[str, str]]:
        for record in self.records:
            text = self.format(record)  # includes exception and stack text
            yield record.name, f"{text} {record.args!r}"


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ("", *NOISY_LOGGERS)}
    root.addHandler(handler)
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def issued_tokens(sandbox: Any) -> set[str]:
    """Every access token the sandbox issued (its token store is not exposed over HTTP)."""
    store = getattr(getattr(getattr(sandbox, "_server", None), "state", None), "tokens", None)
    return set(getattr(store, "_tokens", {}))


async def test_a_full_run_logs_no_secret(
    captured: Capture, app_env: dict[str, str], sandbox: Any, sandbox_client: SandboxClient
) -> None:
    channels = [sandbox_client.create_channel() for _ in range(2)]
    for index, channel in enumerate(channels):
        body = {"channelUri": channel["channelUri"], "userId": "logs", "tags": ["logs"]}
        response = await call("put_installation", "PUT", "x", body, installationId=f"logs-{index}")
        assert response.status == 201
    # A device registers with its Entra ID token; forged and refused tokens are logged without themselves.
    device_token = sandbox_client.user_token("logs-user")
    device_channel = sandbox_client.create_channel()
    channels.append(device_channel)
    refused = [with_claims(device_token, oid="someone-else"), unsigned(device_token)]
    for token, expected in ((device_token, 201), *((bad, 401) for bad in refused)):
        response = await call(
            "put_my_installation",
            "PUT",
            "me/installations/logs-device",
            {"channelUri": device_channel["channelUri"]},
            headers={"Authorization": f"Bearer {token}"},
            installationId="logs-device",
        )
        assert response.status == expected, response.body
    queue = QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")
    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")

    async def send_and_deliver(body: dict[str, Any]) -> str:
        response = await call("send_notification", "POST", "notifications", body)
        assert response.status == 202, response.body
        await fanout.drain()
        await queue.drain()
        return str(response.body["id"])

    await send_and_deliver({"type": "toast", "payload": TOAST, "target": {"installationId": "logs-0"}})
    # A backend sends with its app-only token; a device's token is refused there (403).
    backend_token = sandbox_client.backend_token(sandbox.client_id, sandbox.client_secret)
    for token, expected in ((backend_token, 202), (device_token, 403), (with_claims(backend_token, oid="x"), 401)):
        response = await call(
            "send_my_notification",
            "POST",
            "me/notifications",
            {"type": "raw", "payload": "by token", "target": {"installationId": "logs-device"}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == expected, response.body
    await queue.drain()
    await send_and_deliver({"type": "raw", "payload": "raw", "target": {"userId": "logs"}})
    tokens = {await (await get_context()).tokens.get_token()}
    sandbox_client.revoke_tokens()  # the next send meets a 401 and refreshes
    await send_and_deliver({"type": "toast", "payload": TOAST, "target": {"tag": "logs"}})
    sandbox_client.expire_channel(channels[1]["channelId"])  # a 410
    gone = await send_and_deliver({"type": "toast", "payload": TOAST, "target": {"installationId": "logs-1"}})
    status = await call("get_notification", "GET", "x", id=gone)
    assert status.body["targets"][0]["wns"]["statusCode"] == 410
    await queue.close()
    await fanout.close()

    tokens |= {await (await get_context()).tokens.get_token()} | issued_tokens(sandbox)
    assert len(tokens) >= 2  # the one revoked and its replacement
    channel_tokens = {parse_qs(urlsplit(c["channelUri"]).query)["token"][0] for c in channels}
    secrets = {
        **{token: "access token" for token in tokens},
        **{token: "device token" for token in (device_token, *refused)},
        backend_token: "backend token",
        # A JWT's signature alone is the secret part a log could carry without the rest.
        device_token.rsplit(".", 1)[1]: "device token signature",
        backend_token.rsplit(".", 1)[1]: "backend token signature",
        sandbox.client_secret: "client secret",
        **{token: "channel token" for token in channel_tokens},
    }
    assert captured.records, "nothing was logged: the capture is not working"
    leaks = [
        f"{what} in {name}: {text[:300]}"
        for name, text in captured.texts()
        for secret, what in secrets.items()
        if secret and secret in text
    ]
    assert not leaks, "\n".join(leaks)
