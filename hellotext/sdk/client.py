"""`Client` and `AsyncClient`: the private API (spec http-api §9), for a business's own servers.

Each resource is named after its endpoints::

    client = Client("htsk_...", api_root="https://track.example.com/v1")
    profile = client.profiles.create(email="john@example.com")
    client.sessions.attach(session_id, profile=profile["id"])        # I2
    for event in client.profiles.events(profile["id"]):              # the timeline, newest first
        ...

Private calls raise, because the caller must act on them: `IdentityConflict` (the session belongs to
another profile; ``exc.owner`` and ``exc.session`` name it), `NotFound`, `ValidationFailed` (``exc.errors``
lists the server's entries), `Unauthorized`, `RateLimited` (``exc.retry_after``), `ServerUnavailable` (5xx
or no answer) and `APIError` for anything else. The client does not retry on its own.

List methods return lazy iterators that follow the pages (``starting_after``) until ``has_more`` is false;
an error (an unknown ``profile`` filter ...) is raised when iteration starts.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Self, cast
from urllib.parse import quote

import httpx

from hellotext.errors import ServerUnavailable
from hellotext.sdk.models import Action, Event, Link, Profile, Session
from hellotext.sdk.wire import api_headers, dumps, error_from_answer, normalize_api_root

__all__ = ["AsyncClient", "Client"]

_PAGE_MAX = 100


def _segment(value: str) -> str:
    """A path parameter, percent-encoded whole (session ids may hold ``/``, ``?``, ``%`` ...)."""
    if not isinstance(value, str) or not value:
        raise ValueError("ids must be non-empty strings")
    return quote(value, safe="")


def _fields(**values: Any) -> dict[str, Any]:
    """The keyword arguments that were given (``None`` means "not given")."""
    return {key: value for key, value in values.items() if value is not None}


def _new_event_id() -> str:
    return uuid.uuid4().hex


def _answer(response: httpx.Response) -> Any:
    if 200 <= response.status_code < 300:
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from_answer(response.status_code, response.headers, body)


def _network_error(exc: httpx.HTTPError) -> ServerUnavailable:
    return ServerUnavailable(0, [{"type": "network", "description": str(exc) or repr(exc)}])


def _page_params(params: Mapping[str, Any], page_size: int) -> dict[str, Any]:
    if not 1 <= page_size <= _PAGE_MAX:
        raise ValueError(f"page_size must be 1-{_PAGE_MAX}")
    query = {key: value for key, value in params.items() if value is not None}
    query["limit"] = page_size
    return query


def _track_body(action: str, profile: str | None, session: str | None, id: str | None, fields: Any) -> Any:
    body: dict[str, Any] = dict(fields)
    body["action"] = action
    if profile is not None:
        body["profile"] = profile
    if session is not None:
        body["session"] = session
    body["id"] = id or _new_event_id()
    return body


class Client:
    """The private API over HTTP, with a secret token.

    Args:
        token: a secret token of the business (``htsk_...``).
        api_root: the API root, such as ``https://track.example.com/v1``.
        timeout: seconds per request (or an ``httpx.Timeout``).
        transport: an httpx transport (tests, proxies).

    Attributes:
        sessions: attach, get and list sessions.
        profiles: create, get, list, update, erase profiles; their timelines and sessions.
        events: server-side tracking (``POST /attribution/events``).
        links: short links.
        actions: custom actions.
    """

    def __init__(
        self,
        token: str,
        *,
        api_root: str,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_root = normalize_api_root(api_root)
        self._http = httpx.Client(headers=api_headers(token), timeout=timeout, transport=transport)
        self.sessions = Sessions(self)
        self.profiles = Profiles(self)
        self.events = Events(self)
        self.links = Links(self)
        self.actions = Actions(self)

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """Call an endpoint and return its decoded JSON (``None`` for ``204``).

        Args:
            method: the HTTP method.
            path: the path below the API root (``/profiles``).
            params: query parameters.
            json: the body, encoded as JSON when not ``None``.

        Raises:
            HellotextError: the typed error for a failed answer (see the module docstring).
        """
        content = None if json is None else dumps(json)
        try:
            response = self._http.request(method, self.api_root + path, params=params, content=content)
        except httpx.HTTPError as exc:
            raise _network_error(exc) from exc
        return _answer(response)

    def paginate(self, path: str, params: Mapping[str, Any], page_size: int = _PAGE_MAX) -> Iterator[Any]:
        """Every item of a list endpoint, newest first, fetching pages as iteration needs them."""
        query = _page_params(params, page_size)
        while True:
            body = self.request("GET", path, params=query)
            data = body.get("data") or []
            yield from data
            if not body.get("has_more") or not data:
                return
            query["starting_after"] = data[-1]["id"]

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sessions:
    """``/sessions`` (§9.2)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def attach(self, session_id: str, *, profile: str) -> Session:
        """Attach a session to a profile (I2, I3): idempotent for the same profile.

        Raises:
            IdentityConflict: the session is attached to another profile; ``exc.owner`` is its id.
            NotFound: unknown profile.
            ValidationFailed: invalid session id.
        """
        path = f"/sessions/{_segment(session_id)}"
        return cast(Session, self._c.request("PATCH", path, json={"profile": profile}))

    def get(self, session_id: str) -> Session:
        """One session.

        Raises:
            NotFound: unknown session.
        """
        return cast(Session, self._c.request("GET", f"/sessions/{_segment(session_id)}"))

    def list(self, *, profile: str | None = None, page_size: int = _PAGE_MAX) -> Iterator[Session]:
        """Every session, newest first; only those attached to `profile` when given."""
        return self._c.paginate("/sessions", {"profile": profile}, page_size)


