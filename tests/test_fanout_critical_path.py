"""The fan-out's critical path, counted in storage round trips on a virtual clock (bench/critical_path.py):
shards expand in parallel lanes and pages are pipelined, so it grows with the largest shard's
pages, not with the audience."""

from __future__ import annotations

from bench.critical_path import count_broadcast


def test_a_broadcast_expands_its_shards_in_parallel_with_pipelined_pages() -> None:
    small = count_broadcast(2_000)
    large = count_broadcast(40_000)
    # One message to start, one lane per broadcast shard.
    assert small.fanout_messages == large.fanout_messages == 1 + 16
    assert large.delivery_batches >= 40_000 // 100
    # 20x the audience: each lane reads 3 pages instead of 1, about 2 round trips each.
    assert large.round_trips - small.round_trips <= 6
    # A serial fan-out (a query, then each batch's put and record, one after another) needs
    # more than 3 round trips per batch of 100: 1,200 here.
    assert large.round_trips <= 20
