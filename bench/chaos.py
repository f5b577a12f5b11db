"""Reliability bench: concurrent load, SIGKILL of server processes at random moments, restarts, then an audit.

Usage::

    .venv/bin/python -m bench.chaos [--engine sqlite|postgres|both] [--cycles N] [--short] [--threads N]
                                    [--processes 2] [--workers 1] [--seed S] [--record FILE]

What it does, all on 127.0.0.1 (issue 7, acceptance 2):

1. A fresh database (a SQLite file in a temporary folder, or a fresh PostgreSQL schema at
   ``HELLOTEXT_TEST_PG_URL``, dropped afterwards) with one business and a secret token, made through
   `hellotext.store.businesses`; then ``--processes`` real servers (``hellotext serve``, default two, each
   with ``--workers``) on that one database.
2. Profiles (``POST /v1/profiles``) and short links for them (``POST /v1/links``, plus one without a
   profile) are created before any fault.
3. ``--threads`` threads send, to a running server picked at random, a mix of: ``POST /v1/track/events``
   (each with a unique client ``id``; some with ``user_parameters``, some on sessions that others attach;
   an attempt without an answer is retried with the same ``id``, as a real client would), ``POST
   /v1/public/identifications``, ``PATCH /v1/sessions/{id}`` attaches, ``POST /v1/profiles`` with a
   ``session``, and clicks ``GET /l/{code}`` (redirects not followed; the ``hello_session`` of the
   ``Location`` is kept). Sessions that are attached come from a small "hot" set that every thread shares
   and that changes every ``hot_period`` seconds, so several threads race to attach the same new session
   to different profiles (and to identify on it). Every request and its answer are recorded.
4. Meanwhile, ``--cycles`` times: after a random interval, SIGKILL one server process (its whole process
   group: a crash, with requests in flight), leave it down a moment, restart it on the same port and
   database.
5. After the load, an audit with a fresh connection (see `audit`), and a summary table. A request refused
   at connect time ("unsent") never reached a server; one sent but left without an answer, or answered
   5xx, has an "unknown outcome": excluded from "lost", but its effects may still not be duplicated.
   A 5xx is nevertheless counted as a mismatch: every request sent here is valid.

The exit status is 1 when the audit finds anything lost, duplicated, double-owned or mismatched.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from hellotext.config import Settings
from hellotext.store import businesses, codec
from hellotext.store.database import Database
from hellotext.store.engine import make_engines, sqlalchemy_url
from hellotext.store.schema import events, identities, links, sessions
from tests.servers import ServerProcess

PG_URL = os.environ.get("HELLOTEXT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ("track", "identify", "attach", "profile", "click")
WEIGHTS = (45, 15, 15, 5, 20)
# The answer each kind expects on success (a 409 on attach or profile is an expected refusal).
OK_STATUS = {"track": {200}, "identify": {200}, "attach": {200}, "profile": {200, 201}, "click": {302}}
REFUSALS = {"attach": {409}, "profile": {409}}
SOURCE = "chaos"
CLICK_ACTION = "short_link.clicked"
# "2xx" counts the kind's success (302 for clicks); "unsent": the connection was refused.
COLUMNS = ("requests", "2xx", "409", "5xx", "unsent", "unknown", "lost", "dup", "double-owned", "mismatch")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) hellotext-chaos"


@dataclass(frozen=True, slots=True)
class Options:
    """How hard and how long to shake the servers (`seed` drives every random choice)."""

    cycles: int = 6  # kill/restart cycles
    threads: int = 8  # load threads
    processes: int = 2  # server processes on the one database; a kill takes down one of them
    workers: int = 1  # uvicorn workers per process
    interval: tuple[float, float] = (1.0, 3.0)  # least and most seconds of load before each kill
    down: float = 0.3  # most seconds a killed process stays down before its restart
    tail: float = 1.0  # seconds of load after the last restart
    profiles: int = 12  # profiles made up front (attach targets; links point at the first `links`)
    links: int = 6  # links with a profile made up front (one more has none)
    hot_period: float = 0.5  # seconds a set of hot sessions (attach and identify races) lasts
    hot_width: int = 3  # hot sessions per period
    retries: int = 2  # extra attempts of a track left without an answer (same client id)
    request_timeout: float = 10.0
    seed: int = 0

    @classmethod
    def short(cls, **changes: Any) -> Options:
        """The bounded variant the test suite runs: fewer threads, shorter intervals."""
        base = cls(cycles=5, threads=6, interval=(0.4, 1.0), down=0.2, tail=0.5, profiles=8, links=4)
        return replace(base, **changes)


@dataclass(slots=True)
class Record:
    """One request and its answer (``status`` ``None``: no answer came, ``error`` says why)."""

    kind: str  # one of KINDS
    server: int = -1  # index of the server process it went to
    status: int | None = None
    error: str | None = None
    client_id: str | None = None  # track: the idempotency key
    session: str | None = None  # the session sent (track, identify, attach, profile)
    profile: str | None = None  # attach: the profile asked for; profile: the one answered
    user_id: str | None = None  # identify, track with user_parameters
    link: str | None = None  # click: the link id
    owner: str | None = None  # attach 200/409, profile 409: the owner the answer names
    attached: bool | None = None  # identify: session_attached
    conflict: bool | None = None  # identify: session_conflict
    hello_session: str | None = None  # click: the session of the Location

    @property
    def ok(self) -> bool:
        """Answered with the kind's success status."""
        return self.status in OK_STATUS[self.kind]

    @property
    def unsent(self) -> bool:
        """The connection was refused (the process was down): the request never reached a server."""
        return self.error == "ConnectError"

    @property
    def unknown(self) -> bool:
        """Sent but not answered, or answered 5xx: the effect may or may not have happened."""
        return not self.unsent and (self.status is None or self.status >= 500)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A link made up front."""

    id: str
    code: str
    profile: str | None


@dataclass(frozen=True, slots=True)
class Fixture:
    """The business and the data made before the load."""

    business_pk: int
    public_id: str
    token: str
    profiles: tuple[str, ...] = ()
    links: tuple[LinkInfo, ...] = ()


# --- Setup --------------------------------------------------------------------------------------------


def fresh_settings(engine: str, folder: Path) -> Settings:
    """Settings for a fresh database: a SQLite file in `folder`, or a new PostgreSQL schema."""
    if engine == "postgres":
        return Settings(database_url=PG_URL, database_schema=f"chaos_{secrets.token_hex(4)}")
    if engine == "sqlite":
        return Settings(database_url=f"sqlite:///{folder / 'chaos.db'}")
    raise ValueError(f"unknown engine {engine!r}")


def drop_database(settings: Settings) -> None:
    """Drop a PostgreSQL schema made by `fresh_settings` (a SQLite file goes with its folder)."""
    if settings.is_postgres and settings.database_schema:
        engine = create_engine(sqlalchemy_url(settings), poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        engine.dispose()


def create_business(settings: Settings) -> Fixture:
    """Migrate the database and create the business and its secret token."""
    db = Database.open(settings)
    try:

        def unit(conn: Any) -> tuple[businesses.Business, str]:
            business = businesses.create_business(conn, "Chaos")
            return business, businesses.create_token(conn, business)

        business, token = db.write_sync(unit)
    finally:
        db.close()
    return Fixture(business_pk=business.pk, public_id=business.public_id, token=token)


def create_data(url: str, fixture: Fixture, options: Options) -> Fixture:
    """Profiles and links through the HTTP API, before any fault."""
    headers = {"Authorization": f"Bearer {fixture.token}"}
    made: list[str] = []
    found: list[LinkInfo] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
        for number in range(options.profiles):
            response = client.post("/v1/profiles", json={"properties": {"chaos": number}})
            response.raise_for_status()
            made.append(response.json()["id"])
        owners: list[str | None] = [*made[: options.links], None]
        for number, owner in enumerate(owners):
            body: dict[str, Any] = {
                "destination": f"https://shop.example.test/p/{number}?ref=sms#top",
                "campaign": "chaos",
                "utm": {"source": "hellotext", "medium": "sms", "campaign": "chaos"},
            }
            if owner is not None:
                body["profile"] = owner
            response = client.post("/v1/links", json=body)
            response.raise_for_status()
            link = response.json()
            found.append(LinkInfo(id=link["id"], code=link["code"], profile=owner))
    return replace(fixture, profiles=tuple(made), links=tuple(found))


# --- Load ---------------------------------------------------------------------------------------------


class Load:
    """Threads sending the request mix to the servers and recording every request and answer."""

    def __init__(self, urls: list[str], fixture: Fixture, options: Options, deadline: float) -> None:
        self.urls = urls
        self.fixture = fixture
        self.options = options
        self.deadline = deadline
        self.run = secrets.token_hex(3)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records: list[Record] = []
        self.up = [True] * len(urls)  # which servers are running (set by the kill loop)
        self.t0 = time.monotonic()
        self.public = {"Authorization": f"Bearer {fixture.public_id}"}
        self.private = {"Authorization": f"Bearer {fixture.token}"}
        self.threads = [
            threading.Thread(target=self._worker, args=(n,), name=f"chaos-{n}", daemon=True)
            for n in range(options.threads)
        ]

    def start(self) -> None:
        """Start the threads."""
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        """Stop the threads and wait for them (each request is bounded by the client timeout)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.options.request_timeout * (self.options.retries + 2))
            if thread.is_alive():
                raise RuntimeError(f"load thread {thread.name} did not stop")

    def _generation(self) -> int:
        return int((time.monotonic() - self.t0) / self.options.hot_period)

    def hot_session(self, rng: random.Random) -> str:
        """A session of the current hot set: every thread picks from the same few at the same time."""
        return f"hot-{self.run}-{self._generation()}-{rng.randrange(self.options.hot_width)}"

    def user_id(self, rng: random.Random) -> str:
        """An identity: half from the current hot set (first-use races), half from a fixed pool."""
        if rng.random() < 0.5:
            return f"uh-{self.run}-{self._generation()}-{rng.randrange(self.options.hot_width)}"
        return f"u-{self.run}-{rng.randrange(20)}"

    def _send(
        self, client: httpx.Client, rng: random.Random, record: Record, method: str, path: str, **kw: Any
    ) -> httpx.Response | None:
        """Send to a live server (any, when all are down), record the request, return the answer."""
        live = [n for n, up in enumerate(self.up) if up] or list(range(len(self.urls)))
        record.server = rng.choice(live)
        with self.lock:
            self.records.append(record)  # filled in below; read only after the threads have stopped
        try:
            response = client.request(method, self.urls[record.server] + path, **kw)
        except httpx.HTTPError as exc:
            record.error = type(exc).__name__
            time.sleep(rng.uniform(0.005, 0.03))  # a process being killed: do not spin on its port
            return None
        record.status = response.status_code
        return response

    def _worker(self, number: int) -> None:
        rng = random.Random(f"{self.options.seed}-{number}")
        ops: dict[str, Callable[[httpx.Client, random.Random, str], None]] = {
            "track": self._track,
            "identify": self._identify,
            "attach": self._attach,
            "profile": self._profile,
            "click": self._click,
        }
        with httpx.Client(timeout=self.options.request_timeout, follow_redirects=False) as client:
            sent = 0
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                sent += 1
                ops[rng.choices(KINDS, WEIGHTS)[0]](client, rng, f"{self.run}-{number}-{sent}")

    def _track(self, client: httpx.Client, rng: random.Random, key: str) -> None:
        body: dict[str, Any] = {"id": key, "action": "page.viewed", "url": f"https://shop.example.test/{key}"}
        draw = rng.random()
        session = self.hot_session(rng) if draw < 0.4 else str(uuid.uuid4()) if draw < 0.8 else None
        if session is not None:
            body["session"] = session
        user_id = None
        if rng.random() < 0.3:
            user_id = self.user_id(rng)
            body["user_parameters"] = {"id": user_id, "source": SOURCE}
        # Without an answer, a real client sends the same event again: the client id makes that safe. Now
        # and then it does so after a 200 too (the answer lost on its way back).
        attempts = 1 + self.options.retries
        for attempt in range(attempts):
            record = Record("track", client_id=key, session=session, user_id=user_id)
            response = self._send(
                client, rng, record, "POST", "/v1/track/events", json=body, headers=self.public
            )
            answered = response is not None and response.status_code < 500
            if self.stop.is_set() or (answered and (attempt == attempts - 1 or rng.random() >= 0.05)):
                return

    def _identify(self, client: httpx.Client, rng: random.Random, key: str) -> None:
        session = self.hot_session(rng) if rng.random() < 0.75 else str(uuid.uuid4())
        user_id = self.user_id(rng)
        body = {"session": session, "user_id": user_id, "source": SOURCE, "name": f"Chaos {key}"}
        record = Record("identify", session=session, user_id=user_id)
        response = self._send(
            client, rng, record, "POST", "/v1/public/identifications", json=body, headers=self.public
        )
        if response is not None and response.status_code == 200:
            record.attached = response.json().get("session_attached")
            record.conflict = response.json().get("session_conflict")

    def _attach(self, client: httpx.Client, rng: random.Random, key: str) -> None:
        session = self.hot_session(rng)
        record = Record("attach", session=session, profile=rng.choice(self.fixture.profiles))
        body = {"profile": record.profile}
        response = self._send(
            client, rng, record, "PATCH", f"/v1/sessions/{session}", json=body, headers=self.private
        )
        if response is not None and response.status_code == 200:
            record.owner = response.json().get("profile")
        elif response is not None and response.status_code == 409:
            record.owner = (response.json().get("session") or {}).get("profile")

    def _profile(self, client: httpx.Client, rng: random.Random, key: str) -> None:
        session = self.hot_session(rng)
        record = Record("profile", session=session)
        body = {"session": session, "properties": {"chaos": key}}
        response = self._send(client, rng, record, "POST", "/v1/profiles", json=body, headers=self.private)
        if response is not None and response.status_code in (200, 201):
            record.profile = response.json().get("id")
        elif response is not None and response.status_code == 409:
            record.owner = (response.json().get("session") or {}).get("profile")

    def _click(self, client: httpx.Client, rng: random.Random, key: str) -> None:
        link = rng.choice(self.fixture.links)
        record = Record("click", link=link.id)
        response = self._send(client, rng, record, "GET", f"/l/{link.code}", headers={"User-Agent": BROWSER})
        if response is not None:
            query = urlsplit(response.headers.get("location", "")).query
            record.hello_session = dict(parse_qsl(query)).get("hello_session")


