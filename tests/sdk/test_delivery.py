"""Background delivery (issue 6; http-api §8.3, §8.3b): batching, retries, bounds, flush/close, fork, exit.

Against the stand-in sink, a real HTTP server in a thread, which can answer 429, 503, 401 or hang. The
restart test against the real server (events survive an outage, stored once) is in
``test_delivery_restart.py``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from hellotext import DeliveryOptions, QueueFull, ValidationFailed
from hellotext.sdk.delivery import Delivery
from tests.sdk.sink import Answer, Seen, Sink
from tests.servers import free_port

BATCH = "/v1/track/events/batch"
FAST = DeliveryOptions(flush_interval=0.05, backoff=0.05, max_backoff=0.2)


def event(n: int) -> dict[str, object]:
    return {"action": "page.viewed", "url": f"https://s.example.com/{n}", "session": "s-1"}


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_batches_of_at_most_500_with_unique_ids_8_3b(sink: Sink) -> None:
    """§8.3b: the worker sends ≤ 500 events per request; every event carries its own idempotency key."""
    delivery = Delivery("biz", api_root=sink.api_root, options=FAST)
    keys = [delivery.submit(event(n)) for n in range(1234)]
    assert delivery.flush(30)
    delivery.close(5)
    posts = sink.posts(BATCH)
    assert all(len(p.body["events"]) <= 500 for p in posts)
    assert all(p.headers["authorization"] == "Bearer biz" for p in posts)
    received = [e["id"] for e in sink.events()]
    assert sorted(received) == sorted(keys) and len(set(keys)) == 1234
    stats = delivery.stats
    assert (stats.submitted, stats.delivered, stats.dropped, stats.failed) == (1234, 1234, 0, 0)


def test_429_waits_for_retry_after_and_resends_the_same_keys(sink: Sink) -> None:
    """Retry-After is honoured on 429; the retried batch carries the same ids, so it is stored once (§8.3)."""
    answers = iter(
        [Answer(status=429, body={"errors": [{"type": "rate_limited"}]}, headers={"Retry-After": "1"})]
    )
    sink.script = lambda seen: next(answers, None)
    delivery = Delivery("biz", api_root=sink.api_root, options=FAST)
    for n in range(10):
        delivery.submit(event(n))
    started = time.monotonic()
    assert delivery.flush(20)
    delivery.close(5)
    first, second = sink.posts(BATCH)
    assert time.monotonic() - started >= 1.0
    assert [e["id"] for e in first.body["events"]] == [e["id"] for e in second.body["events"]]
    assert delivery.stats.delivered == 10 and delivery.stats.retries == 1


def test_server_errors_are_retried_with_backoff(sink: Sink) -> None:
    """5xx and no-answer failures are retried (with backoff) until the batch is delivered."""
    answers = iter([Answer(status=503, body={"errors": [{"type": "server_error"}]})] * 3)
    sink.script = lambda seen: next(answers, None)
    delivery = Delivery("biz", api_root=sink.api_root, options=FAST)
    delivery.submit(event(1))
    assert delivery.flush(20)
    delivery.close(5)
    assert len(sink.posts(BATCH)) == 4
    assert delivery.stats.delivered == 1 and delivery.stats.retries == 3


def test_other_4xx_is_not_retried(sink: Sink, caplog: pytest.LogCaptureFixture) -> None:
    """No retry on 4xx other than 429: one request, the events counted as failed and logged."""
    sink.script = lambda seen: Answer(
        status=401, body={"errors": [{"type": "unauthorized", "description": "no"}]}
    )
    delivery = Delivery("biz", api_root=sink.api_root, options=FAST)
    for n in range(3):
        delivery.submit(event(n))
    with caplog.at_level(logging.WARNING, logger="hellotext"):
        assert delivery.flush(10)
    delivery.close(5)
    assert len(sink.posts(BATCH)) == 1
    assert delivery.stats.failed == 3 and delivery.stats.delivered == 0
    assert "refused" in caplog.text


def test_events_refused_one_by_one_are_counted_8_3b(sink: Sink) -> None:
    """§8.3b: per-event errors in `results` are counted as rejected; the rest as delivered; no retry."""

    def half(seen: Seen) -> Answer | None:
        results = [
            {"status": "received"} if i % 2 == 0 else {"errors": [{"type": "invalid", "parameter": "action"}]}
            for i, _ in enumerate(seen.body["events"])
        ]
        return Answer(body={"results": results})

    sink.script = half
    delivery = Delivery("biz", api_root=sink.api_root, options=FAST)
    for n in range(6):
        delivery.submit(event(n))
    assert delivery.flush(10)
    delivery.close(5)
    assert (delivery.stats.delivered, delivery.stats.rejected) == (3, 3)
    assert len(sink.posts(BATCH)) == 1


def test_full_queue_drops_and_counts_without_blocking(sink: Sink) -> None:
    """A full queue drops new events and counts them; the caller never waits, even with a hung server."""
    release = threading.Event()
    sink.script = lambda seen: (release.wait(10), None)[1]
    options = DeliveryOptions(max_queue=100, batch_size=50, flush_interval=0.01)
    delivery = Delivery("biz", api_root=sink.api_root, options=options)
    delivery.submit(event(0))
    wait_for(lambda: sink.posts(BATCH))  # the worker is now stuck in a request
    started = time.perf_counter()
    for n in range(1, 5001):
        delivery.submit(event(n))
    elapsed = time.perf_counter() - started
    stats = delivery.stats
    assert elapsed < 1.0, elapsed  # ~microseconds per call
    assert stats.dropped >= 4900 and stats.queued <= 100
    assert stats.dropped + stats.queued == 5000
    release.set()
    assert delivery.flush(10)
    delivery.close(5)
    assert len(sink.events()) == 1 + stats.queued


def test_full_queue_raises_only_in_debug(sink: Sink) -> None:
    """With debug=True a dropped event raises QueueFull into the caller."""
    options = DeliveryOptions(max_queue=1, flush_interval=60)
    delivery = Delivery("biz", api_root=sink.api_root, options=options, debug=True)
    delivery.submit(event(0))
    with pytest.raises(QueueFull):
        delivery.submit(event(1))
    assert delivery.close(5)
    assert len(sink.events()) == 1


def test_close_returns_within_its_timeout_when_the_server_is_down() -> None:
    """close(timeout) returns in time with nothing listening; the undelivered events are counted failed."""
    root = f"http://127.0.0.1:{free_port()}/v1"
    delivery = Delivery("biz", api_root=root, options=DeliveryOptions(flush_interval=0.01))
    for n in range(20):
        delivery.submit(event(n))
    time.sleep(0.3)  # let the worker start failing and backing off
    started = time.monotonic()
    assert delivery.close(1.0) is False
    assert time.monotonic() - started < 1.5
    assert delivery.stats.failed == 20 and delivery.stats.delivered == 0
    delivery.submit(event(99))  # after close: dropped, not raised
    assert delivery.stats.dropped == 1


def test_close_returns_within_its_timeout_when_the_server_hangs(sink: Sink) -> None:
    """close(timeout) also returns in time while a request hangs (the request's timeout is clamped)."""
    sink.script = lambda seen: Answer(delay=5.0, body={"results": []})
    delivery = Delivery("biz", api_root=sink.api_root, options=DeliveryOptions(flush_interval=0.01))
    delivery.submit(event(0))
    wait_for(lambda: sink.posts(BATCH))
    started = time.monotonic()
    assert delivery.close(1.0) is False
    assert time.monotonic() - started < 1.5


def test_sync_mode_sends_on_the_callers_thread(sink: Sink) -> None:
    """sync=True: the event is sent before submit returns; failures are logged, raised only in debug."""
    delivery = Delivery("biz", api_root=sink.api_root, options=DeliveryOptions(sync=True))
    key = delivery.submit(event(1))
    assert [e["id"] for e in sink.events()] == [key]
    sink.script = lambda seen: Answer(status=422, body={"errors": [{"type": "invalid", "description": "x"}]})
    delivery.submit(event(2))  # logged, not raised
    assert delivery.stats.failed == 1
    strict = Delivery("biz", api_root=sink.api_root, options=DeliveryOptions(sync=True), debug=True)
    with pytest.raises(ValidationFailed) as caught:
        strict.submit(event(3))
    assert caught.value.status == 422 and caught.value.errors[0]["type"] == "invalid"
    delivery.close(1)
    strict.close(1)


def test_fork_child_starts_empty_and_delivers_its_own(sink: Sink) -> None:
    """os.fork(): the child neither re-sends the parent's queued events nor shares its worker or sockets."""
    release = threading.Event()
    sink.script = lambda seen: (
        release.wait(10) if seen.body["events"][0]["url"].endswith("/0") else None,
        None,
    )[1]
    delivery = Delivery("biz", api_root=sink.api_root, options=DeliveryOptions(flush_interval=0.01))
    delivery.submit(event(0))
    wait_for(lambda: sink.posts(BATCH))  # parent's worker busy with event 0
    for n in range(1, 6):
        delivery.submit(event(n))  # queued in the parent
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            if delivery.stats.queued == 0:
                for n in range(100, 103):
                    delivery.submit(event(n))
                code = 0 if delivery.flush(10) and delivery.close(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    release.set()
    assert delivery.flush(10)
    delivery.close(5)
    urls = Counter(e["url"].rsplit("/", 1)[1] for e in sink.events())
    assert urls == Counter([str(n) for n in [0, 1, 2, 3, 4, 5, 100, 101, 102]])


def test_flush_at_interpreter_exit(sink: Sink, tmp_path: Path) -> None:
    """Events still queued when the program ends are flushed by the atexit hook."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from hellotext import DeliveryOptions, Hellotext
            options = DeliveryOptions(flush_interval=60)
            tracker = Hellotext("biz", api_root="{sink.api_root}", delivery=options)
            for n in range(7):
                tracker.track("page.viewed", url=f"https://s.example.com/{{n}}")
            """
        )
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr.decode()
    assert len(sink.events()) == 7
