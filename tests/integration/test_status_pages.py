"""GET /api/notifications/{id} pages its per-target results: every target once, in id order."""

from __future__ import annotations

from typing import Any

from sandbox import SandboxClient
from tests.integration.test_audience import get
from tests.integration.test_targeting import drain_all, register_many, send

TOAST = "<toast><visual><binding template='ToastGeneric'><text>t</text></binding></visual></toast>"


async def test_every_target_is_listed_once_across_pages(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    ids = [f"paged-{i:03d}" for i in range(230)]
    await register_many([(i, channel, None, ["paged"]) for i in ids])
    code, accepted = await send({"type": "toast", "payload": TOAST, "target": {"tag": "paged"}})
    assert code == 202
    await drain_all(app_env)
    route = f"notifications/{accepted['id']}"

    seen: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"limit": "100", **({"continuationToken": token} if token else {})}
        response = await get("get_notification", route, {"id": accepted["id"]}, **params)
        assert response.status == 200, response.body
        assert response.body["counts"]["delivered"] == len(ids)
        seen += response.body["targets"]
        pages += 1
        token = response.body.get("continuationToken")
        if token is None:
            break
    assert pages == 3
    assert [t["installationId"] for t in seen] == ids  # each once, in id order
    assert all(t["status"] == "delivered" for t in seen)
    default = await get("get_notification", route, {"id": accepted["id"]})
    assert len(default.body["targets"]) == 100 and default.body["continuationToken"]

    for params, field in (
        ({"continuationToken": "%%%"}, "continuationToken"),
        ({"continuationToken": ""}, "continuationToken"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
    ):
        refused = await get("get_notification", route, {"id": accepted["id"]}, **params)
        assert refused.status == 400 and refused.body["error"]["field"] == field, refused.body
