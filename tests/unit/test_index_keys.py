"""Index keys: every installation's rows, and the sharding of tag partitions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from pushfuncs.services.fanout import target_sources
from pushfuncs.storage.index import TAG_SHARDS, index_partitions, tag_key, tag_of_partition, tag_partitions
from pushfuncs.storage.installations import Installation


def installation(installation_id: str, tags: list[str]) -> Installation:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    return Installation(
        installation_id=installation_id,
        channel_uri="https://example.notify.windows.com/?token=x",
        user_id="alice",
        tags=tags,
        expires_at=now + timedelta(days=30),
        created_at=now,
        updated_at=now,
    )


def test_a_popular_tag_spreads_over_every_shard_evenly() -> None:
    counts = Counter(tag_key("news", f"device-{i}")[0] for i in range(16_000))
    assert set(counts) == set(tag_partitions("news"))
    assert max(counts.values()) < 1.2 * 16_000 / TAG_SHARDS


def test_an_installation_has_one_row_per_tag_in_the_same_shard_of_each() -> None:
    partitions = index_partitions(installation("dev-1", ["a-b", "c"]))
    tag_rows = sorted(pk for pk in partitions if pk.startswith("tag-"))
    assert [tag_of_partition(pk) for pk in tag_rows] == ["a-b", "c"]
    assert tag_rows[0][-2:] == tag_rows[1][-2:]  # same shard number: expressions dedupe by tag
    assert {pk for pk in partitions if pk.startswith("user-")} == {"user-alice"}


def test_tags_with_dashes_and_digits_map_back_from_their_partitions() -> None:
    for tag in ("a", "a-01", "x-y-z", "7"):
        assert {tag_of_partition(p) for p in tag_partitions(tag)} == {tag}


def test_a_tag_send_reads_every_shard_and_an_expression_every_shard_of_each_tag_it_names() -> None:
    assert target_sources({"tag": "news"}) == tag_partitions("news")
    sources = target_sources({"tagExpression": "(a || b) && !c"})
    assert sources == tag_partitions("a") + tag_partitions("b") + tag_partitions("c")
