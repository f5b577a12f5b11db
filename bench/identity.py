"""Identity benchmark: attach cost against prior history, and the profile timeline under a big table.

Usage::

    .venv/bin/python -m bench.identity [--engine sqlite|postgres] [--events 1000000]
                                       [--profile-events 10000] [--prior 100000] [--repeats 200]
                                       [--explain] [--keep]

What it measures (issue 3, acceptance 7), on a fresh SQLite file or PostgreSQL schema:

1. **Attach ratio** (I4: attaching is constant time, history is joined, never rewritten). A session with
   ``--prior`` anonymous events and a session with none are attached, alternately, ``--repeats`` times
   each (the attachment is undone between rounds, untimed). Each attach is the server's own unit of work
   (`hellotext.server.routes.sessions.attach_unit`: profile check, session sighting, the conditional
   update, read-back) run through the group-commit writer, commit included, i.e. everything but HTTP.
   Printed: median with history ÷ median without (goal ≤ 1.5). The conditional UPDATE statement alone is
   timed the same way, inside a transaction that is rolled back, and printed beside it.
2. **Timeline p50**. ``--events`` events in the business, of which ``--profile-events`` are on one
   profile's timeline: half stored with the profile, half anonymous on its 20 attached sessions. The rest
   belong to 10,000 other profiles and 100,000 other sessions. The first page (25 events) and a page
   deep in the timeline (a cursor half-way down) are read through the functions the route calls
   (`profile_exists`, `hellotext.store.timeline.timeline_page`, `timeline_json`, which renders the
   event objects) on a read connection. Printed: p50 and p95 (goal p50 ≤ 20 ms).

Bulk data is inserted with ``executemany`` in batches of 10,000 rows, not through HTTP.
``--explain`` prints the query plans of the two timeline queries.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, insert, select, text, update
from sqlalchemy.pool import NullPool

from hellotext.config import Settings
from hellotext.core.ids import new_id
from hellotext.core.pages import PageRequest
from hellotext.server.routes.sessions import attach_unit
from hellotext.store import businesses
from hellotext.store.database import Database
from hellotext.store.engine import sqlalchemy_url
from hellotext.store.profiles import profile_exists
from hellotext.store.schema import events, profiles, sessions
from hellotext.store.timeline import (
    Shape,
    attached_events_statement,
    own_events_statement,
    session_events_statement,
    timeline_json,
    timeline_page,
)

PG_URL = os.environ.get("HELLOTEXT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 10_000
OTHER_PROFILES = 10_000
OTHER_SESSIONS = 100_000
PROFILE_SESSIONS = 20
ATTACH_GOAL = 1.5
TIMELINE_GOAL_MS = 20.0
YEAR = 365 * 86400.0


def settings_for(engine: str, folder: Path) -> Settings:
    if engine == "postgres":
        return Settings(database_url=PG_URL, database_schema=f"bench_identity_{secrets.token_hex(4)}")
    return Settings(database_url=f"sqlite:///{folder / 'bench.db'}")


def drop(settings: Settings) -> None:
    if settings.is_postgres and settings.database_schema:
        engine = create_engine(sqlalchemy_url(settings), poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        engine.dispose()


def event_row(business_id: int, profile_id: str | None, session_id: str | None, at: float) -> dict[str, Any]:
    return {
        "business_id": business_id,
        "id": new_id(),
        "action": "page.viewed",
        "profile_id": profile_id,
        "session_id": session_id,
        "tracked_at": at,
        "received_at": at,
        "url": "https://shop.example.com/p",
        "page": None,
        "utm": None,
        "metadata": None,
        "object_id": None,
        "client_id": None,
        "amount": None,
        "currency": None,
        "via": "track",
        "raw": "{}",
    }


def batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk(db: Database, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for batch in batches(rows):
        db.write_sync(lambda c, b=batch: c.execute(insert(table), b))
        count += len(batch)
    return count


def profile_row(business_id: int, pid: str, now: float) -> dict[str, Any]:
    return {
        "business_id": business_id,
        "id": pid,
        "created_at": now,
        "updated_at": now,
        "properties": "{}",
        "traits": "{}",
    }


def session_row(business_id: int, sid: str, owner: str | None, now: float) -> dict[str, Any]:
    return {
        "business_id": business_id,
        "id": sid,
        "profile_id": owner,
        "created_at": now - YEAR,
        "last_seen_at": now,
        "attached_at": None if owner is None else now - YEAR / 2,
        "attached_via": None if owner is None else "api",
        "utm": None,
    }


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_attach(db: Database, business_id: int, prior: int, repeats: int) -> dict[str, float]:
    now = time.time()
    target = new_id()
    bulk(db, profiles, iter([profile_row(business_id, target, now)]))
    heavy, light = f"heavy-{secrets.token_hex(4)}", f"light-{secrets.token_hex(4)}"
    bulk(
        db,
        sessions,
        iter([session_row(business_id, heavy, None, now), session_row(business_id, light, None, now)]),
    )
    rng = random.Random(1)
    bulk(db, events, (event_row(business_id, None, heavy, now - rng.random() * YEAR) for _ in range(prior)))

    def detach(session_id: str) -> None:
        db.write_sync(
            lambda c: c.execute(
                update(sessions)
                .where(sessions.c.business_id == business_id, sessions.c.id == session_id)
                .values(profile_id=None, attached_at=None, attached_via=None)
            )
        )

    def unit_time(session_id: str) -> float:
        detach(session_id)
        elapsed = timed(
            lambda: db.write_sync(attach_unit(business_id, session_id, target, "api", time.time()))
        )
        return elapsed

    def statement_time(session_id: str) -> float:
        detach(session_id)
        with db.engines.write.connect() as conn:
            trans = conn.begin()
            statement = (
                update(sessions)
                .where(
                    sessions.c.business_id == business_id,
                    sessions.c.id == session_id,
                    sessions.c.profile_id.is_(None),
                )
                .values(profile_id=target, attached_at=now, attached_via="api")
            )
            elapsed = timed(lambda: conn.execute(statement))
            trans.rollback()
        return elapsed

    results: dict[str, list[float]] = {"unit_heavy": [], "unit_light": [], "stmt_heavy": [], "stmt_light": []}
    for _ in range(3):  # warm caches
        unit_time(heavy)
        unit_time(light)
    for _ in range(repeats):
        results["unit_heavy"].append(unit_time(heavy))
        results["unit_light"].append(unit_time(light))
        results["stmt_heavy"].append(statement_time(heavy))
        results["stmt_light"].append(statement_time(light))
    return {k: statistics.median(v) for k, v in results.items()}


def build_timeline_data(db: Database, business_id: int, total: int, mine: int) -> str:
    now = time.time()
    rng = random.Random(2)
    profile = new_id()
    others = [new_id() for _ in range(OTHER_PROFILES)]
    bulk(db, profiles, (profile_row(business_id, p, now) for p in [profile, *others]))
    own_sessions = [f"own-{i}-{secrets.token_hex(4)}" for i in range(PROFILE_SESSIONS)]
    other_sessions = [f"s-{i}-{secrets.token_hex(4)}" for i in range(OTHER_SESSIONS)]
    # A third of the other sessions are attached to other profiles, the rest anonymous.
    owners = {s: (rng.choice(others) if rng.random() < 1 / 3 else None) for s in other_sessions}
    bulk(
        db,
        sessions,
        iter(
            [session_row(business_id, s, profile, now) for s in own_sessions]
            + [session_row(business_id, s, owners[s], now) for s in other_sessions]
        ),
    )

    def rows() -> Iterator[dict[str, Any]]:
        # The profile's own events interleaved with everyone else's, so they are spread through the table.
        every = max(1, total // mine)
        for i in range(total):
            at = now - rng.random() * YEAR
            if i % every == 0 and i // every < mine:
                if (i // every) % 2 == 0:
                    yield event_row(business_id, None, rng.choice(own_sessions), at)
                else:
                    yield event_row(business_id, profile, rng.choice([None, *own_sessions]), at)
            elif rng.random() < 0.5:
                yield event_row(business_id, None, rng.choice(other_sessions), at)
            else:
                session = rng.choice(other_sessions) if rng.random() < 0.9 else None
                yield event_row(business_id, rng.choice(others), session, at)

    bulk(db, events, rows())
    return profile


def read_timeline(
    conn: Connection, business_id: int, profile: str, page: PageRequest
) -> list[dict[str, Any]]:
    """What ``GET /v1/profiles/{id}/events`` does, minus HTTP and JSON encoding."""
    assert profile_exists(conn, business_id, profile)
    found = timeline_page(conn, business_id, profile, page)
    return timeline_json(conn, business_id, profile, found.items)


def bench_timeline(db: Database, business_id: int, profile: str, mine: int, repeats: int) -> dict[str, Any]:
    first = db.read_sync(lambda c: read_timeline(c, business_id, profile, PageRequest()))
    assert len(first) == 25
    # A cursor half-way down: walk there once (untimed).
    cursor = first[-1]["id"]
    total = 25
    while total < mine // 2:
        page = db.read_sync(
            lambda c, cur=cursor: read_timeline(
                c, business_id, profile, PageRequest(limit=100, starting_after=cur)
            )
        )
        cursor = page[-1]["id"]
        total += len(page)
    timings: dict[str, list[float]] = {"first": [], "deep": []}
    deep = PageRequest(starting_after=cursor)
    with db.engines.read.connect() as conn:
        for _ in range(5):
            read_timeline(conn, business_id, profile, PageRequest())
        for _ in range(repeats):
            timings["first"].append(timed(lambda: read_timeline(conn, business_id, profile, PageRequest())))
            timings["deep"].append(timed(lambda: read_timeline(conn, business_id, profile, deep)))
            conn.rollback()
    return {
        name: (statistics.median(v) * 1000, statistics.quantiles(v, n=20)[18] * 1000)
        for name, v in timings.items()
    }


def explain(db: Database, business_id: int, profile: str) -> None:
    """Print the plans of the timeline's statements: first page, and a page down (cursor and floor)."""
    with db.engines.read.connect() as conn:
        session_id = attached_sessions(conn, business_id, profile)[0]
        now = time.time()
        params = {
            "business_id": business_id,
            "profile_id": profile,
            "want": 26,
            "session_id": session_id,
            "cursor_tracked_at": now - YEAR / 2,
            "cursor_seq": 2**40,
            "floor_tracked_at": now - YEAR / 2 - 86400,
            "floor_seq": 0,
        }
        for shape in (Shape(False, False, False), Shape(False, True, False, floor=True)):
            statements = [("own events", own_events_statement(shape))]
            if conn.dialect.name == "postgresql":
                statements.append(("anonymous events of attached sessions", attached_events_statement(shape)))
            else:
                statements.append(("anonymous events of one session", session_events_statement(shape)))
            for name, statement in statements:
                bound = statement.params(**params)
                compiled = bound.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
                print(
                    f"-- plan: {name}, {'first page' if not shape.cursor else 'after a cursor, with a floor'}"
                )
                for row in conn.exec_driver_sql(prefix + str(compiled)):
                    print("   ", " | ".join(str(v) for v in row))