# --- Audit --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Requests of one kind and what the audit found about them."""

    requests: int = 0
    ok: int = 0
    refused: int = 0
    server_errors: int = 0
    unsent: int = 0
    unknown: int = 0
    lost: int = 0
    duplicated: int = 0
    mismatched: int = 0


@dataclass(slots=True)
class Findings:
    """The audit's counts and a sample of what went wrong."""

    tallies: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in KINDS})
    double_owned: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, kind: str, what: str, message: str) -> None:
        """Count a failure of `kind` (``lost``, ``duplicated`` or ``mismatched``) and keep its story."""
        tally = self.tallies[kind]
        setattr(tally, what, getattr(tally, what) + 1)
        self.problems.append(f"{kind} {what}: {message}")

    @property
    def failures(self) -> int:
        """Everything that must be zero."""
        bad = sum(t.lost + t.duplicated + t.mismatched for t in self.tallies.values())
        return bad + self.double_owned


@dataclass(slots=True)
class State:
    """The business's rows, read with a fresh connection."""

    events: list[Any]
    owners: dict[str, tuple[str | None, str | None]]
    identities: dict[tuple[str, str], str]
    links: dict[str, tuple[str | None, int]]


def read_state(settings: Settings, business_pk: int) -> State:
    """Read what the audit needs, on a new engine (nothing cached from the servers or the load)."""
    engines = make_engines(settings)
    try:
        with engines.read.connect() as conn:
            mine = events.c.business_id == business_pk
            columns = ("client_id", "session_id", "profile_id", "action", "via", "metadata")
            event_rows = conn.execute(select(*(events.c[n] for n in columns)).where(mine)).all()
            query = select(sessions.c.id, sessions.c.profile_id, sessions.c.attached_via)
            owners = {
                row.id: (row.profile_id, row.attached_via)
                for row in conn.execute(query.where(sessions.c.business_id == business_pk))
            }
            query = select(identities).where(identities.c.business_id == business_pk)
            found = {(row.source, row.user_id): row.profile_id for row in conn.execute(query)}
            query = select(links).where(links.c.business_id == business_pk)
            link_rows = {row.id: (row.profile_id, int(row.clicks)) for row in conn.execute(query)}
    finally:
        engines.dispose()
    return State(events=list(event_rows), owners=owners, identities=found, links=link_rows)


