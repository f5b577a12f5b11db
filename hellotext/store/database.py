"""The database handle the server and the CLI share: engines, the group-commit writer, read helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Connection

from hellotext.config import Settings
from hellotext.store.engine import Engines, make_engines, sqlite_lock_path
from hellotext.store.migrate import migrate
from hellotext.store.writer import Writer

T = TypeVar("T")


class Database:
    """Engines plus one writer.

    Writes go through `write` (group commit, see `hellotext.store.writer`); reads through `read`, which
    runs the function on a worker thread with a connection of the read engine.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engines: Engines = make_engines(settings)
        self.dialect = self.engines.dialect
        self.writer = Writer(
            self.engines.write,
            batch_max=settings.writer_batch_max,
            threads=1 if self.dialect == "sqlite" else 3,
            lock_path=sqlite_lock_path(settings) if self.dialect == "sqlite" else None,
        )

    @classmethod
    def open(cls, settings: Settings, *, run_migrations: bool = True) -> Database:
        """Migrate (by default), then open and start the writer."""
        if run_migrations:
            migrate(settings)
        db = cls(settings)
        db.writer.start()
        return db

    def close(self) -> None:
        """Drain the writer and close connections."""
        self.writer.stop()
        self.engines.dispose()

    async def write(self, unit: Callable[[Connection], T]) -> T:
        """Run `unit` in a group-committed transaction; returns after the commit."""
        return await self.writer.run(unit)

    def write_sync(self, unit: Callable[[Connection], T]) -> T:
        """Blocking `write`, for the CLI and threads."""
        return self.writer.run_sync(unit)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` with a read connection, on the calling thread."""
        with self.engines.read.connect() as conn:
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` with a read connection on a worker thread."""
        return await anyio.to_thread.run_sync(self.read_sync, fn)
