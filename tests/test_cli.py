"""The ``hellotext`` command (issue 2: businesses and credentials from the CLI, ``serve --demo``).

Commands run through click's `CliRunner` with ``HELLOTEXT_DATABASE_URL`` (and, on PostgreSQL,
``HELLOTEXT_DATABASE_SCHEMA``) pointing at a fresh database of the engine under test; ``serve --demo`` runs
as a real child process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from hellotext.cli import cli
from hellotext.config import Settings
from hellotext.store import businesses
from hellotext.store.database import Database
from tests.conftest import drop_database, make_settings
from tests.servers import free_port, settings_env

TOKEN_RE = re.compile(r"htsk_[0-9A-Za-z]{40}")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh database for this test."""
    settings = make_settings(tmp_path, "cli")
    yield settings
    drop_database(settings)


@pytest.fixture
def run(fresh: Settings) -> Any:
    """Invoke the CLI against the fresh database; returns the click `Result`."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), env=settings_env(fresh), catch_exceptions=False)

    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _business_for(settings: Settings, token: str) -> businesses.Business | None:
    db = Database.open(settings)
    try:
        return db.read_sync(lambda conn: businesses.business_by_token(conn, token))
    finally:
        db.close()


def test_businesses_create_and_list_json(run: Any) -> None:
    """``businesses create NAME --json`` → id, name, token; ``businesses list --json`` shows it."""
    created = _json(
        run("businesses", "create", "Acme Store", "--origin", "https://shop.example.test", "--json")
    )
    assert set(created) == {"id", "name", "token"}
    assert created["name"] == "Acme Store"
    assert TOKEN_RE.fullmatch(created["token"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", created["id"]) and not created["id"].startswith("htsk_")
    other = _json(run("businesses", "create", "Other", "--json"))

    listed = _json(run("businesses", "list", "--json"))
    by_id = {item["id"]: item for item in listed}
    assert by_id[created["id"]]["name"] == "Acme Store"
    assert by_id[created["id"]]["whitelist"] == ["https://shop.example.test"]
    assert by_id[other["id"]]["whitelist"] == "disabled"
    # Tokens are shown once, at creation, never listed.
    assert created["token"] not in json.dumps(listed)


def test_businesses_create_with_explicit_public_id(run: Any) -> None:
    """§2: an administrator may set the public id; an id breaking the rule is refused (usage error)."""
    created = _json(run("businesses", "create", "Legacy", "--public-id", "D5GAnwf4", "--json"))
    assert created["id"] == "D5GAnwf4"
    refused = run("businesses", "create", "Bad", "--public-id", "htsk_nope", "--json")
    assert refused.exit_code == 2
    refused = run("businesses", "create", "Bad", "--public-id", "has space", "--json")
    assert refused.exit_code == 2
    names = [item["name"] for item in _json(run("businesses", "list", "--json"))]
    assert names == ["Legacy"]


def test_tokens_create_and_revoke_json(run: Any, fresh: Settings) -> None:
    """§2: a new token authenticates its business; a revoked one stops working (stored hashes only)."""
    created = _json(run("businesses", "create", "Acme", "--json"))
    minted = _json(run("tokens", "create", created["id"], "--json"))
    assert set(minted) == {"token"}
    token = minted["token"]
    assert TOKEN_RE.fullmatch(token) and token != created["token"]
    business = _business_for(fresh, token)
    assert business is not None and business.public_id == created["id"]

    assert _json(run("tokens", "revoke", token, "--json")) == {"revoked": True}
    assert _business_for(fresh, token) is None
    # The first token is untouched.
    assert _business_for(fresh, created["token"]) is not None

    again = run("tokens", "revoke", token, "--json")
    assert again.exit_code == 1
    unknown = run("tokens", "create", "no-such-business", "--json")
    assert unknown.exit_code == 1
    assert "no business" in unknown.output


def _start_demo(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    handle = log.open("wb")
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hellotext",
                "serve",
                "--demo",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        handle.close()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve --demo exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail("serve --demo did not become healthy")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _demo_credentials(output: str) -> tuple[str, str]:
    public = re.search(r"public id:\s*(\S+)", output)
    token = TOKEN_RE.search(output)
    assert public is not None and token is not None, output
    return public.group(1), token.group(0)


def test_serve_demo_prints_credentials_and_reuses_the_business(
    fresh: Settings, tmp_path: Path, run: Any
) -> None:
    """``serve --demo`` creates "Demo" on first start, prints working credentials, reuses it after."""
    seen: list[tuple[str, str]] = []
    for attempt in range(2):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / f"demo-{attempt}.log"
        proc = _start_demo(fresh, port, log)
        try:
            _wait_healthy(proc, url, log)
            public_id, token = _demo_credentials(log.read_text())
            # Both credentials work against the running server.
            for credential in (public_id, token):
                answer = httpx.get(
                    f"{url}/v1/public/businesses/{public_id}",
                    headers={"Authorization": f"Bearer {credential}"},
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["name"] == "Demo"
            seen.append((public_id, token))
        finally:
            _stop(proc)
    assert seen[0][0] == seen[1][0], "the second start must reuse the Demo business"
    demos = [item for item in _json(run("businesses", "list", "--json")) if item["name"] == "Demo"]
    assert len(demos) == 1