def audit(settings: Settings, fixture: Fixture, records: list[Record]) -> Findings:
    """Check that every request answered 2xx (302 for clicks) left exactly its effect, and no more.

    - track: a client id answered 200 is stored exactly once, on the session sent, attributed to the
      identity's profile when ``user_parameters`` were sent and to none otherwise; no client id is stored
      twice, answered or not; no client id is stored that was never sent.
    - attach, profile, identify: every owner an answer names (attach 200 and 409, profile 201 and 409,
      identification ``session_attached``) is the session's owner in the database; a session with two
      owners named, or named one and holding another, is double-owned. An identification answered with
      ``session_conflict`` points at a session owned by another profile than the identity's.
    - click: the ``hello_session`` of a 302 exists, is attached to the link's profile (via ``link``) or to
      none, and carries exactly one event, a ``short_link.clicked`` of that link; a link's click count is
      at least its 302s and at most its 302s plus its unknown outcomes, and equals its click events.
    """
    state = read_state(settings, fixture.business_pk)
    found = Findings()
    for record in records:
        tally = found.tallies[record.kind]
        tally.requests += 1
        if record.ok:
            tally.ok += 1
        elif record.unsent:
            tally.unsent += 1
        elif record.status is None:
            tally.unknown += 1
        elif record.status >= 500:
            # Unknown outcome for the audit of effects, but a fault all the same: nothing here is invalid.
            tally.server_errors += 1
            found.note(record.kind, "mismatched", f"answered {record.status} ({record})")
        else:
            tally.refused += 1
            if record.status not in REFUSALS.get(record.kind, set()):
                found.note(record.kind, "mismatched", f"unexpected {record.status} ({record})")
    _audit_tracks(found, state, records)
    claims = _audit_owner_answers(found, state, records)
    _audit_owners(found, state, claims)
    _audit_clicks(found, state, fixture, records)
    return found


