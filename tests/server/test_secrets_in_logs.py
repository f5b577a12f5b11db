"""No secret token ever reaches a log line (issue 7: tested by capturing logs while using tokens)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from hellotext.store import businesses
from hellotext.store.database import Database
from tests.conftest import create_tenant, drop_database, make_settings
from tests.servers import ServerProcess


def test_tokens_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, "secrets")
    db = Database.open(settings)
    tenant = create_tenant(db)
    revoked = db.write_sync(lambda c: businesses.create_token(c, tenant.business))
    db.write_sync(lambda c: businesses.revoke_token(c, revoked))
    guessed = "htsk_" + "A" * 40
    log_file = tmp_path / "server.log"
    try:
        with (
            ServerProcess(settings, log_path=log_file, log_level="debug") as proc,
            httpx.Client(base_url=proc.url) as http,
        ):
            for token in (tenant.token, revoked, guessed):
                auth = {"Authorization": f"Bearer {token}"}
                http.get("/v1/profiles", headers=auth)
                http.post("/v1/profiles", json={"email": "not-an-email"}, headers=auth)
                http.post(
                    "/v1/track/events", content=b"{oops", headers={**auth, "Content-Type": "application/json"}
                )
                http.post("/v1/track/events", json={"action": "nope.nope"}, headers=auth)
                http.patch("/v1/sessions/s1", json={"profile": "missing"}, headers=auth)
                http.get("/v1/links?starting_after=zzz", headers=auth)
                http.get("/v1/nope", headers=auth)
    finally:
        db.close()
        drop_database(settings)
    server_log = log_file.read_text(encoding="utf-8", errors="replace")
    assert "Started server process" in server_log or "Uvicorn running" in server_log  # the log was captured
    # In-process records of our code and its libraries (the test's own HTTP client is not the product).
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    captured = server_log + "\n".join(r.getMessage() for r in ours)
    for token in (tenant.token, revoked, guessed):
        assert token not in captured
        assert token[5:] not in captured  # not even without its prefix
    assert "htsk_" not in captured
