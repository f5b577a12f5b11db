"""Two server processes on one PostgreSQL database (issue 2, acceptance 5; spec http-api §2, §8.3).

Credentials live in the database, so a token minted by the administration command works on both servers at
once, and a revocation takes effect on the next request to either. The idempotency check and the insert are
one atomic step in the database, so the same ``id`` sent to both servers at the same moment stores one event.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hellotext.cli import cli
from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.schema import events
from tests.conftest import drop_database, make_settings
from tests.servers import ServerProcess, settings_env

pytestmark = pytest.mark.postgres_only

DUPLICATES = 25


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[Settings, ServerProcess, ServerProcess]]:
    """One fresh PostgreSQL schema and two single-worker servers on it."""
    settings = make_settings(tmp_path, "two")
    first = ServerProcess(settings, log_path=tmp_path / "a.log").start()
    try:
        second = ServerProcess(settings, log_path=tmp_path / "b.log").start()
    except Exception:
        first.stop()
        raise
    try:
        yield settings, first, second
    finally:
        first.stop()
        second.stop()
        drop_database(settings)


def admin(settings: Settings, *args: str) -> dict[str, str]:
    """Run an administration command with ``--json`` against the shared database."""
    result = CliRunner().invoke(cli, [*args, "--json"], env=settings_env(settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    parsed: dict[str, str] = json.loads(result.output)
    return parsed


def client(server: ServerProcess, credential: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {credential}"}, timeout=30)


def test_credentials_work_on_both_and_revocation_reaches_both(
    shared: tuple[Settings, ServerProcess, ServerProcess],
) -> None:
    """§2: a token minted by the CLI works on both servers; revoked, both refuse it on the next request."""
    settings, first, second = shared
    business = admin(settings, "businesses", "create", "Shared")
    token = admin(settings, "tokens", "create", business["id"])["token"]
    for server in (first, second):
        with client(server, token) as private, client(server, business["id"]) as public:
            assert private.get("/v1/actions").status_code == 200
            assert public.get(f"/v1/public/businesses/{business['id']}").status_code == 200
            # A public id is not a secret token on either server.
            assert public.get("/v1/actions").status_code == 401

    assert admin(settings, "tokens", "revoke", token) == {"revoked": True}
    for server in (first, second):
        with client(server, token) as private:
            response = private.get("/v1/actions")
            assert response.status_code == 401
            assert response.json()["errors"][0]["type"] == "unauthorized"
    # The business's first token is unaffected.
    for server in (first, second):
        with client(server, business["token"]) as private:
            assert private.get("/v1/actions").status_code == 200


def test_writes_on_one_are_seen_by_the_other(shared: tuple[Settings, ServerProcess, ServerProcess]) -> None:
    """§5.3, §9: a profile created on one server is found on the other; attaching there follows the rule."""
    settings, first, second = shared
    business = admin(settings, "businesses", "create", "Shared")
    with client(first, business["token"]) as a, client(second, business["token"]) as b:
        owner = a.post("/v1/profiles", json={"email": f"{uuid.uuid4().hex[:8]}@example.test"}).json()["id"]
        rival = b.post("/v1/profiles", json={}).json()["id"]
        assert b.get(f"/v1/profiles/{owner}").status_code == 200
        session = str(uuid.uuid4())
        assert a.patch(f"/v1/sessions/{session}", json={"profile": owner}).status_code == 200
        conflict = b.patch(f"/v1/sessions/{session}", json={"profile": rival})
        assert conflict.status_code == 409
        assert conflict.json()["session"]["profile"] == owner


def test_same_idempotency_id_on_both_stores_one_event(
    shared: tuple[Settings, ServerProcess, ServerProcess],
) -> None:
    """§8.3: the same ``id`` sent to both servers concurrently is stored once; both answer 200."""
    settings, first, second = shared
    business = admin(settings, "businesses", "create", "Shared")
    ids = [f"dup-{n}-{uuid.uuid4().hex[:6]}" for n in range(DUPLICATES)]
    statuses: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def send(name: str, server: ServerProcess) -> None:
        with client(server, business["id"]) as public:
            for client_id in ids:
                barrier.wait(timeout=30)  # both servers get each id at the same moment
                body = {
                    "id": client_id,
                    "action": "page.viewed",
                    "url": "https://shop.example.test/",
                    "session": client_id,
                }
                statuses[name].append(public.post("/v1/track/events", json=body).status_code)

    threads = [
        threading.Thread(target=send, args=("a", first)),
        threading.Thread(target=send, args=("b", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert statuses == {"a": [200] * DUPLICATES, "b": [200] * DUPLICATES}

    db = Database.open(settings)
    try:
        counts = db.read_sync(
            lambda conn: dict(
                conn.execute(
                    select(events.c.client_id, func.count())
                    .where(events.c.client_id.in_(ids))
                    .group_by(events.c.client_id)
                ).all()
            )
        )
    finally:
        db.close()
    assert counts == dict.fromkeys(ids, 1)