def _audit_tracks(found: Findings, state: State, records: list[Record]) -> None:
    stored: dict[str, list[Any]] = defaultdict(list)
    for row in state.events:
        if row.client_id is not None:
            stored[row.client_id].append(row)
    attempts: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.kind == "track" and record.client_id is not None:
            attempts[record.client_id].append(record)
    for key, tries in attempts.items():
        rows = stored.get(key, [])
        answered = any(t.ok for t in tries)
        if len(rows) > 1:
            found.note("track", "duplicated", f"client id {key} stored {len(rows)} times")
        if answered and not rows:
            found.note("track", "lost", f"client id {key} answered 200, not stored")
        if answered and len(rows) == 1:
            row, sent = rows[0], tries[0]
            expected = None if sent.user_id is None else state.identities.get((SOURCE, sent.user_id))
            if row.session_id != sent.session or row.profile_id != expected:
                found.note(
                    "track",
                    "mismatched",
                    f"{key}: stored session {row.session_id} profile {row.profile_id}, "
                    f"sent session {sent.session}, identity profile {expected}",
                )
    for key in stored.keys() - attempts.keys():
        found.note("track", "mismatched", f"client id {key} stored but never sent")


def _audit_owner_answers(
    found: Findings, state: State, records: list[Record]
) -> dict[str, list[tuple[str, str]]]:
    """Every owner an answer named, per session, as (kind, profile); checks answers against themselves."""
    claims: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record in records:
        session = record.session
        if session is None or record.status is None:
            continue
        if record.kind == "attach" and record.status in (200, 409):
            if record.owner is None or (record.status == 200) != (record.owner == record.profile):
                found.note("attach", "mismatched", f"answer {record.status} named owner {record.owner}")
            if record.owner is not None:
                claims[session].append(("attach", record.owner))
        elif record.kind == "profile" and record.status in (200, 201, 409):
            owner = record.profile if record.status != 409 else record.owner
            if owner is None:
                found.note("profile", "mismatched", f"answer {record.status} named no owner for {session}")
            else:
                claims[session].append(("profile", owner))
        elif record.kind == "identify" and record.status == 200:
            identity = state.identities.get((SOURCE, record.user_id or ""))
            if identity is None:
                found.note("identify", "lost", f"identity {record.user_id} answered 200, not stored")
                continue
            if record.attached == record.conflict:
                found.note("identify", "mismatched", f"attached={record.attached} conflict={record.conflict}")
            if record.attached:
                claims[session].append(("identify", identity))
            elif record.conflict:
                owner = state.owners.get(session, (None, None))[0]
                if owner is None or owner == identity:
                    found.note("identify", "mismatched", f"conflict on {session}: {owner} vs {identity}")
    return claims


