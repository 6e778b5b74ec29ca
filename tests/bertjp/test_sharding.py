import collections
import random

import pytest

from bertjp import sharding
from bertjp.sharding import bin_of, plan_sample, plan_shards, stable_key


def histogram(records):
    sizes = collections.Counter()
    for key, size in records:
        sizes[bin_of(key)] += size
    return sizes


def random_records(n, seed=0):
    rng = random.Random(seed)
    return [(stable_key(seed, f"doc{i}"), rng.randint(50, 30_000)) for i in range(n)]


def test_stable_key_is_stable_and_seeded():
    assert stable_key(0, "a") == stable_key(0, "a")
    assert stable_key(0, "a") != stable_key(1, "a")
    assert 0 <= stable_key(5, "x") < 2**63
    # A fixed value: keys must never change between releases (shards would move).
    assert stable_key(0, "wiki:1000001") == 7834500529801797493


@pytest.mark.parametrize("num_shards", [1, 2, 3, 4, 7, 8, 14, 64])
def test_shards_are_balanced_within_one_record(num_shards):
    records = random_records(500)
    plan = plan_shards(histogram(records), num_shards)
    sizes = collections.Counter()
    for key, size in records:
        sizes[plan.shard_of(key)] += size
    target = sum(size for _, size in records) / num_shards
    largest = max(size for _, size in records)
    assert set(sizes) <= set(range(num_shards))
    assert all(abs(sizes[s] - target) <= largest for s in range(num_shards))


def test_more_shards_than_records_leaves_empty_shards_not_errors():
    records = random_records(3)
    plan = plan_shards(histogram(records), 10)
    assert len({plan.shard_of(k) for k, _ in records}) == 3


def test_chunks_are_bounded_and_stay_inside_their_shard():
    records = random_records(2000)
    plan = plan_shards(histogram(records), 4, chunk_bytes=200_000)
    chunk_sizes = collections.Counter()
    for key, size in records:
        chunk = plan.chunk_of(key)
        assert plan.chunk_shards[chunk] == plan.shard_of(key)
        chunk_sizes[chunk] += size
    assert max(chunk_sizes.values()) <= 200_000 + 30_000 * 2  # one bin of overshoot at most


def test_empty_input_plans_empty_shards():
    plan = plan_shards({}, 3)
    assert plan.num_shards == 3 and plan.total_bytes == 0 and plan.chunk_starts == ()


@pytest.mark.parametrize("k", [0, 1, 17, 999, 1000, 5000])
def test_sample_plan_takes_exactly_the_k_smallest_keys(k):
    keys = [stable_key(3, f"line{i}") for i in range(1000)]
    plan = plan_sample(collections.Counter(bin_of(key) for key in keys), k)
    taken = [key for key in keys if plan.decide(key) == "take"]
    maybe = sorted(key for key in keys if plan.decide(key) == "maybe")[: plan.partial]
    assert sorted(taken + maybe) == sorted(keys)[:k]
    assert plan.taken == min(k, 1000)


def test_bins_cover_the_key_space():
    assert bin_of(0) == 0 and bin_of(2**63 - 1) == sharding.NUM_BINS - 1
