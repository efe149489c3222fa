"""GET /api/removed-channels: each channel delivery removed on a 404/410, once, with WNS's answer;
a stale 410 (re-registered meanwhile) removes nothing and feeds nothing; retention expires the feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pushfuncs.context import get_context
from pushfuncs.services.retention import expire_notifications
from sandbox import SandboxClient
from tests.integration.test_audience import get
from tests.integration.test_targeting import drain_all, register_many, send

TOAST = "<toast><visual><binding template='ToastGeneric'><text>t</text></binding></visual></toast>"


async def test_removed_channels_are_fed_once_and_expire_with_retention(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    expired, deleted, alive = (sandbox_client.create_channel() for _ in range(3))
    await register_many(
        [
            ("fed-expired", expired["channelUri"], None, ["fed"]),
            ("fed-deleted", deleted["channelUri"], None, ["fed"]),
            ("fed-alive", alive["channelUri"], None, ["fed"]),
        ]
    )
    sandbox_client.expire_channel(expired["channelId"])
    sandbox_client.delete_channel(deleted["channelId"])
    code, accepted = await send({"type": "toast", "payload": TOAST, "target": {"tag": "fed"}})
    assert code == 202
    await drain_all(app_env)

    since = started.isoformat().replace("+00:00", "Z")
    page = await get("list_removed_channels", "removed-channels", since=since)
    assert page.status == 200, page.body
    fed = {row["installationId"]: row for row in page.body["removedChannels"]}
    assert set(fed) == {"fed-expired", "fed-deleted"}
    assert fed["fed-expired"]["wns"]["statusCode"] == 410 and fed["fed-deleted"]["wns"]["statusCode"] == 404
    assert fed["fed-expired"]["channelUri"] == expired["channelUri"]
    assert all(row["notificationId"] == accepted["id"] for row in fed.values())
    assert page.body["continuationToken"] is None

    one = await get("list_removed_channels", "removed-channels", since=since, limit="1")
    assert len(one.body["removedChannels"]) == 1 and one.body["continuationToken"]
    rest = await get(
        "list_removed_channels",
        "removed-channels",
        since=since,
        limit="1",
        continuationToken=one.body["continuationToken"],
    )
    assert {one.body["removedChannels"][0]["installationId"], rest.body["removedChannels"][0]["installationId"]} == set(
        fed
    )

    # A second send finds nothing more to remove, so the feed does not grow.
    await send({"type": "toast", "payload": TOAST, "target": {"tag": "fed"}})
    await drain_all(app_env)
    again = await get("list_removed_channels", "removed-channels", since=since)
    assert len(again.body["removedChannels"]) == 2

    ctx = await get_context()
    await expire_notifications(ctx.notifications, datetime.now(UTC) + timedelta(days=32), timedelta(days=30))
    gone = await get("list_removed_channels", "removed-channels", since=since)
    assert gone.body["removedChannels"] == []

    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"continuationToken": "x"}, "continuationToken"),
    ):
        refused = await get("list_removed_channels", "removed-channels", **params)
        assert refused.status == 400 and refused.body["error"]["field"] == field, refused.body