def _audit_owners(found: Findings, state: State, claims: dict[str, list[tuple[str, str]]]) -> None:
    for session, named in claims.items():
        owner = state.owners.get(session, (None, None))[0]
        if owner is None:
            for kind, profile in named:
                found.note(kind, "lost", f"session {session}: answer named {profile}, database has no owner")
            continue
        wrong = [(kind, profile) for kind, profile in named if profile != owner]
        for kind, profile in wrong:
            found.note(kind, "mismatched", f"session {session}: answer named {profile}, database has {owner}")
        if wrong:
            found.double_owned += 1
            found.problems.append(f"double-owned: {session}: {sorted({p for _, p in named})} vs {owner}")


def _audit_clicks(found: Findings, state: State, fixture: Fixture, records: list[Record]) -> None:
    by_session: dict[str, list[Any]] = defaultdict(list)
    click_events: Counter[str] = Counter()
    for row in state.events:
        if row.session_id is not None:
            by_session[row.session_id].append(row)
        if row.action == CLICK_ACTION:
            click_events[str((codec.loads(row.metadata) or {}).get("link"))] += 1
    profiles = {link.id: link.profile for link in fixture.links}
    answered: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    seen: set[str] = set()
    for record in records:
        if record.kind != "click" or record.link is None:
            continue
        if record.unknown:
            unknown[record.link] += 1
        if not record.ok:
            continue
        answered[record.link] += 1
        session = record.hello_session
        if session is None:
            found.note("click", "mismatched", f"302 for link {record.link} without hello_session")
            continue
        if session in seen:
            found.note("click", "duplicated", f"two 302 answers named session {session}")
        seen.add(session)
        if session not in state.owners:
            found.note("click", "lost", f"session {session} answered 302, not stored")
            continue
        rows = by_session.get(session, [])
        clicks = [r for r in rows if r.action == CLICK_ACTION]
        if not clicks:
            found.note("click", "lost", f"session {session}: no {CLICK_ACTION} event")
        elif len(clicks) > 1:
            found.note("click", "duplicated", f"session {session}: {len(clicks)} click events")
        owner, via = state.owners[session]
        expected = profiles.get(record.link)
        link_of = [str((codec.loads(r.metadata) or {}).get("link")) for r in clicks]
        if (
            len(rows) != len(clicks)
            or owner != expected
            or (expected is not None and via != "link")
            or any(link != record.link for link in link_of)
            or any(r.via != "link" for r in clicks)
        ):
            story = f"owner {owner} via {via} (link's {expected}), {len(rows)} events, links {link_of}"
            found.note("click", "mismatched", f"session {session}: {story}")
    for link_id, (_, count) in state.links.items():
        acked, maybe = answered[link_id], unknown[link_id]
        if count < acked:
            found.tallies["click"].lost += acked - count
            found.problems.append(f"click lost: link {link_id} counts {count} clicks, {acked} answered 302")
        if count > acked + maybe:
            found.note("click", "duplicated", f"link {link_id} counts {count} clicks, {acked} + {maybe} sent")
        if count != click_events[link_id]:
            found.note(
                "click", "mismatched", f"link {link_id}: {count} clicks, {click_events[link_id]} events"
            )


