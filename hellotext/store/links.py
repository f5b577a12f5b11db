"""Short links in storage: creation (one or a batch), lookups, listing, and the click (spec §9.5, §10).

A link keeps the profile id it was made for. Erasing the profile sets it to NULL (`store.erasure`); reads
and clicks check all the same that the profile still exists, so a link that names a profile erased in
any other way (or erased while the redirect holds the link in its cache) shows ``profile: null`` and its
clicks give anonymous sessions (§6.6).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from hellotext.core.ids import new_code, new_id
from hellotext.core.links import CODE_LENGTH, LinkSpec, click_utm
from hellotext.core.pages import Page, PageRequest
from hellotext.errors import NotFound, Problem
from hellotext.store import codec
from hellotext.store.events import EVENT_KEYS, DriverStatement
from hellotext.store.pages import page_by_seq
from hellotext.store.schema import events, links, profiles, sessions
from hellotext.store.sessions import attach_session, see_session

if TYPE_CHECKING:
    from hellotext.store.database import Database

CLICK_ACTION = "short_link.clicked"
# Rows per IN (...) lookup: well under every engine's limit on bound parameters.
_CHUNK = 500
_NOT_FOUND_MAX = 100


@dataclass(frozen=True, slots=True)
class Link:
    """A stored link; `profile` is ``None`` when it has none or its profile was erased."""

    business_id: int
    id: str
    code: str
    destination: str
    profile: str | None
    campaign: str | None
    utm: dict[str, Any] | None
    clicks: int
    created_at: float

    def as_json(self, base_url: str) -> dict[str, Any]:
        """The API's link object (§9.5); `base_url` is the public origin links are served from."""
        return {
            "id": self.id,
            "type": "link",
            "code": self.code,
            "url": f"{base_url}/l/{self.code}",
            "destination": self.destination,
            "profile": self.profile,
            "campaign": self.campaign,
            "utm": self.utm,
            "clicks": self.clicks,
            "created_at": int(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class ClickOutcome:
    """What a recorded click did: the session minted and the profile it was attached to, if any."""

    session: str
    profile: str | None


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def existing_profiles(conn: Connection, business_id: int, profile_ids: Iterable[str]) -> set[str]:
    """Which of `profile_ids` are profiles of the business (one query per 500 ids)."""
    wanted = sorted(set(profile_ids))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(
            conn.execute(
                select(profiles.c.id).where(profiles.c.business_id == business_id, profiles.c.id.in_(chunk))
            ).scalars()
        )
    return found


def _row_to_link(row: Any, live_profiles: set[str] | None = None) -> Link:
    profile = row.profile_id
    if profile is not None and live_profiles is not None and profile not in live_profiles:
        profile = None
    return Link(
        business_id=row.business_id,
        id=row.id,
        code=row.code,
        destination=row.destination,
        profile=profile,
        campaign=row.campaign,
        utm=codec.loads(row.utm),
        clicks=int(row.clicks),
        created_at=row.created_at,
    )


def _rows_to_links(conn: Connection, business_id: int, rows: Sequence[Any]) -> list[Link]:
    live = existing_profiles(conn, business_id, (r.profile_id for r in rows if r.profile_id is not None))
    return [_row_to_link(row, live) for row in rows]


def fresh_codes(count: int) -> list[str]:
    """`count` distinct new codes (8 base62 characters from the CSPRNG).

    They are not checked against stored links: with 62**8 (2 * 10**14) codes a clash is rare enough
    that the unique index on `code` is the check. A clash fails the insert, and the creation is run
    again with new codes (see `create_links`). Looking the codes up first would cost more than it
    saves: 10,000 codes in IN lists on a table PostgreSQL has not analysed yet take seconds.
    """
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_code(CODE_LENGTH))
    return list(codes)


def clash_errors(db: Database) -> tuple[type[Exception], ...]:
    """What a code clash raises from `create_links`: SQLAlchemy's IntegrityError, or the driver's own
    (the PostgreSQL path loads rows with COPY on the driver's cursor)."""
    driver: type[Exception] = getattr(db.engines.write.dialect.dbapi, "IntegrityError", IntegrityError)
    return (IntegrityError, driver)


_LINK_COLUMNS = (
    "business_id",
    "id",
    "code",
    "destination",
    "profile_id",
    "campaign",
    "utm",
    "clicks",
    "created_at",
)
_COPY_LINKS = f"COPY links ({', '.join(_LINK_COLUMNS)}) FROM STDIN"


def create_links(
    conn: Connection, business_id: int, specs: Sequence[LinkSpec], now: float, *, batch: bool = False
) -> list[Link]:
    """Create links, all or nothing (§9.5.1, §9.5.2), in request order.

    Profiles are checked with one query for the whole batch; rows go in with one executemany (SQLite)
    or one COPY (PostgreSQL). A code that exists already (see `fresh_codes`) makes the insert fail
    with an integrity error (SQLAlchemy's or the driver's): nothing of the unit stays, and the caller
    runs it again, which draws new codes.

    Args:
        batch: report unknown profiles as ``links[i].profile`` instead of ``profile``.

    Raises:
        NotFound: a spec names a profile that is not in the business (up to 100 entries).
    """
    wanted = {s.profile for s in specs if s.profile is not None}
    if wanted:
        missing = wanted - existing_profiles(conn, business_id, wanted)
        if missing:
            problems = [
                Problem(
                    "not_found",
                    f"links[{index}].profile" if batch else "profile",
                    f"no profile with id {spec.profile}",
                )
                for index, spec in enumerate(specs)
                if spec.profile in missing
            ]
            raise NotFound(problems[:_NOT_FOUND_MAX])
    codes = fresh_codes(len(specs))
    created = [
        Link(
            business_id=business_id,
            id=new_id(),
            code=code,
            destination=spec.destination,
            profile=spec.profile,
            campaign=spec.campaign,
            utm=spec.utm,
            clicks=0,
            created_at=now,
        )
        for spec, code in zip(specs, codes, strict=True)
    ]
    rows = [
        (
            business_id,
            link.id,
            link.code,
            link.destination,
            link.profile,
            link.campaign,
            codec.dumps_or_none(link.utm),
            0,
            now,
        )
        for link in created
    ]
    if conn.dialect.name == "postgresql":
        # COPY loads a 10,000-link batch several times faster than an executemany of INSERTs.
        cursor = conn.connection.cursor()
        try:
            with cursor.copy(_COPY_LINKS) as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
    else:
        conn.execute(insert(links), [dict(zip(_LINK_COLUMNS, row, strict=True)) for row in rows])
    return created


def get_link(conn: Connection, business_id: int, link_id: str) -> Link | None:
    """The link with this id in the business, or ``None``."""
    row = conn.execute(select(links).where(links.c.business_id == business_id, links.c.id == link_id)).first()
    return None if row is None else _rows_to_links(conn, business_id, [row])[0]


def link_by_code(conn: Connection, code: str) -> Link | None:
    """The link with this code, whatever its business (codes are unique server-wide), or ``None``.

    `profile` here is the stored id, unchecked: the click checks it inside its own transaction.
    """
    row = conn.execute(select(links).where(links.c.code == code)).first()
    return None if row is None else _row_to_link(row)


def list_links(
    conn: Connection,
    business_id: int,
    page: PageRequest,
    *,
    campaign: str | None = None,
    profile: str | None = None,
) -> Page[Link]:
    """A page of the business's links, newest first, optionally filtered (§9.5.3).

    Raises:
        NotFound: the `profile` filter or the cursor is unknown in the business.
    """
    filters = []
    if profile is not None:
        if not existing_profiles(conn, business_id, [profile]):
            raise NotFound(Problem("not_found", "profile", f"no profile with id {profile}"))
        filters.append(links.c.profile_id == profile)
    if campaign is not None:
        filters.append(links.c.campaign == campaign)
    rows = page_by_seq(conn, links, business_id, page, *filters)
    return Page(items=_rows_to_links(conn, business_id, rows.items), has_more=rows.has_more)


def _click_event_row(link: Link, session: str, now: float, utm: dict[str, Any] | None) -> dict[str, Any]:
    # Attribution (§6.4): no explicit profile and no identity, so the event goes by its session. As for
    # every event attributed that way (see `hellotext.store.events`), the stored `profile_id` stays NULL
    # and the effective profile is the session's owner: the link's profile when it has one.
    return {
        "business_id": link.business_id,
        "id": new_id(),
        "action": CLICK_ACTION,
        "profile_id": None,
        "session_id": session,
        "tracked_at": now,
        "received_at": now,
        "amount": None,
        "currency": None,
        "url": link.destination,
        "page": None,
        "utm": codec.dumps_or_none(utm),
        "metadata": codec.dumps({"link": link.id, "campaign": link.campaign}),
        "object_id": None,
        "client_id": None,
        "via": "link",
        # A click has no request body; the raw payload says what the server recorded.
        "raw": codec.dumps({"action": CLICK_ACTION, "link": link.id}),
    }


_COUNT_CLICKS = (
    update(links)
    .where(links.c.business_id == bindparam("b_business_id"), links.c.id == bindparam("b_link_id"))
    .values(clicks=links.c.clicks + bindparam("b_clicks"))
)


def record_click(conn: Connection, link: Link, session: str, now: float) -> ClickOutcome:
    """A human click, as one unit of work (§10): new session, attach, count, event.

    The general path, through the shared session functions (race-safe creation, conditional attach).
    `record_clicks` is the fast path for many clicks at once.

    Args:
        link: the clicked link (as found by `link_by_code`).
        session: a freshly minted session id.
        now: the click time.
    """
    business_id = link.business_id
    profile = link.profile
    if profile is not None and not existing_profiles(conn, business_id, [profile]):
        profile = None  # erased since the link was made: the click stays anonymous
    utm = click_utm(link.utm, now)
    see_session(conn, business_id, session, now, utm)
    owner = None
    if profile is not None:
        owner = attach_session(conn, business_id, session, profile, "link", now)
    conn.execute(_COUNT_CLICKS, {"b_business_id": business_id, "b_link_id": link.id, "b_clicks": 1})
    conn.execute(insert(events), _click_event_row(link, session, now, utm))
    return ClickOutcome(session=session, profile=owner)


@dataclass(frozen=True, slots=True)
class Click:
    """One human click waiting to be recorded: the link, the session minted for it, the time."""

    link: Link
    session: str
    at: float


_SESSION_KEYS = (
    "business_id",
    "id",
    "profile_id",
    "created_at",
    "last_seen_at",
    "attached_at",
    "attached_via",
    "utm",
)
# The click hot path runs on the driver's cursor (see `DriverStatement`): SQLAlchemy's per-row parameter
# processing costs more than SQLite spends inserting the rows.
_INSERT_SESSIONS = DriverStatement(lambda d: d.insert(sessions).inline(), _SESSION_KEYS)
_INSERT_EVENTS = DriverStatement(lambda d: d.insert(events).inline(), EVENT_KEYS)
_ADD_CLICKS = DriverStatement(lambda d: _COUNT_CLICKS)


def record_clicks(conn: Connection, clicks: Sequence[Click]) -> list[ClickOutcome]:
    """Record many human clicks in one unit of work, with one statement per table (§10).

    Same effects as `record_click` for each click, but the sessions are inserted already attached:
    each id was just minted from the CSPRNG (UUID v4) and nobody else can know it, so creation and
    attachment cannot race with anything. Should an id exist all the same, the insert fails with an
    integrity error, nothing of the unit stays, and the caller falls back to `record_click` with
    fresh ids.

    Returns:
        One outcome per click, in order.
    """
    wanted: dict[int, set[str]] = {}
    for click in clicks:
        if click.link.profile is not None:
            wanted.setdefault(click.link.business_id, set()).add(click.link.profile)
    live = {(b, p) for b, ids in wanted.items() for p in existing_profiles(conn, b, ids)}
    session_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    counts: dict[tuple[int, str], int] = {}
    outcomes: list[ClickOutcome] = []
    for click in clicks:
        link = click.link
        profile = link.profile if (link.business_id, link.profile) in live else None
        utm = click_utm(link.utm, click.at)
        session_rows.append(
            {
                "business_id": link.business_id,
                "id": click.session,
                "profile_id": profile,
                "created_at": click.at,
                "last_seen_at": click.at,
                "attached_at": None if profile is None else click.at,
                "attached_via": None if profile is None else "link",
                "utm": codec.dumps_or_none(utm),
            }
        )
        event_rows.append(_click_event_row(link, click.session, click.at, utm))
        key = (link.business_id, link.id)
        counts[key] = counts.get(key, 0) + 1
        outcomes.append(ClickOutcome(session=click.session, profile=profile))
    dialect = conn.dialect.name
    cursor = conn.connection.cursor()
    try:
        _INSERT_SESSIONS.executemany(cursor, dialect, session_rows)
        _ADD_CLICKS.executemany(
            cursor,
            dialect,
            [{"b_business_id": b, "b_link_id": link_id, "b_clicks": n} for (b, link_id), n in counts.items()],
        )
        _INSERT_EVENTS.executemany(cursor, dialect, event_rows)
    finally:
        cursor.close()
    return outcomes
