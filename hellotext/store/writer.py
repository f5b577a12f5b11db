"""Group commit: one writer thread commits many units of work in one transaction.

Handlers hand the writer a *unit of work*: a function of a `Connection` that checks and writes. The writer
takes whatever has queued up (up to `batch_max` units), runs them all in one transaction, commits once,
and only then resolves each caller's future. Under load many requests share one fsync; alone, a request
pays one commit, as it would anyway. Answers are sent only after the commit, so an acknowledged write
survives a crash.

A unit that raises (a domain refusal, or a database error) must not take its neighbours down, nor leave a
partial write: the whole batch is rolled back and each unit is run again in a transaction of its own. Units
are therefore written to be re-runnable: they read the state they need inside their transaction.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from hellotext.errors import ProblemError

log = logging.getLogger("hellotext.writer")

T = TypeVar("T")
Unit = Callable[[Connection], Any]
_STOP = object()


class Writer:
    """A group-committing writer over one engine.

    Args:
        engine: the write engine (SQLite: opens with ``BEGIN IMMEDIATE``).
        batch_max: the most units committed together.
        threads: writer threads (1 for SQLite, whose writes are serial anyway; a few for PostgreSQL).
    """

    def __init__(self, engine: Engine, *, batch_max: int = 512, threads: int = 1) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"hellotext-writer-{i}", daemon=True)
            for i in range(threads)
        ]
        self._started = False
        self.batches = 0
        self.units = 0

    def start(self) -> None:
        """Start the writer threads."""
        if not self._started:
            self._started = True
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

    def submit(self, unit: Callable[[Connection], T]) -> Future[T]:
        """Queue `unit`; the future resolves after its transaction committed."""
        future: Future[T] = Future()
        self._queue.put((unit, future))
        return future

    async def run(self, unit: Callable[[Connection], T]) -> T:
        """Queue `unit` and wait for its committed result."""
        return await asyncio.wrap_future(self.submit(unit))

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

    def _commit(self, batch: list[tuple[Unit, Future[Any]]]) -> None:
        live = [(unit, fut) for unit, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        results: list[Any] = []
        try:
            with self._engine.begin() as conn:
                for unit, _ in live:
                    results.append(unit(conn))
        except Exception as exc:
            if len(live) == 1:
                self._fail(live[0][1], exc)
            else:
                # Someone in the batch failed: give every unit a transaction of its own.
                for unit, fut in live:
                    self._commit_alone(unit, fut)
            return
        self.batches += 1
        self.units += len(live)
        for (_, fut), result in zip(live, results, strict=True):
            fut.set_result(result)

    def _commit_alone(self, unit: Unit, fut: Future[Any]) -> None:
        try:
            with self._engine.begin() as conn:
                result = unit(conn)
        except Exception as exc:
            self._fail(fut, exc)
            return
        self.batches += 1
        self.units += 1
        fut.set_result(result)

    @staticmethod
    def _fail(fut: Future[Any], exc: Exception) -> None:
        if not isinstance(exc, ProblemError):
            # Domain refusals are the caller's business; anything else is a fault worth a log line.
            log.error("write failed: %s: %s", type(exc).__name__, exc)
        fut.set_exception(exc)
