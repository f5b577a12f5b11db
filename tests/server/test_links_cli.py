"""``hellotext links create`` as a real command, against the run's database and live server (§9.5.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from sqlalchemy import func, select

from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.profiles import insert_profile
from hellotext.store.schema import links
from tests.conftest import Tenant
from tests.servers import settings_env


def run(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {**os.environ, **settings_env(settings)}
    variables.pop("HELLOTEXT_LINK_BASE_URL", None)  # only what the test asks for
    variables.update(env)
    return subprocess.run(
        [sys.executable, "-m", "hellotext", "links", "create", *args],
        env=variables,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def link_count(database: Database, tenant: Tenant) -> int:
    value: int = database.read_sync(
        lambda c: c.execute(
            select(func.count()).select_from(links).where(links.c.business_id == tenant.pk)
        ).scalar()
    )
    return value


def test_cli_creates_a_working_link_section9_5_1(
    settings: Settings, database: Database, tenant: Tenant, private: httpx.Client, http: httpx.Client
) -> None:
    profile = database.write_sync(lambda c: insert_profile(c, tenant.pk, time.time()))
    result = run(
        settings,
        tenant.public_id,
        "https://shop.example.test/product?x=1#top",
        "--profile",
        profile,
        "--campaign",
        "spring",
        "--json",
        HELLOTEXT_LINK_BASE_URL="https://links.example.test",
    )
    assert result.returncode == 0, result.stderr
    link: dict[str, Any] = json.loads(result.stdout)
    assert link["type"] == "link"
    assert link["url"] == f"https://links.example.test/l/{link['code']}"
    assert (link["destination"], link["profile"], link["campaign"], link["clicks"]) == (
        "https://shop.example.test/product?x=1#top",
        profile,
        "spring",
        0,
    )
    # The same link through the API, and it redirects on the live server.
    assert private.get(f"/v1/links/{link['id']}").json()["code"] == link["code"]
    response = http.get(f"/l/{link['code']}", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://shop.example.test/product?x=1&hello_session=")


def test_cli_plain_output_and_base_url_option(settings: Settings, tenant: Tenant) -> None:
    result = run(settings, tenant.public_id, "https://x.test/", "--base-url", "https://s.example.test/")
    assert result.returncode == 0, result.stderr
    url, link_id = result.stdout.strip().split("\t")
    assert url.startswith("https://s.example.test/l/") and len(url) == len("https://s.example.test/l/") + 8
    assert link_id


def test_cli_refusals_write_nothing_section9_5_1(
    settings: Settings, database: Database, tenant: Tenant
) -> None:
    cases = [
        ((tenant.public_id, "javascript:alert(1)"), "destination"),
        ((tenant.public_id, "https://user:pw@x.test/"), "destination"),
        ((tenant.public_id, "https://x.test/", "--profile", "nope"), "no profile"),
        (("no-such-business", "https://x.test/"), "no business"),
        (
            (
                tenant.public_id,
                "https://links.example.test/l/abcdefgh",
                "--base-url",
                "https://links.example.test",
            ),
            "short link",
        ),
        ((tenant.public_id, "https://x.test/", "--base-url", "links.example.test"), "--base-url"),
    ]
    for args, message in cases:
        result = run(settings, *args, "--json")
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    assert link_count(database, tenant) == 0


def test_cli_help_documents_links_create(settings: Settings) -> None:
    result = run(settings, "--help")
    assert result.returncode == 0
    for option in ("--profile", "--campaign", "--base-url", "--json", "BUSINESS_ID", "DESTINATION"):
        assert option in result.stdout
