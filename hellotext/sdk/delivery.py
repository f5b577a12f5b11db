"""Background delivery of tracked events: a bounded queue, one daemon worker, the batch endpoint.

A web app calls ``track`` on its request threads; those calls must cost microseconds and never fail the
request. So `Delivery.submit` only stamps the event with an idempotency key and appends it to a bounded
queue (when the queue is full the event is dropped and counted; the caller never waits). One daemon thread
sends the queue through ``POST /v1/track/events/batch`` (spec http-api §8.3b), up to 500 events per request:

- a failed request (no answer, 5xx) is retried with exponential backoff and jitter, for ever by default,
  so events tracked while the server is down arrive once it is back (up to the queue bound);
- ``429`` waits for ``Retry-After``; any other ``4xx`` is logged and the batch dropped (retrying cannot
  help);
- every event carries a client ``id`` (the idempotency key), so a batch re-sent after an answer was lost
  is stored once (§8.3);
- events the server refuses one by one (``results[i].errors``) are logged and counted as rejected.

`flush` waits until everything submitted before it has been settled; `close` flushes, stops the worker and
returns within its timeout even when the server is down. Each delivery is closed at interpreter exit.
After ``os.fork()`` the child starts with an empty queue and no worker (the parent still owns the events it
had queued), and a worker starts in the child on its first event: safe under pre-forking servers.

``DeliveryOptions(sync=True)`` sends each event on the caller's thread instead (scripts, serverless), with
a few retries; failures are logged, or raised with ``debug=True``.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import logging
import os
import random
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx

from hellotext.errors import APIError, HellotextError, QueueFull, RateLimited, ServerUnavailable
from hellotext.sdk.wire import api_headers, dumps, error_from_answer, normalize_api_root

__all__ = ["BATCH_BODY_LIMIT", "BATCH_MAX", "Delivery", "DeliveryOptions", "DeliveryStats"]

logger = logging.getLogger("hellotext")

#: At most this many events per batch request (§8.3b).
BATCH_MAX = 500
#: The batch endpoint's body limit (§1.2).
BATCH_BODY_LIMIT = 1_048_576
_SYNC_RETRIES = 2


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How tracked events travel.

    Attributes:
        sync: send each event on the caller's thread (scripts, serverless) instead of in the background.
        max_queue: events held in memory at most; when full, new events are dropped and counted.
        batch_size: events per request, 1-500.
        flush_interval: seconds the worker lets a partial batch wait for more events.
        timeout: seconds allowed for one HTTP request.
        max_retries: retries of a failed request before its events are given up; ``None`` retries until
            `Delivery.close` (background) or twice (sync).
        backoff: first retry delay in seconds; doubles each time, with jitter.
        max_backoff: the longest retry delay.
        shutdown_timeout: seconds `Delivery.close` waits at interpreter exit.
    """

    sync: bool = False
    max_queue: int = 10_000
    batch_size: int = BATCH_MAX
    flush_interval: float = 0.5
    timeout: float = 10.0
    max_retries: int | None = None
    backoff: float = 0.2
    max_backoff: float = 5.0
    shutdown_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be 1-{BATCH_MAX}")
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError("max_retries must be >= 0 or None")


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Counts since the delivery started (in this process).

    Attributes:
        submitted: events accepted into the queue (or sent, in sync mode).
        delivered: events the server answered ``received``.
        rejected: events the server refused one by one (their errors are logged).
        dropped: events dropped because the queue was full.
        failed: events given up after their request failed (4xx, retries exhausted, or closing).
        retries: requests repeated after a failure.
        queued: events waiting now.
    """

    submitted: int
    delivered: int
    rejected: int
    dropped: int
    failed: int
    retries: int
    queued: int


@dataclass(slots=True)
class _Flush:
    """A marker in the queue: set once every event before it has been settled."""

    done: threading.Event = field(default_factory=threading.Event)


class _GiveUp(Exception):
    """The current batch cannot be delivered (4xx, retries exhausted, or the delivery is closing)."""

    def __init__(self, error: HellotextError | None) -> None:
        super().__init__(str(error) if error else "closing")
        self.error = error


_LIVE: weakref.WeakSet[Delivery] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for delivery in list(_LIVE):
        delivery._reset_after_fork()


# One process-wide hook (a hook per instance could not be unregistered): every live delivery resets
# itself in a forked child.
os.register_at_fork(after_in_child=_after_fork_in_child)


class Delivery:
    """Sends tracked events for one business, in the background or synchronously.

    Args:
        business_id: the credential sent with each batch: the business's public id (or a secret token).
        api_root: the API root (``https://track.example.com/v1``).
        options: queue, batching, retry and timeout knobs.
        debug: raise tracking failures (full queue, sync-mode errors) instead of only logging them.
        transport: an httpx transport (tests, proxies); by default a real connection pool.
    """

    def __init__(
        self,
        business_id: str,
        *,
        api_root: str,
        options: DeliveryOptions | None = None,
        debug: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.business_id = business_id
        self.api_root = normalize_api_root(api_root)
        self.options = options or DeliveryOptions()
        self.debug = debug
        self._transport = transport
        self._url = self.api_root + "/track/events/batch"
        self._headers = api_headers(business_id)
        self._closed = False
        self._random = random.Random()
        self._init_process_state()
        _LIVE.add(self)
        atexit.register(self._at_exit)

    # -- state that belongs to one process ------------------------------------------------------------

    def _init_process_state(self) -> None:
        self._queue: collections.deque[dict[str, Any] | _Flush] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None
        self._deadline: float | None = None
        self._markers = 0  # flush markers in the queue; the worker does not linger while one waits
        self._failure: HellotextError | None = None  # the last batch given up, for flush() in debug mode
        # Idempotency keys: a random per-process prefix and a counter; unique without a syscall per event.
        self._id_prefix = os.urandom(12).hex()
        self._ids = itertools.count(1)
        self._submitted = itertools.count(1)
        self._submitted_n = 0
        self._delivered = 0
        self._rejected = 0
        self._dropped = 0
        self._failed = 0
        self._retries = 0

    def _reset_after_fork(self) -> None:
        # The parent keeps (and will send) what it had queued; its sockets and locks are not ours.
        self._init_process_state()

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=self.options.timeout, transport=self._transport, headers=self._headers
            )
        return self._http

    # -- the caller's side ----------------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh idempotency key (unique across processes and restarts)."""
        return f"{self._id_prefix}{next(self._ids):x}"

    def submit(self, event: dict[str, Any]) -> str:
        """Queue one event (or send it now in sync mode); never blocks in background mode.

        The event gets an ``id`` (idempotency key) unless it has one. The dict is owned by the delivery
        from now on: do not change it.

        Returns:
            The event's idempotency key.

        Raises:
            QueueFull: the queue was full and ``debug`` is on (otherwise the drop is logged and counted).
            APIError: sync mode, the event could not be delivered and ``debug`` is on.
        """
        event_id = event.get("id")
        if not isinstance(event_id, str):
            event_id = event["id"] = f"{self._id_prefix}{next(self._ids):x}"
        self._submitted_n = next(self._submitted)
        if self.options.sync:
            self._send_now(event)
            return event_id
        queue = self._queue
        # len() then append is not atomic across threads; the bound may be passed by a few events at
        # most, which is cheaper than a lock on every call.
        if len(queue) >= self.options.max_queue or self._closed:
            self._drop(event_id)
            return event_id
        queue.append(event)
        if self._thread is None:
            self._start()
        if len(queue) >= self.options.batch_size and not self._wake.is_set():
            self._wake.set()  # a full batch is waiting: no need to wait for the flush interval
        return event_id

    def _drop(self, event_id: str) -> None:
        with self._stats_lock:
            self._dropped += 1
            dropped = self._dropped
        if dropped == 1 or dropped % 1000 == 0:
            logger.warning("hellotext: delivery queue full; %d event(s) dropped so far", dropped)
        if self.debug:
            raise QueueFull(f"the delivery queue is full; event {event_id} was dropped")

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="hellotext-delivery", daemon=True)
            self._thread = thread
            thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event submitted before this call is delivered or given up.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.

        Returns:
            ``True`` when everything was settled in time.

        Raises:
            HellotextError: with ``debug=True``, the error of the last batch given up since the last flush.
        """
        if self.options.sync or self._thread is None or not self._thread.is_alive():
            done = not self._queue
        else:
            marker = _Flush()
            with self._stats_lock:
                self._markers += 1
            self._queue.append(marker)
            self._wake.set()
            done = marker.done.wait(timeout)
        failure, self._failure = self._failure, None
        if self.debug and failure is not None:
            raise failure
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the worker; returns within `timeout` even when the server is down.

        Events still undelivered when the time is up are given up (counted as ``failed`` and logged).
        Later `submit` calls drop their events.

        Args:
            timeout: seconds; default `DeliveryOptions.shutdown_timeout`.

        Returns:
            ``True`` when every queued event was delivered (none given up) and the worker stopped in time.
        """
        budget = self.options.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, budget)
        failed_before = self._failed
        self._deadline = deadline
        self._closed = True
        atexit.unregister(self._at_exit)
        try:
            settled = self.flush(max(0.0, deadline - time.monotonic()))
        except HellotextError:
            settled = False  # already logged; close() itself never raises a tracking failure
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                # Stuck in a request to a hung server: it is a daemon and will not hold up exit. Closing its
                # connections makes that request fail instead of lingering, and leaks no socket.
                logger.warning("hellotext: delivery worker still busy at close; giving up its events")
                self._close_client()
                return False
        self._close_client()
        left = sum(1 for item in self._queue if not isinstance(item, _Flush))
        if left:
            self._give_up(left, "the delivery was closed")
            self._queue.clear()
        return settled and not left and self._failed == failed_before

    def _close_client(self) -> None:
        client, self._http = self._http, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing under a busy worker is best effort
                logger.debug("hellotext: error while closing the delivery's connections", exc_info=True)

    def _at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # exit must go on; close() already logged what was lost
            logger.debug("hellotext: error while closing delivery at exit", exc_info=True)

    @property
    def stats(self) -> DeliveryStats:
        """A snapshot of the counters."""
        return DeliveryStats(
            submitted=self._submitted_n,
            delivered=self._delivered,
            rejected=self._rejected,
            dropped=self._dropped,
            failed=self._failed,
            retries=self._retries,
            queued=sum(1 for item in list(self._queue) if not isinstance(item, _Flush)),
        )

    # -- the worker -----------------------------------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        size = self.options.batch_size
        while True:
            self._wake.clear()
            if len(queue) < size and not self._stop.is_set() and not self._markers:
                self._wake.wait(self.options.flush_interval)
            batch: list[dict[str, Any]] = []
            markers: list[_Flush] = []
            while queue and len(batch) < size:
                item = queue.popleft()
                if type(item) is dict:
                    batch.append(item)
                else:
                    assert isinstance(item, _Flush)
                    markers.append(item)
                    with self._stats_lock:
                        self._markers -= 1
                    break  # everything before the marker must be settled before it is released
            if batch:
                try:
                    self._deliver(batch)
                except Exception:  # never let the worker die: a bug here must not stop delivery
                    logger.exception("hellotext: unexpected error while delivering events")
                    self._give_up(len(batch), "unexpected error")
            for marker in markers:
                marker.done.set()
            if self._stop.is_set() and not queue:
                return
            if self._stop.is_set() and self._deadline is not None and time.monotonic() >= self._deadline:
                return

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for body, events in self._encode(batch):
            try:
                self._post(body, len(events))
            except _GiveUp as stop:
                error = stop.error
                self._failure = error
                self._give_up(len(events), str(error) if error else "the delivery is closing")

    def _encode(self, batch: list[dict[str, Any]]) -> list[tuple[bytes, list[dict[str, Any]]]]:
        """Request bodies for a batch, each under the body limit; unencodable events are dropped."""
        try:
            body = dumps({"events": batch})
        except (TypeError, ValueError):
            good = []
            for event in batch:
                try:
                    dumps(event)
                except (TypeError, ValueError) as exc:
                    logger.warning("hellotext: event %s cannot be sent as JSON: %s", event.get("id"), exc)
                    self._give_up(1, None)
                else:
                    good.append(event)
            return self._encode(good) if good else []
        if len(body) <= BATCH_BODY_LIMIT:
            return [(body, batch)]
        if len(batch) == 1:
            logger.warning("hellotext: event %s is larger than a batch may be; dropped", batch[0].get("id"))
            self._give_up(1, None)
            return []
        half = len(batch) // 2
        return self._encode(batch[:half]) + self._encode(batch[half:])

    def _post(self, body: bytes, count: int, *, max_retries: int | None = None) -> None:
        """Send one batch body until it is answered, retrying transient failures.

        Raises:
            _GiveUp: the batch will not be delivered.
        """
        retries = self.options.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            timeout = self.options.timeout
            if self._deadline is not None:
                timeout = min(timeout, self._deadline - time.monotonic())
                if timeout <= 0:
                    raise _GiveUp(None)
            error: HellotextError
            try:
                response = self._client().post(self._url, content=body, timeout=timeout)
            except httpx.HTTPError as exc:
                error = ServerUnavailable(0, [{"type": "network", "description": str(exc) or repr(exc)}])
            else:
                if response.status_code == 200:
                    self._settle(response, count)
                    return
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                error = error_from_answer(response.status_code, response.headers, answer)
                if not isinstance(error, RateLimited | ServerUnavailable) and response.status_code != 408:
                    logger.warning("hellotext: %d event(s) refused: %s", count, error)
                    raise _GiveUp(error)
            if retries is not None and attempt >= retries:
                logger.warning("hellotext: giving up %d event(s) after %d retries: %s", count, attempt, error)
                raise _GiveUp(error)
            delay = self._delay(attempt, error)
            if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                raise _GiveUp(error)
            attempt += 1
            self._retries += 1
            if attempt == 1:
                logger.info("hellotext: delivery failed (%s); retrying", error)
            if self._stop.wait(delay):
                raise _GiveUp(error)  # closing, and its deadline has come

    def _delay(self, attempt: int, error: HellotextError) -> float:
        if isinstance(error, APIError) and error.retry_after is not None:
            return min(error.retry_after, 3600.0)
        ceiling = min(self.options.max_backoff, self.options.backoff * 2.0**attempt)
        # "Equal jitter": at least half the ceiling, so retries never hammer a server that just came back.
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _settle(self, response: httpx.Response, count: int) -> None:
        try:
            results = response.json().get("results")
        except (ValueError, AttributeError):
            results = None
        if not isinstance(results, list) or len(results) != count:
            # A 200 means the batch was committed; an odd body does not make it undelivered.
            self._delivered += count
            return
        refused = [r for r in results if not (isinstance(r, dict) and r.get("status") == "received")]
        self._delivered += count - len(refused)
        if refused:
            self._rejected += len(refused)
            logger.warning(
                "hellotext: the server refused %d of %d event(s); first: %s",
                len(refused),
                count,
                json.dumps(refused[0])[:500],
            )

    def _give_up(self, count: int, reason: str | None) -> None:
        with self._stats_lock:
            self._failed += count
        if reason:
            logger.warning("hellotext: %d event(s) not delivered: %s", count, reason)

    # -- sync mode ------------------------------------------------------------------------------------

    def _send_now(self, event: dict[str, Any]) -> None:
        retries = _SYNC_RETRIES if self.options.max_retries is None else self.options.max_retries
        try:
            bodies = self._encode([event])
            for body, events in bodies:
                self._post(body, len(events), max_retries=retries)
            if not bodies and self.debug:
                raise APIError(0, [{"type": "invalid", "description": "the event cannot be sent as JSON"}])
        except _GiveUp as stop:
            self._give_up(1, None)
            if self.debug and stop.error is not None:
                raise stop.error from None