# --- The run ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    """One engine's run: what was done, and what the audit found."""

    engine: str
    cycles: int
    seconds: float
    findings: Findings
    restarts: list[float]
    log_errors: list[str]
    fixture: Fixture
    records: list[Record]

    @property
    def failed(self) -> bool:
        """Whether the audit found anything lost, duplicated, double-owned or mismatched."""
        return self.findings.failures > 0

    def total(self, name: str) -> int:
        """A column summed over every kind."""
        return sum(getattr(t, name) for t in self.findings.tallies.values())

    def table(self) -> str:
        """The summary table: one row per kind and a total row."""
        names = COLUMNS
        head = f"{'engine':<9}{'cycles':>7}  {'kind':<9}" + "".join(f"{n:>{len(n) + 2}}" for n in names)
        lines = [head, "-" * len(head)]
        total = Tally(**{f.name: self.total(f.name) for f in fields(Tally)})
        for kind, t in [*((k, self.findings.tallies[k]) for k in KINDS), ("all", total)]:
            owned = str(self.findings.double_owned) if kind == "all" else ""
            values = (t.requests, t.ok, t.refused, t.server_errors, t.unsent, t.unknown, t.lost, t.duplicated)
            cells = [*values, owned, t.mismatched]
            line = f"{self.engine:<9}{self.cycles:>7}  {kind:<9}"
            lines.append(line + "".join(f"{v!s:>{len(n) + 2}}" for n, v in zip(names, cells, strict=True)))
        return "\n".join(lines)


