"""Durability on acknowledgement across a crash (spec http-api §8.3; issue 2, acceptance 4).

A server with its own fresh database takes concurrent ``POST /v1/track/events`` from several threads, each
event with a distinct idempotency ``id``. Mid-load the whole server (every worker) is killed with SIGKILL.
After a restart on the same database, every event that had been answered ``200`` must be stored: the
server answers only after the group commit is durable.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.schema import events
from tests.conftest import Tenant, create_tenant, drop_database, make_settings
from tests.servers import ServerProcess

THREADS = 6
MIN_ACKED = 300  # kill once at least this many events were acknowledged ...
MAX_LOAD_SECONDS = 15.0  # ... or after this long, whichever comes first


@pytest.fixture
def crash_db(tmp_path: Path) -> Iterator[tuple[Settings, Tenant]]:
    """A fresh database with one business."""
    settings = make_settings(tmp_path, "crash")
    db = Database.open(settings)
    try:
        tenant = create_tenant(db, name="Crash")
    finally:
        db.close()
    yield settings, tenant
    drop_database(settings)


class Load:
    """Threads posting events with distinct client ids, remembering which were answered 200."""

    def __init__(self, url: str, credential: str) -> None:
        self.url = url
        self.credential = credential
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[str] = []
        self.failures = 0
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)]

    def _run(self, number: int) -> None:
        headers = {"Authorization": f"Bearer {self.credential}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as client:
            sent = 0
            while not self.stop.is_set():
                client_id = f"crash-{number}-{sent}"
                sent += 1
                body = {
                    "id": client_id,
                    "action": "page.viewed",
                    "url": f"https://shop.example.test/p/{sent}",
                    "session": str(uuid.uuid4()),
                }
                try:
                    response = client.post("/v1/track/events", json=body)
                except httpx.HTTPError:
                    with self.lock:
                        self.failures += 1
                    if self.stop.is_set():
                        return
                    time.sleep(0.01)
                    continue
                if response.status_code == 200:
                    with self.lock:
                        self.acked.append(client_id)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive()


def stored_client_ids(settings: Settings, business_pk: int) -> set[str]:
    """Client ids of the business's events, read by a fresh connection."""
    db = Database.open(settings)
    try:
        rows = db.read_sync(
            lambda conn: conn.execute(
                select(events.c.client_id).where(events.c.business_id == business_pk)
            ).scalars()
        )
        return {row for row in rows if row is not None}
    finally:
        db.close()


def test_acknowledged_events_survive_sigkill(crash_db: tuple[Settings, Tenant], tmp_path: Path) -> None:
    """§8.3 durability: after SIGKILL mid-load and a restart, every event answered 200 is stored."""
    settings, tenant = crash_db
    server = ServerProcess(settings, workers=2, log_path=tmp_path / "server.log").start()
    load = Load(server.url, tenant.public_id)
    try:
        load.start()
        deadline = time.monotonic() + MAX_LOAD_SECONDS
        while load.count() < MIN_ACKED and time.monotonic() < deadline:
            time.sleep(0.02)
        # The threads are still sending: this kill lands in the middle of requests and group commits.
        server.kill()
        acked_at_kill = load.count()
    finally:
        load.join()
        server.kill()
    acked = set(load.acked)
    assert acked_at_kill >= 50, f"too little load before the kill ({acked_at_kill} acknowledged)"

    restarted = ServerProcess(settings, log_path=tmp_path / "server-restarted.log").start()
    try:
        stored = stored_client_ids(settings, tenant.pk)
        lost = sorted(acked - stored)
        assert lost == [], f"{len(lost)} of {len(acked)} acknowledged events were lost, e.g. {lost[:5]}"
        # The restarted server serves the same database: an acknowledged id is a duplicate there.
        headers = {"Authorization": f"Bearer {tenant.public_id}"}
        again = {"id": next(iter(acked)), "action": "page.viewed", "url": "https://shop.example.test/"}
        response = httpx.post(f"{restarted.url}/v1/track/events", json=again, headers=headers, timeout=10)
        assert response.status_code == 200
        assert stored_client_ids(settings, tenant.pk) == stored
    finally:
        restarted.stop()
