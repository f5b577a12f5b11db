"""Abuse limits (http-api §3.3 step 3, §11): token buckets, 429 with Retry-After, shared through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from hellotext.server.limits import MemoryBuckets
from hellotext.store.database import Database
from tests.conftest import assert_error, create_tenant, drop_database, make_settings
from tests.servers import ServerProcess

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_bucket_refills_at_the_rate() -> None:
    buckets = MemoryBuckets(rate=2.0, burst_seconds=2.0)  # capacity 4
    assert [buckets.take_at("k", 0.0) for _ in range(4)] == [0.0] * 4
    assert buckets.take_at("k", 0.0) == pytest.approx(0.5)
    assert buckets.take_at("k", 0.5) == 0.0  # one token came back after 1/rate seconds
    assert buckets.take_at("other", 0.5) == 0.0  # keys are independent


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    settings = make_settings(tmp_path, "limits", rate_limit_per_business=5.0, rate_limit_burst_seconds=2.0)
    db = Database.open(settings)
    tenant = create_tenant(db)
    db.close()
    with ServerProcess(settings, log_path=tmp_path / "server.log") as proc:
        yield proc, tenant.public_id
    drop_database(settings)


def _ack(client: httpx.Client, credential: str) -> httpx.Response:
    return client.post("/v1/public/acks", json={}, headers={"Authorization": f"Bearer {credential}"})


def test_burst_above_the_limit_gets_429_with_retry_after(limited: tuple[ServerProcess, str]) -> None:
    proc, public_id = limited
    with httpx.Client(base_url=proc.url) as client:
        answers = [_ack(client, public_id) for _ in range(30)]
    statuses = [r.status_code for r in answers]
    assert statuses[:9] == [200] * 9  # the bucket holds 10: the start of a burst always passes
    assert 429 in statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1


def test_no_429_below_the_limit(limited: tuple[ServerProcess, str]) -> None:
    proc, public_id = limited
    with httpx.Client(base_url=proc.url) as client:
        statuses = []
        for _ in range(16):  # 4 requests/s for 4 s against 5/s
            statuses.append(_ack(client, public_id).status_code)
            time.sleep(0.25)
    assert statuses == [200] * 16


def test_two_processes_share_one_budget_through_redis(tmp_path: Path) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # a real Redis on 127.0.0.1 is part of the test environment: fail, do not skip
    client.close()
    settings = make_settings(
        tmp_path,
        "redis",
        rate_limit_per_business=0.2,  # capacity 10, one token back every 5 s: refill is negligible here
        rate_limit_burst_seconds=50.0,
        redis_url=REDIS_URL,
    )
    db = Database.open(settings)
    tenant = create_tenant(db)
    db.close()
    try:
        with (
            ServerProcess(settings, log_path=tmp_path / "a.log") as first,
            ServerProcess(settings, log_path=tmp_path / "b.log") as second,
            httpx.Client() as http,
        ):
            statuses = []
            for i in range(16):
                base = first.url if i % 2 == 0 else second.url
                response = http.post(
                    base + "/v1/public/acks", json={}, headers={"Authorization": f"Bearer {tenant.public_id}"}
                )
                statuses.append(response.status_code)
    finally:
        drop_database(settings)
    # Each process alone would have let all 8 of its requests through; together they share 10 (+1 refill).
    assert 10 <= statuses.count(200) <= 11
    assert statuses.count(429) >= 5