def _log_errors(paths: list[Path]) -> list[str]:
    """Tracebacks and error lines in the servers' logs (a kill itself leaves none)."""
    lines: list[str] = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text(errors="replace").splitlines():
                if "Traceback" in line or " ERROR" in line or line.startswith("ERROR"):
                    lines.append(f"{path.name}: {line.strip()}")
    return lines


@contextlib.contextmanager
def _servers(settings: Settings, options: Options, folder: Path) -> Iterator[list[ServerProcess]]:
    made = [
        ServerProcess(settings, workers=options.workers, log_path=folder / f"server-{n}.log")
        for n in range(options.processes)
    ]
    try:
        # Started side by side: the database is already migrated, so they do not race on the schema.
        with ThreadPoolExecutor(len(made)) as pool:
            list(pool.map(ServerProcess.start, made))
        yield made
    finally:
        for server in made:
            server.stop()


def run_chaos(
    settings: Settings,
    options: Options,
    folder: Path,
    *,
    engine: str | None = None,
    record_path: Path | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Report:
    """Run the whole scenario on the (fresh, empty) database of `settings` and audit it.

    Args:
        settings: the database; migrated here.
        options: load, kills, timings.
        folder: where the servers' logs go.
        engine: the name shown in the table (default: from `settings`).
        record_path: write every request and answer there as JSON lines.
        say: progress lines.
    """
    rng = random.Random(options.seed)
    fixture = create_business(settings)
    started_at = time.monotonic()
    restarts: list[float] = []
    with _servers(settings, options, folder) as servers:
        fixture = create_data(servers[0].url, fixture, options)
        # Bounded whatever happens: each cycle is at most its interval, the down time and one restart.
        budget = options.cycles * (options.interval[1] + options.down + 35.0) + options.tail + 10.0
        load = Load([s.url for s in servers], fixture, options, time.monotonic() + budget)
        load.start()
        try:
            for cycle in range(options.cycles):
                time.sleep(rng.uniform(*options.interval))
                victim = rng.randrange(len(servers))
                servers[victim].kill()
                load.up[victim] = False  # after the kill, so that requests are in flight when it lands
                time.sleep(rng.uniform(0.0, options.down))
                began = time.monotonic()
                servers[victim].start()
                load.up[victim] = True
                restarts.append(time.monotonic() - began)
                say(f"cycle {cycle + 1}: killed and restarted server {victim}; {len(load.records)} requests")
            time.sleep(options.tail)
        finally:
            load.finish()
    seconds = time.monotonic() - started_at
    records = list(load.records)
    if record_path is not None:
        with record_path.open("w") as out:
            for record in records:
                out.write(json.dumps(asdict(record)) + "\n")
    findings = audit(settings, fixture, records)
    name = engine or ("postgres" if settings.is_postgres else "sqlite")
    logs = _log_errors([folder / f"server-{n}.log" for n in range(options.processes)])
    return Report(name, len(restarts), seconds, findings, restarts, logs, fixture, records)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when an audit failed)."""
    parser = argparse.ArgumentParser(prog="bench.chaos", description="kill servers under load, then audit")
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--short", action="store_true", help="fewer threads, shorter intervals")
    for name in ("cycles", "threads", "processes", "workers", "seed"):
        parser.add_argument(f"--{name}", type=int, help=f"default: {getattr(Options(), name)} (see Options)")
    parser.add_argument("--record", type=Path, help="write every request and answer here (JSON lines)")
    args = parser.parse_args(argv)
    changes: dict[str, Any] = {"seed": secrets.randbelow(10**6)}
    changes.update({n: getattr(args, n) for n in ("cycles", "threads", "processes", "workers", "seed")})
    changes = {name: value for name, value in changes.items() if value is not None}
    options = Options.short(**changes) if args.short else replace(Options(), **changes)
    reports: list[Report] = []
    for engine in ["sqlite", "postgres"] if args.engine == "both" else [args.engine]:
        with tempfile.TemporaryDirectory(prefix="hellotext-chaos-") as tmp:
            settings = fresh_settings(engine, Path(tmp))
            print(f"{engine}: {options}", flush=True)
            record = None if args.record is None else args.record.with_suffix(f".{engine}.jsonl")
            try:
                report = run_chaos(
                    settings,
                    options,
                    Path(tmp),
                    engine=engine,
                    record_path=record,
                    say=functools.partial(print, flush=True),
                )
            finally:
                drop_database(settings)
        reports.append(report)
        restarts = ", ".join(f"{seconds:.1f}" for seconds in report.restarts)
        print(f"{engine}: {report.seconds:.1f} s in all; restarts took {restarts} s")
        print(f"{engine}: {len(report.log_errors)} error lines in the server logs")
        for line in report.log_errors[:10] + report.findings.problems[:20]:
            print("  ", line)
    print()
    print("\n".join(r.table() if i == 0 else r.table().split("\n", 2)[2] for i, r in enumerate(reports)))
    failed = [r.engine for r in reports if r.failed]
    print("\nAUDIT FAILED on " + ", ".join(failed) if failed else "\naudit passed on every engine")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
