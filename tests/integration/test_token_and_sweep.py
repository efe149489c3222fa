"""Timers: the shared WNS token in Key Vault, and the expired-channel sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from pushfuncs.context import get_context
from pushfuncs.metrics import metrics
from pushfuncs.services.registration import register_installation
from pushfuncs.services.sweep import ExpirySweeper
from pushfuncs.storage.index import expiry_key, tag_partitions, user_partition
from pushfuncs.validation import InstallationRequest
from sandbox import SandboxClient
from tests.harness import QueueDriver, app_environment, call_function, call_http

TOAST = "<toast><visual><binding template='ToastGeneric'><text>t</text></binding></visual></toast>"


@pytest.fixture
async def vault_env(azurite: Any, sandbox: Any) -> Any:
    from pushfuncs.context import close_context

    with app_environment(azurite, sandbox, KEY_VAULT_URL=sandbox.url) as values:
        yield values
        await close_context()


async def read_secret(sandbox: Any, name: str) -> Any:
    async with (
        DefaultAzureCredential() as credential,
        SecretClient(sandbox.url, credential, verify_challenge_resource=False) as client,
    ):
        return await client.get_secret(name)


async def test_refresh_timer_stores_the_token_with_its_expiry(vault_env: dict[str, str], sandbox: Any) -> None:
    await call_function("refresh_wns_token", timer=TimerRequest(past_due=False))
    secret = await read_secret(sandbox, vault_env["WNS_TOKEN_SECRET_NAME"])
    assert secret.value
    assert secret.properties.expires_on > datetime.now(UTC) + timedelta(hours=20)
    # A second run leaves a fresh token in place.
    await call_function("refresh_wns_token", timer=TimerRequest(past_due=False))
    again = await read_secret(sandbox, vault_env["WNS_TOKEN_SECRET_NAME"])
    assert again.properties.version == secret.properties.version


async def test_deliveries_share_one_token_read_once(
    vault_env: dict[str, str], sandbox: Any, sandbox_client: SandboxClient
) -> None:
    await call_function("refresh_wns_token", timer=TimerRequest(past_due=False))
    from pushfuncs.context import close_context

    await close_context()  # a new instance: cold in-memory cache, token in Key Vault
    channel = sandbox_client.create_channel()
    assert (
        await call_http(
            "put_installation",
            "PUT",
            "installations/kv-1",
            {"channelUri": channel["channelUri"]},
            installationId="kv-1",
        )
    ).status == 201
    reads, entra = metrics.get("token.keyvault.reads"), metrics.get("token.entra.requests")
    for _ in range(20):
        body = {"type": "toast", "payload": TOAST, "target": {"installationId": "kv-1"}}
        assert (await call_http("send_notification", "POST", "notifications", body)).status == 202
    queue = QueueDriver(vault_env["AzureWebJobsStorage"], vault_env["DELIVERY_QUEUE"], "deliver_notifications")
    await queue.drain()
    await queue.close()
    assert len(sandbox_client.inbox(channel["channelId"])) == 20
    assert metrics.get("token.keyvault.reads") - reads == 1
    assert metrics.get("token.entra.requests") - entra == 0


async def test_concurrent_first_use_makes_one_request(vault_env: dict[str, str]) -> None:
    ctx = await get_context()
    reads, entra = metrics.get("token.keyvault.reads"), metrics.get("token.entra.requests")
    tokens = await asyncio.gather(*(ctx.tokens.get_token() for _ in range(50)))
    assert len(set(tokens)) == 1
    assert metrics.get("token.keyvault.reads") - reads == 1
    assert metrics.get("token.entra.requests") - entra <= 1


async def test_a_rejected_shared_token_is_replaced_for_everyone(
    vault_env: dict[str, str], sandbox: Any, sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    first = await ctx.tokens.get_token()
    sandbox_client.revoke_tokens()
    second = await ctx.tokens.refresh_after_rejection(first)
    assert second != first
    stored = await read_secret(sandbox, vault_env["WNS_TOKEN_SECRET_NAME"])
    assert stored.value == second
    # Another waiter that saw the same rejection gets the new token without a new request.
    entra = metrics.get("token.entra.requests")
    assert await ctx.tokens.refresh_after_rejection(first) == second
    assert metrics.get("token.entra.requests") == entra


async def test_refresh_failure_raises_for_the_retry_policy(azurite: Any, sandbox: Any) -> None:
    from pushfuncs.context import close_context

    with app_environment(azurite, sandbox, KEY_VAULT_URL=sandbox.url, WNS_CLIENT_SECRET="wrong"):
        with pytest.raises(Exception, match="Entra ID gave no WNS token"):
            await call_function("refresh_wns_token", timer=TimerRequest(past_due=False))
        await close_context()


def request(channel: str, expires_at: datetime, **kw: Any) -> InstallationRequest:
    return InstallationRequest(
        channel_uri=channel, user_id=kw.get("user"), tags=kw.get("tags", []), expires_at=expires_at
    )


async def test_sweep_deletes_expired_installations_and_their_index_rows(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    now = datetime.now(UTC)
    channel = sandbox_client.create_channel()["channelUri"]
    for i in range(30):
        await register_installation(
            ctx.installations, ctx.index, f"old-{i:02d}", request(channel, now - timedelta(days=2), tags=["t"]), now
        )
    await register_installation(ctx.installations, ctx.index, "live", request(channel, now + timedelta(days=3)), now)
    # Re-registered since: its old expiry row must not get it swept.
    await register_installation(ctx.installations, ctx.index, "moved", request(channel, now - timedelta(days=1)), now)
    await register_installation(ctx.installations, ctx.index, "moved", request(channel, now + timedelta(days=5)), now)
    # A stale row left behind by a crash between index and registry writes.
    moved = await ctx.installations.get("moved")
    assert moved is not None
    stale = expiry_key("moved", now - timedelta(days=1))
    await ctx.index.put(moved, [stale[0]])

    sweeper = ExpirySweeper(ctx.installations, ctx.index, ctx.index_table)
    report = await sweeper.sweep(now)
    assert report.finished
    assert report.deleted == 30
    assert report.stale_rows_repaired == 1
    for i in range(30):
        assert await ctx.installations.get(f"old-{i:02d}") is None
    assert await ctx.installations.get("live") is not None
    assert await ctx.installations.get("moved") is not None
    for partition in tag_partitions("t"):
        rows, _ = await ctx.index.page(partition, None, 100)
        assert rows == [], partition
    stale_rows, _ = await ctx.index.page(stale[0], None, 100)
    assert [r.installation_id for r in stale_rows] == []
    right, _ = await ctx.index.page(expiry_key("moved", now + timedelta(days=5))[0], None, 100)
    assert "moved" in [r.installation_id for r in right]


async def test_sweep_is_bounded_and_resumes(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    ctx = await get_context()
    now = datetime.now(UTC)
    channel = sandbox_client.create_channel()["channelUri"]
    for i in range(12):
        await register_installation(
            ctx.installations, ctx.index, f"b-{i}", request(channel, now - timedelta(days=3), user="u1"), now
        )
    sweeper = ExpirySweeper(ctx.installations, ctx.index, ctx.index_table)
    first = await sweeper.sweep(now, budget_seconds=0)
    assert not first.finished and first.deleted == 0
    second = await sweeper.sweep(now)
    assert second.finished and second.deleted == 12
    rows, _ = await ctx.index.page(user_partition("u1"), None, 100)
    assert rows == []


async def test_sweep_timer_runs_through_the_function(app_env: dict[str, str]) -> None:
    await call_function("sweep_expired_installations", timer=TimerRequest(past_due=True))
    ctx = await get_context()
    assert (await ctx.index_table.get_entity("sweep", "cursor"))["Day"] == datetime.now(UTC).strftime("%Y%m%d")


async def test_a_certificate_credential_delivers_without_a_secret(azurite: Any, tmp_path: Any) -> None:
    from pushfuncs.context import close_context
    from sandbox import SandboxClient, start_sandbox
    from tests.conftest import SANDBOX_STATE
    from tests.sandbox.conftest import make_client_certificate

    certificate = make_client_certificate(tmp_path, "pushfuncs-app")
    # Same state dir, so the same (already trusted) CA; this sandbox knows the app's certificate.
    with start_sandbox(port=0, state_dir=SANDBOX_STATE, client_certificates=[certificate.cert_path]) as sandbox:
        client = SandboxClient(sandbox.url, sandbox.ca_path)
        channel = client.create_channel()
        with app_environment(
            azurite, sandbox, WNS_CLIENT_SECRET="", WNS_CLIENT_CERTIFICATE_PATH=str(certificate.pem_path)
        ) as env:
            put = await call_http(
                "put_installation",
                "PUT",
                "installations/cert-1",
                {"channelUri": channel["channelUri"]},
                installationId="cert-1",
            )
            assert put.status == 201
            body = {"type": "toast", "payload": TOAST, "target": {"installationId": "cert-1"}}
            assert (await call_http("send_notification", "POST", "notifications", body)).status == 202
            queue = QueueDriver(env["AzureWebJobsStorage"], env["DELIVERY_QUEUE"], "deliver_notifications")
            await queue.drain()
            await queue.close()
            await close_context()
        assert len(client.inbox(channel["channelId"])) == 1
