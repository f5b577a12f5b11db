"""Group commit: one writer thread commits many units of work in one transaction.

Handlers hand the writer a *unit of work*: a function of a `Connection` that checks and writes. The writer
takes whatever has queued up (up to `batch_max` units), runs them all in one transaction, commits once,
and only then resolves each caller's future. Under load many requests share one fsync; alone, a request
pays one commit, as it would anyway. Answers are sent only after the commit, so an acknowledged write
survives a crash.

A unit that raises (a domain refusal, or a database error) must not take its neighbours down, nor leave a
partial write: the whole batch is rolled back and each unit is run again in a transaction of its own. Units
are therefore written to be re-runnable: they read the state they need inside their transaction.

Waking the event loop is not free (a write to its self-pipe and a loop iteration): the results of one batch
are handed to each event loop in a single call, not one call per request.

On SQLite several server processes share one file. SQLite's own busy handler sleeps 1 to 100 ms between
attempts to take the write lock, which would leave the lock idle most of the time; a process-shared file
lock (`lock_path`) makes a waiting writer sleep in the kernel and wake the moment the lock is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from hellotext.errors import ProblemError

log = logging.getLogger("hellotext.writer")

# PostgreSQL aborts one of two transactions that wait on each other (40P01) or cannot be serialised
# (40001); with several writer threads and processes, two group commits can lock the same new rows (a
# session, an identity) in opposite orders. Nothing of the aborted transaction stays: run it again.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
_TRANSIENT_ATTEMPTS = 5


def _transient(exc: BaseException) -> bool:
    """Whether the database rolled the transaction back for a reason that running it again removes."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _TRANSIENT_SQLSTATES


T = TypeVar("T")
Unit = Callable[[Connection], Any]
_STOP = object()


class _Waiter:
    """Where a unit's outcome goes: a thread's future, or an asyncio future on its loop."""

    __slots__ = ("future", "loop")

    def __init__(self, future: Future[Any] | asyncio.Future[Any], loop: asyncio.AbstractEventLoop | None):
        self.future = future
        self.loop = loop


def _settle(pairs: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Runs on the event loop: resolve every asyncio future of a batch in one go."""
    for future, result, exc in pairs:
        if future.done():  # the request was cancelled (deadline); its write stands anyway
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


class Writer:
    """A group-committing writer over one engine.

    Args:
        engine: the write engine (SQLite: opens with ``BEGIN IMMEDIATE``).
        batch_max: the most units committed together.
        threads: writer threads (1 for SQLite, whose writes are serial anyway; a few for PostgreSQL).
        lock_path: a file to ``flock`` around each transaction, shared by every process writing the same
            SQLite database; ``None`` for PostgreSQL.
    """

    def __init__(
        self, engine: Engine, *, batch_max: int = 512, threads: int = 1, lock_path: str | None = None
    ) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"hellotext-writer-{i}", daemon=True)
            for i in range(threads)
        ]
        self._lock_path = lock_path
        self._lock_fd: int | None = None
        self._started = False
        self.batches = 0
        self.units = 0

    def start(self) -> None:
        """Start the writer threads."""
        if not self._started:
            self._started = True
            if self._lock_path is not None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the threads."""
        if not self._started:
            return
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=30)
        self._started = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def submit(self, unit: Callable[[Connection], T]) -> Future[T]:
        """Queue `unit`; the future resolves after its transaction committed."""
        future: Future[T] = Future()
        self._queue.put((unit, _Waiter(future, None)))
        return future

    async def run(self, unit: Callable[[Connection], T]) -> T:
        """Queue `unit` and wait for its committed result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((unit, _Waiter(future, loop)))
        return await future

    def run_sync(self, unit: Callable[[Connection], T]) -> T:
        """Blocking variant of `run`, for threads and the CLI."""
        return self.submit(unit).result()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop_after = False
            while len(batch) < self._batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop_after = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop_after:
                return

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._lock_fd is None:
            with self._engine.begin() as conn:
                yield conn
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            with self._engine.begin() as conn:
                yield conn
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _commit(self, batch: list[tuple[Unit, _Waiter]]) -> None:
        live = [
            (unit, waiter)
            for unit, waiter in batch
            if waiter.loop is not None or waiter.future.set_running_or_notify_cancel()  # type: ignore[union-attr]
        ]
        if not live:
            return
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with self._transaction() as conn:
                for unit, _ in live:
                    outcomes.append((unit(conn), None))
        except Exception as exc:
            if len(live) == 1 and not _transient(exc):
                outcomes = [(None, self._failed(exc))]
            else:
                # Someone in the batch failed, or the database aborted the batch (a deadlock with a
                # concurrent transaction): give every unit a transaction of its own.
                outcomes = [self._alone(unit) for unit, _ in live]
        self.batches += 1
        self.units += len(live)
        self._deliver([waiter for _, waiter in live], outcomes)

    def _alone(self, unit: Unit) -> tuple[Any, BaseException | None]:
        for attempt in range(_TRANSIENT_ATTEMPTS):
            try:
                with self._transaction() as conn:
                    return unit(conn), None
            except Exception as exc:
                if not _transient(exc) or attempt == _TRANSIENT_ATTEMPTS - 1:
                    return None, self._failed(exc)
                # Rolled back by the database; the unit re-reads what it needs, so running it again is safe.
                time.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _failed(exc: Exception) -> Exception:
        if not isinstance(exc, ProblemError):
            # Domain refusals are the caller's business; anything else is a fault worth a log line.
            log.error("write failed: %s: %s", type(exc).__name__, exc)
        return exc

    @staticmethod
    def _deliver(waiters: list[_Waiter], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        per_loop: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        ] = {}
        for waiter, (result, exc) in zip(waiters, outcomes, strict=True):
            if waiter.loop is None:
                future: Any = waiter.future
                if exc is not None:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            else:
                per_loop.setdefault(waiter.loop, []).append((waiter.future, result, exc))  # type: ignore[arg-type]
        for loop, pairs in per_loop.items():
            # A closed loop (shutdown) has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, pairs)
