"""The token bucket arithmetic (GCRA): bursts, refill, whole-second retry times."""

from __future__ import annotations

import pytest

from koomsg.core.ratelimits.bucket import Bucket, RateLimited, decide


def spend(bucket: Bucket, now: float, times: int, tat: float | None = None) -> float | None:
    for _ in range(times):
        verdict = decide(tat, now, bucket)
        assert verdict.allowed
        tat = verdict.tat
    return tat


def test_a_full_bucket_allows_a_burst_then_refuses_for_one_interval() -> None:
    bucket = Bucket(rate=2, burst=5)
    tat = spend(bucket, 100.0, 5)
    refused = decide(tat, 100.0, bucket)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5)
    # Half a second later exactly one token is back.
    tat = spend(bucket, 100.5, 1, tat)
    assert not decide(tat, 100.5, bucket).allowed


def test_an_idle_bucket_refills_to_its_burst_and_no_further() -> None:
    bucket = Bucket(rate=1, burst=3)
    tat = spend(bucket, 0.0, 3)
    # An hour idle: the bucket holds 3 again, not 3600.
    tat = spend(bucket, 3600.0, 3, tat)
    assert not decide(tat, 3600.0, bucket).allowed


def test_slow_rates_wait_several_seconds() -> None:
    ten_a_minute = Bucket(rate=10 / 60, burst=10)
    tat = spend(ten_a_minute, 0.0, 10)
    refused = decide(tat, 0.0, ten_a_minute)
    assert refused.retry_after == pytest.approx(6.0)


@pytest.mark.parametrize(("seconds", "whole"), [(0.001, 1), (0.5, 1), (1.0, 1), (1.2, 2), (6, 6)])
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, whole: int) -> None:
    assert RateLimited("x", retry_after=seconds).retry_after == whole
