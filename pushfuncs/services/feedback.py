"""Read the feed of removed channels (pushfuncs/storage/removed_channels.py) day by day, in time order."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta

from pushfuncs.errors import InvalidField
from pushfuncs.storage.removed_channels import RemovedChannel, RemovedChannelFeed, day_partition


def _encode(day: int, after: str) -> str:
    raw = json.dumps({"d": day, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(token: str, days: int) -> tuple[int, str]:
    refused = InvalidField("continuationToken", "is not a token this query returned")
    if len(token) > 300 or not token.isascii():
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise refused from None
    if not isinstance(data, dict) or set(data) != {"d", "a"}:
        raise refused
    day, after = data["d"], data["a"]
    if type(day) is not int or not 0 <= day < days or not isinstance(after, str) or len(after) > 64:
        raise refused
    return day, after


async def removed_channels(
    feed: RemovedChannelFeed, since: datetime, now: datetime, token: str | None, limit: int
) -> tuple[list[RemovedChannel], str | None]:
    """Channels removed from `since` (its UTC day on) until now, `limit` at most, oldest first;
    and the token of the rest. One query per day read."""
    days = (now.date() - since.date()).days + 1
    day, after = _decode(token, days) if token is not None else (0, "")
    found: list[RemovedChannel] = []
    while day < days and len(found) < limit:
        rows, more = await feed.day(day_partition(since + timedelta(days=day)), after, limit - len(found))
        found += [row for _, row in rows if row.removed_at >= since]
        if more:
            after = rows[-1][0]
        else:
            day, after = day + 1, ""
    return found, _encode(day, after) if day < days else None
