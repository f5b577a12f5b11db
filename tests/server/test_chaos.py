"""Reliability under crashes, short mode of ``bench/chaos.py`` (issue 7, acceptance 2).

Rules checked after SIGKILLs of server processes under concurrent load, on the engine under test (two
server processes on one database): §8.3 (an event answered 200 is durably stored exactly once; a client id
is never stored twice, retries after a lost answer included), §5.3 / I3 with §9.2.1, §9.3.1 and §8.5 (a
session has one owner, the one every 200 and 409 answer named; identifications point at the identity's
profile), §10 (a click answered 302 left one session, attached to the link's profile, with one
``short_link.clicked`` event, and the link's click count matches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import KINDS, Options, Record, audit, run_chaos
from hellotext.config import Settings
from tests.conftest import drop_database, make_settings

pytestmark = pytest.mark.slow

# Bounded: three kill/restart cycles under under a second of load each; about 20-40 s in all, most of it
# spent starting server processes.
OPTIONS = Options.short(cycles=3, seed=7)


@pytest.fixture
def chaos_settings(tmp_path: Path) -> Iterator[Settings]:
    """A fresh database of the engine under test, dropped afterwards."""
    settings = make_settings(tmp_path, "chaos")
    yield settings
    drop_database(settings)


def test_chaos_nothing_lost_duplicated_or_double_owned(chaos_settings: Settings, tmp_path: Path) -> None:
    """§8.3, §5.3 (I3), §8.5, §9.2.1, §10: SIGKILL under load loses, duplicates and double-owns nothing."""
    report = run_chaos(chaos_settings, OPTIONS, tmp_path)
    print(report.table())
    assert report.total("lost") == 0, report.findings.problems[:20]
    assert report.total("duplicated") == 0, report.findings.problems[:20]
    assert report.findings.double_owned == 0, report.findings.problems[:20]
    assert report.findings.problems == [], report.findings.problems[:20]
    assert not report.failed
    # The figures mean something: every cycle ran, the load reached every kind of request, and attach
    # races really happened (409s).
    tallies = report.findings.tallies
    assert report.cycles == OPTIONS.cycles
    for kind in KINDS:
        assert tallies[kind].ok > 0, (kind, report.table())
    assert tallies["attach"].refused > 0, report.table()

    # The same audit, given answers the database contradicts, reports them: it can fail.
    attached = next(r for r in report.records if r.kind == "attach" and r.status == 200)
    other = next(p for p in report.fixture.profiles if p != attached.owner)
    clicked = next(r for r in report.records if r.kind == "click" and r.status == 302)
    fabricated = [
        Record("track", status=200, client_id="chaos-never-sent"),
        Record("attach", status=200, session=attached.session, profile=other, owner=other),
        dataclasses.replace(clicked),
    ]
    findings = audit(chaos_settings, report.fixture, report.records + fabricated)
    assert findings.tallies["track"].lost == 1
    assert findings.double_owned == 1
    assert findings.tallies["click"].duplicated >= 1
