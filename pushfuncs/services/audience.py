"""Who a send would reach, for backends: list a user's or a tag's installations page by page, and
count a tag, an expression, a user or everyone. Both read the index partitions a send reads
(`pushfuncs/storage/index.py`), never scan the registry, and skip expired channels as a send
does; once writes have returned, the index is the registry (pushfuncs/services/registration.py),
so what is listed or counted is what a send at that moment would reach.

A continuation token is opaque to clients: base64url of `{"s": source, "a": after}`, the index
partition (of the query's list of partitions) and the last installation id read in it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from pushfuncs.errors import InvalidField
from pushfuncs.services.fanout import target_sources
from pushfuncs.storage.index import IndexRow, IndexStore, tag_of_partition
from pushfuncs.tag_expression import evaluate, parse_tag_expression
from pushfuncs.validation import validate_id

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Index rows one count request reads at most (20 queries of 1,000): a bigger audience is counted
# over several requests, each continuing where the last stopped, so none outlives an HTTP timeout.
COUNT_ROWS_PER_REQUEST = 20_000
_MAX_TOKEN_CHARS = 600


@dataclass(frozen=True)
class Cursor:
    source: int = 0
    after: str = ""


def encode_token(cursor: Cursor) -> str:
    raw = json.dumps({"s": cursor.source, "a": cursor.after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str | None, sources: int) -> Cursor:
    """The cursor a token stands for; 400 for anything this service did not hand out."""
    if not token:
        return Cursor()
    refused = InvalidField("continuationToken", "is not a token this query returned")
    if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise refused from None
    if not isinstance(data, dict) or set(data) != {"s", "a"}:
        raise refused
    source, after = data["s"], data["a"]
    if type(source) is not int or not 0 <= source < sources or not isinstance(after, str):
        raise refused
    if after:  # a cursor is the last installation id read
        try:
            validate_id(after, "continuationToken")
        except InvalidField:
            raise refused from None
    return Cursor(source, after)


async def list_installations(
    index: IndexStore, partitions: list[str], token: str | None, limit: int, now: datetime
) -> tuple[list[IndexRow], str | None]:
    """Up to `limit` live installations from `partitions` in order, and the token of the rest
    (None when there is no more). Reads at most `limit` rows, so a page may hold fewer."""
    cursor = decode_token(token, len(partitions))
    found: list[IndexRow] = []
    read = 0
    while cursor.source < len(partitions) and read < limit:
        rows, after = await index.page(partitions[cursor.source], cursor.after or None, limit - read)
        read += len(rows)
        found += [row for row in rows if row.expires_at > now and row.channel_uri]
        cursor = Cursor(cursor.source, after) if after else Cursor(cursor.source + 1)
    return found, encode_token(cursor) if cursor.source < len(partitions) else None


async def count_audience(
    index: IndexStore, target: dict[str, object], token: str | None, now: datetime
) -> tuple[int, str | None]:
    """How many live installations a send to `target` (tag, tagExpression, userId or all) would
    reach, as the fan-out counts them (an installation with two tags of an expression once);
    with a token when the count goes on in another request (add the counts)."""
    sources = target_sources(target)
    expression = target.get("tagExpression")
    node = parse_tag_expression(str(expression)) if expression else None
    cursor = decode_token(token, len(sources))
    count = read = 0
    while cursor.source < len(sources) and read < COUNT_ROWS_PER_REQUEST:
        partition = sources[cursor.source]
        rows, after = await index.page(partition, cursor.after or None, MAX_PAGE)
        read += len(rows)
        earlier = {tag_of_partition(p) for p in sources[: cursor.source]} - {tag_of_partition(partition)}
        for row in rows:
            if row.expires_at <= now or not row.channel_uri:
                continue
            if node is not None and (not evaluate(node, row.tags) or row.tags & earlier):
                continue
            count += 1
        cursor = Cursor(cursor.source, after) if after else Cursor(cursor.source + 1)
    return count, encode_token(cursor) if cursor.source < len(sources) else None