class Profiles:
    """``/profiles`` (§9.3)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        properties: Mapping[str, Any] | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> Profile:
        """Create a profile, or return the existing one with the same email or phone, merged (I10).

        ``session`` also attaches that session to the profile.

        Raises:
            IdentityConflict: `session` belongs to another profile (nothing was created or merged).
            ValidationFailed: invalid values, or an email/phone/reference owned by other profiles.
        """
        body = _fields(
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            reference=reference,
            properties=properties,
            session=session,
            **fields,
        )
        return cast(Profile, self._c.request("POST", "/profiles", json=body))

    def get(self, profile_id: str) -> Profile:
        """One profile.

        Raises:
            NotFound: unknown profile.
        """
        return cast(Profile, self._c.request("GET", f"/profiles/{_segment(profile_id)}"))

    def list(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        page_size: int = _PAGE_MAX,
    ) -> Iterator[Profile]:
        """Every profile, newest first, filtered on trusted fields when given."""
        params = {"email": email, "phone": phone, "reference": reference}
        return self._c.paginate("/profiles", params, page_size)

    def update(self, profile_id: str, **fields: Any) -> Profile:
        """Change fields; ``None`` clears one, ``properties`` merges (a key set to ``None`` is removed)."""
        return cast(Profile, self._c.request("PATCH", f"/profiles/{_segment(profile_id)}", json=fields))

    def erase(self, profile_id: str) -> None:
        """Erase the profile, its identities, its sessions and its events (I11).

        Raises:
            NotFound: unknown profile.
        """
        self._c.request("DELETE", f"/profiles/{_segment(profile_id)}")

    def events(
        self, profile_id: str, *, action: str | None = None, page_size: int = _PAGE_MAX
    ) -> Iterator[Event]:
        """The profile's timeline (§6.5), newest first: its events and its sessions' anonymous ones."""
        path = f"/profiles/{_segment(profile_id)}/events"
        return self._c.paginate(path, {"action": action}, page_size)

    def sessions(self, profile_id: str, *, page_size: int = _PAGE_MAX) -> Iterator[Session]:
        """The sessions attached to the profile, newest first."""
        return self._c.paginate(f"/profiles/{_segment(profile_id)}/sessions", {}, page_size)


class Events:
    """Server-side tracking: ``POST /attribution/events`` (§9.4)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def track(
        self,
        action: str,
        *,
        profile: str | None = None,
        session: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> str:
        """Record an event for a profile and/or a session; given both, the session is attached.

        Args:
            action: the action name.
            profile: the profile the event is for.
            session: the session it happened on.
            id: the idempotency key; one is generated when not given, so repeating the call with the
                returned key never stores the event twice.
            **fields: other event fields (§8.3): ``object_parameters``, ``amount``, ``currency`` ...

        Returns:
            The event's idempotency key.

        Raises:
            IdentityConflict: the session is attached to another profile (422 ``identity_assigned``).
            NotFound: unknown profile, object or action.
            ValidationFailed: invalid fields.
        """
        body = _track_body(action, profile, session, id, fields)
        self._c.request("POST", "/attribution/events", json=body)
        return cast(str, body["id"])


class Links:
    """``/links`` (§9.5)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        destination: str,
        *,
        profile: str | None = None,
        campaign: str | None = None,
        utm: Mapping[str, str] | None = None,
    ) -> Link:
        """Create a short link; a click opens a session attached to `profile` (S7)."""
        body = _fields(destination=destination, profile=profile, campaign=campaign, utm=utm)
        return cast(Link, self._c.request("POST", "/links", json=body))

    def batch(self, links: Iterable[Mapping[str, Any]]) -> builtins.list[Link]:
        """Create many links at once, all or nothing; returned in request order."""
        body = self._c.request("POST", "/links/batch", json={"links": [dict(link) for link in links]})
        return cast(builtins.list[Link], body["links"])

    def get(self, link_id: str) -> Link:
        """One link."""
        return cast(Link, self._c.request("GET", f"/links/{_segment(link_id)}"))

    def list(
        self, *, campaign: str | None = None, profile: str | None = None, page_size: int = _PAGE_MAX
    ) -> Iterator[Link]:
        """Every link, newest first, filtered when asked."""
        return self._c.paginate("/links", {"campaign": campaign, "profile": profile}, page_size)


class Actions:
    """``/actions`` (§9.1)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, *, description: str | None = None) -> Action:
        """Declare a custom action."""
        body = _fields(name=name, description=description)
        return cast(Action, self._c.request("POST", "/actions", json=body))

    def list(self, *, page_size: int = _PAGE_MAX) -> Iterator[Action]:
        """The business's custom actions, newest first."""
        return self._c.paginate("/actions", {}, page_size)


