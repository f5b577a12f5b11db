"""Delivery across a server outage (issue 6 acceptance 3; http-api §8.3 idempotency, §8.3b).

A real server with its own database is killed, stays down for 10 s while the app keeps tracking, and is
restarted on the same port: every event tracked meanwhile (within the queue bound) is stored exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from hellotext import DeliveryOptions, Hellotext
from hellotext.store.database import Database
from hellotext.store.schema import events
from tests.conftest import create_tenant, drop_database, make_settings
from tests.servers import ServerProcess

OUTAGE = 10.0


@pytest.mark.slow
def test_events_tracked_while_the_server_is_down_arrive_exactly_once(tmp_path: Path) -> None:
    """§8.3b + §8.3: retries with backoff across a 10 s outage; client ids make every event stored once."""
    settings = make_settings(tmp_path, "restart")
    db = Database.open(settings)
    proc: ServerProcess | None = None
    try:
        tenant = create_tenant(db)
        proc = ServerProcess(settings, log_path=tmp_path / "server.log").start()
        options = DeliveryOptions(flush_interval=0.05, backoff=0.2, max_backoff=1.0, max_queue=5000)
        tracker = Hellotext(tenant.public_id, api_root=proc.url + "/v1", delivery=options)
        keys = [tracker.track("page.viewed", url=f"https://shop.example.com/before/{n}") for n in range(50)]
        assert tracker.flush(30)

        proc.kill()
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < OUTAGE:
            for _ in range(25):
                keys.append(tracker.track("page.viewed", url=f"https://shop.example.com/during/{n}"))
                n += 1
            time.sleep(0.25)
        assert tracker.delivery.stats.delivered == 50  # nothing got through while it was down
        proc = ServerProcess(settings, port=proc.port, log_path=tmp_path / "server.log").start()
        for m in range(50):
            keys.append(tracker.track("page.viewed", url=f"https://shop.example.com/after/{m}"))
        assert tracker.flush(60)
        stats = tracker.delivery.stats
        tracker.close(5)

        assert n >= 900 and stats.dropped == 0 and stats.failed == 0 and stats.retries >= 1
        assert stats.delivered == len(keys)

        def stored(conn: Connection) -> tuple[int, set[str]]:
            where = events.c.business_id == tenant.pk
            count = conn.execute(select(func.count()).select_from(events).where(where)).scalar_one()
            ids = {row[0] for row in conn.execute(select(events.c.client_id).where(where))}
            return count, ids

        count, ids = db.read_sync(stored)
        assert count == len(keys) and ids == set(keys)  # every one, once
    finally:
        if proc is not None:
            proc.stop()
        db.close()
        drop_database(settings)