def attached_sessions(conn: Connection, business_id: int, profile: str) -> list[str]:
    return [
        row.id
        for row in conn.execute(
            select(sessions.c.id).where(
                sessions.c.business_id == business_id, sessions.c.profile_id == profile
            )
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile-events", type=int, default=10_000)
    parser.add_argument("--prior", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--explain", action="store_true", help="print the timeline query plans")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints where it is)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hellotext-bench-identity-"))
    settings = settings_for(args.engine, folder)
    db = Database.open(settings)
    try:
        business = db.write_sync(lambda c: businesses.create_business(c, "Bench"))
        start = time.perf_counter()
        attach = bench_attach(db, business.pk, args.prior, args.repeats)
        print(f"engine: {args.engine}  (attach set-up and runs: {time.perf_counter() - start:.1f} s)")
        ratio = attach["unit_heavy"] / attach["unit_light"]
        print(
            f"attach (writer unit, commit included): {attach['unit_heavy'] * 1000:.3f} ms with "
            f"{args.prior:,} prior events, {attach['unit_light'] * 1000:.3f} ms with none -> "
            f"ratio {ratio:.2f} (goal <= {ATTACH_GOAL}) {'OK' if ratio <= ATTACH_GOAL else 'MISSED'}"
        )
        stmt_ratio = attach["stmt_heavy"] / attach["stmt_light"]
        print(
            f"attach (conditional UPDATE alone): {attach['stmt_heavy'] * 1000:.3f} ms vs "
            f"{attach['stmt_light'] * 1000:.3f} ms -> ratio {stmt_ratio:.2f}"
        )
        start = time.perf_counter()
        other = db.write_sync(lambda c: businesses.create_business(c, "Bench timeline"))
        profile = build_timeline_data(db, other.pk, args.events, args.profile_events)
        # Fresh statistics, as a long-running database would have.
        db.write_sync(lambda c: c.exec_driver_sql("ANALYZE"))
        print(f"timeline data: {args.events:,} events inserted in {time.perf_counter() - start:.1f} s")
        if args.explain:
            explain(db, other.pk, profile)
        timeline = bench_timeline(db, other.pk, profile, args.profile_events, args.repeats)
        for name, (p50, p95) in timeline.items():
            label = "first page" if name == "first" else f"page {args.profile_events // 2:,} events down"
            verdict = "OK" if p50 <= TIMELINE_GOAL_MS else "MISSED"
            print(
                f"timeline {label} (25 of {args.profile_events:,} among {args.events:,}): p50 {p50:.2f} ms, "
                f"p95 {p95:.2f} ms (goal p50 <= {TIMELINE_GOAL_MS:.0f} ms) {verdict}"
            )
    finally:
        db.close()
        if args.keep:
            print(f"kept: {settings!r}")
        else:
            drop(settings)
            for item in folder.iterdir():
                item.unlink()
            folder.rmdir()


if __name__ == "__main__":
    main()