# -- asyncio --------------------------------------------------------------------------------------------


class AsyncClient:
    """`Client` for asyncio programs: the same resources, with ``await`` and ``async for``.

    Args:
        token: a secret token of the business.
        api_root: the API root.
        timeout: seconds per request (or an ``httpx.Timeout``).
        transport: an httpx async transport.
    """

    def __init__(
        self,
        token: str,
        *,
        api_root: str,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_root = normalize_api_root(api_root)
        self._http = httpx.AsyncClient(headers=api_headers(token), timeout=timeout, transport=transport)
        self.sessions = AsyncSessions(self)
        self.profiles = AsyncProfiles(self)
        self.events = AsyncEvents(self)
        self.links = AsyncLinks(self)
        self.actions = AsyncActions(self)

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """Call an endpoint; see `Client.request`."""
        content = None if json is None else dumps(json)
        try:
            response = await self._http.request(method, self.api_root + path, params=params, content=content)
        except httpx.HTTPError as exc:
            raise _network_error(exc) from exc
        return _answer(response)

    async def paginate(
        self, path: str, params: Mapping[str, Any], page_size: int = _PAGE_MAX
    ) -> AsyncIterator[Any]:
        """Every item of a list endpoint; see `Client.paginate`."""
        query = _page_params(params, page_size)
        while True:
            body = await self.request("GET", path, params=query)
            data = body.get("data") or []
            for item in data:
                yield item
            if not body.get("has_more") or not data:
                return
            query["starting_after"] = data[-1]["id"]

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncSessions:
    """``/sessions``; see `Sessions`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def attach(self, session_id: str, *, profile: str) -> Session:
        """Attach a session to a profile; see `Sessions.attach`."""
        path = f"/sessions/{_segment(session_id)}"
        return cast(Session, await self._c.request("PATCH", path, json={"profile": profile}))

    async def get(self, session_id: str) -> Session:
        """One session."""
        return cast(Session, await self._c.request("GET", f"/sessions/{_segment(session_id)}"))

    def list(self, *, profile: str | None = None, page_size: int = _PAGE_MAX) -> AsyncIterator[Session]:
        """Every session, newest first (``async for``)."""
        return self._c.paginate("/sessions", {"profile": profile}, page_size)


class AsyncProfiles:
    """``/profiles``; see `Profiles`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        properties: Mapping[str, Any] | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> Profile:
        """Create or match a profile; see `Profiles.create`."""
        body = _fields(
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            reference=reference,
            properties=properties,
            session=session,
            **fields,
        )
        return cast(Profile, await self._c.request("POST", "/profiles", json=body))

    async def get(self, profile_id: str) -> Profile:
        """One profile."""
        return cast(Profile, await self._c.request("GET", f"/profiles/{_segment(profile_id)}"))

    def list(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        page_size: int = _PAGE_MAX,
    ) -> AsyncIterator[Profile]:
        """Every profile, newest first (``async for``)."""
        params = {"email": email, "phone": phone, "reference": reference}
        return self._c.paginate("/profiles", params, page_size)

    async def update(self, profile_id: str, **fields: Any) -> Profile:
        """Change fields; see `Profiles.update`."""
        path = f"/profiles/{_segment(profile_id)}"
        return cast(Profile, await self._c.request("PATCH", path, json=fields))

    async def erase(self, profile_id: str) -> None:
        """Erase the profile and everything attributed to it (I11)."""
        await self._c.request("DELETE", f"/profiles/{_segment(profile_id)}")

    def events(
        self, profile_id: str, *, action: str | None = None, page_size: int = _PAGE_MAX
    ) -> AsyncIterator[Event]:
        """The profile's timeline, newest first (``async for``)."""
        path = f"/profiles/{_segment(profile_id)}/events"
        return self._c.paginate(path, {"action": action}, page_size)

    def sessions(self, profile_id: str, *, page_size: int = _PAGE_MAX) -> AsyncIterator[Session]:
        """The sessions attached to the profile (``async for``)."""
        return self._c.paginate(f"/profiles/{_segment(profile_id)}/sessions", {}, page_size)


class AsyncEvents:
    """Server-side tracking; see `Events`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def track(
        self,
        action: str,
        *,
        profile: str | None = None,
        session: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> str:
        """Record an event; see `Events.track`. Returns the idempotency key."""
        body = _track_body(action, profile, session, id, fields)
        await self._c.request("POST", "/attribution/events", json=body)
        return cast(str, body["id"])


class AsyncLinks:
    """``/links``; see `Links`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        destination: str,
        *,
        profile: str | None = None,
        campaign: str | None = None,
        utm: Mapping[str, str] | None = None,
    ) -> Link:
        """Create a short link."""
        body = _fields(destination=destination, profile=profile, campaign=campaign, utm=utm)
        return cast(Link, await self._c.request("POST", "/links", json=body))

    async def batch(self, links: Iterable[Mapping[str, Any]]) -> builtins.list[Link]:
        """Create many links at once, all or nothing."""
        body = await self._c.request("POST", "/links/batch", json={"links": [dict(x) for x in links]})
        return cast(builtins.list[Link], body["links"])

    async def get(self, link_id: str) -> Link:
        """One link."""
        return cast(Link, await self._c.request("GET", f"/links/{_segment(link_id)}"))

    def list(
        self, *, campaign: str | None = None, profile: str | None = None, page_size: int = _PAGE_MAX
    ) -> AsyncIterator[Link]:
        """Every link, newest first (``async for``)."""
        return self._c.paginate("/links", {"campaign": campaign, "profile": profile}, page_size)


class AsyncActions:
    """``/actions``; see `Actions`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, *, description: str | None = None) -> Action:
        """Declare a custom action."""
        body = _fields(name=name, description=description)
        return cast(Action, await self._c.request("POST", "/actions", json=body))

    def list(self, *, page_size: int = _PAGE_MAX) -> AsyncIterator[Action]:
        """The business's custom actions (``async for``)."""
        return self._c.paginate("/actions", {}, page_size)
