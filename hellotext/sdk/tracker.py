"""`Hellotext` and `AsyncHellotext`: the browser SDK's rules for Python programs.

The same session and identity rules as ``hellotext.js`` (spec browser-sdk §3-§10, rules S1-S4, I5-I8), with
the cookies kept in a `CookieJar`:

- the session is resolved on construction (S1: the ``hello_session`` parameter of `url`, the `session`
  option, the ``hello_session`` cookie, a new UUID v4), written back to the jar and announced with
  ``session-set`` (S2, S4); with ``auto_generate_session=False`` and nothing found there is none (S3);
- every read of `session`, `track` and `identify` first re-reads the cookie, so a rotation made by another
  holder of the jar (another process on a `FileCookieJar`) is adopted, as browser tabs do;
- `identify` sends the identification unless the fingerprint cookie shows the same payload was already
  sent (the fingerprint is byte-identical to the browser's), remembers the identity in cookies (I6), and on
  ``session_conflict`` mints a new session and identifies once more (I8);
- `track` sends the event with the remembered identity as ``user_parameters`` through a `Delivery`
  (background batches by default);
- `forget` deletes the identity cookies and keeps the session (I7).

Calls that report (``track``, ``identify``) never raise into the host program: failures are logged and
``identify`` returns a failed `Result`, unless ``debug=True``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from hellotext.errors import HellotextError, InvalidEvent, ServerUnavailable
from hellotext.sdk.cookies import CookieJar, MemoryCookieJar
from hellotext.sdk.delivery import Delivery, DeliveryOptions
from hellotext.sdk.fingerprint import JS_WHITESPACE, fingerprint
from hellotext.sdk.session import (
    HASH_COOKIE,
    IDENTITY_COOKIES,
    SESSION_COOKIE,
    USER_ID_COOKIE,
    USER_SOURCE_COOKIE,
    UTM_COOKIE,
    mint_session,
    query_param,
    read_utm,
    resolve_session,
    usable_session,
    utm_from_url,
)
from hellotext.sdk.wire import api_headers, dumps, error_from_answer, js_string, normalize_api_root

__all__ = ["AsyncHellotext", "Hellotext", "Result"]

logger = logging.getLogger("hellotext")

#: Names `on` accepts; the last two are never emitted, accepted so code written for the official client runs.
EVENT_NAMES = frozenset({"session-set", "utm-set", "forms:collected", "form:completed"})
Listener = Callable[[Any], object]
#: The server's limit on page URLs and paths (http-api §8.3).
URL_MAX = 2048


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of `Hellotext.identify` (the browser SDK's ``Response``, §10.1).

    Attributes:
        succeeded: the server accepted the call, or no call was needed (already identified).
        data: the answer's JSON (``{"already_identified": True}`` when no call was made), or ``None``
            when there was no JSON answer.
        status: the HTTP status, or ``None`` when no request was answered.
    """

    succeeded: bool
    data: Any = None
    status: int | None = None

    @property
    def failed(self) -> bool:
        """``not succeeded``."""
        return not self.succeeded


class _Core:
    """What a tracker and every tracker bound from it share: configuration, delivery, HTTP clients."""

    def __init__(
        self,
        business_id: str,
        api_root: str,
        delivery: DeliveryOptions | None,
        debug: bool,
        transport: httpx.BaseTransport | None,
        async_transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.business_id = business_id
        self.api_root = api_root
        self.debug = debug
        self.options = delivery or DeliveryOptions()
        self.transport = transport
        self.async_transport = async_transport
        self.headers = api_headers(business_id)
        self._delivery: Delivery | None = None
        self._http: httpx.Client | None = None
        self._ahttp: httpx.AsyncClient | None = None
        self._ahttp_loop: asyncio.AbstractEventLoop | None = None

    @property
    def delivery(self) -> Delivery:
        # Created on first use, so a tracker that never tracks starts no thread and opens no socket.
        if self._delivery is None:
            self._delivery = Delivery(
                self.business_id,
                api_root=self.api_root,
                options=self.options,
                debug=self.debug,
                transport=self.transport,
            )
        return self._delivery

    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=self.options.timeout, transport=self.transport, headers=self.headers
            )
        return self._http

    def ahttp(self) -> httpx.AsyncClient:
        # An async client's connections belong to the event loop that opened them: a tracker used from
        # another loop (asyncio.run twice, a test) gets a client of its own.
        loop = asyncio.get_running_loop()
        if self._ahttp is None or self._ahttp_loop is not loop:
            self._ahttp = httpx.AsyncClient(
                timeout=self.options.timeout, transport=self.async_transport, headers=self.headers
            )
            self._ahttp_loop = loop
        return self._ahttp

    def close(self, timeout: float | None) -> bool:
        done = True
        if self._delivery is not None:
            done = self._delivery.close(timeout)
        if self._http is not None:
            self._http.close()
            self._http = None
        return done

    async def aclose(self, timeout: float | None) -> bool:
        done = await asyncio.to_thread(self.close, timeout)
        if self._ahttp is not None and self._ahttp_loop is asyncio.get_running_loop():
            await self._ahttp.aclose()
        self._ahttp = None
        return done


class _Tracker:
    """State and rules shared by the sync and async trackers; no I/O of its own."""

    def __init__(
        self,
        business_id: str,
        *,
        api_root: str,
        cookies: CookieJar | None = None,
        session: str | None = None,
        auto_generate_session: bool = True,
        url: str | None = None,
        delivery: DeliveryOptions | None = None,
        debug: bool = False,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        listeners: dict[str, list[Listener]] | None = None,
        _core: _Core | None = None,
    ) -> None:
        if not isinstance(business_id, str):
            raise TypeError("business_id must be a string: the business's public id")
        if not business_id:
            raise ValueError("business_id must not be empty")
        self._core = _core or _Core(
            business_id, normalize_api_root(api_root), delivery, debug, transport, async_transport
        )
        self._owns_core = _core is None
        self.cookies: CookieJar = cookies if cookies is not None else MemoryCookieJar()
        self.url = url
        # §7.2: a page opened with ?hello_preview (any value) tracks nothing.
        self._preview = bool(url) and query_param(urlsplit(url or "").query, "hello_preview") is not None
        self._last_page: tuple[str, str] | None = None
        self._listeners: dict[str, list[Listener]] = {}
        for name, callbacks in (listeners or {}).items():
            for callback in callbacks:
                self.on(name, callback)
        self._session: str | None = None
        self.initialize(session=session, auto_generate_session=auto_generate_session)

    # -- configuration --------------------------------------------------------------------------------

    @property
    def business_id(self) -> str:
        """The business's public id (the credential of every call)."""
        return self._core.business_id

    @property
    def api_root(self) -> str:
        """The API root, without trailing slashes."""
        return self._core.api_root

    @property
    def debug(self) -> bool:
        """Whether tracking failures are raised instead of only logged."""
        return self._core.debug

    @property
    def delivery(self) -> Delivery:
        """The delivery that carries tracked events (shared by every tracker bound from this one)."""
        return self._core.delivery

    def initialize(self, *, session: str | None = None, auto_generate_session: bool = True) -> None:
        """Resolve the UTM cookie and the session again (§3 steps 3-4); the constructor calls it.

        Args:
            session: a session chosen by the program; the URL parameter still wins (S1).
            auto_generate_session: mint a session when none is found (S3 when off).
        """
        if self.url:
            utm = utm_from_url(self.url)
            if utm is not None:
                self.cookies.set(UTM_COOKIE, json.dumps(utm, ensure_ascii=False, separators=(",", ":")))
                self._emit("utm-set", utm)
        query = query_param(urlsplit(self.url).query, SESSION_COOKIE) if self.url else None
        resolved, _ = resolve_session(
            query=query,
            configured=session,
            cookie=self.cookies.get(SESSION_COOKIE),
            auto_generate=auto_generate_session,
        )
        if resolved is not None:
            self._set_session(resolved)

    # -- sessions and listeners -----------------------------------------------------------------------

    @property
    def session(self) -> str | None:
        """The current session (re-read from the cookie first, §4.3), or ``None``."""
        self._adopt_cookie_session()
        return self._session

    @property
    def is_initialized(self) -> bool:
        """Whether a session is set."""
        return self.session is not None

    def on(self, name: str, callback: Listener) -> None:
        """Call `callback` with the value each time `name` is emitted (``session-set``, ``utm-set``).

        Raises:
            InvalidEvent: an unknown name.
        """
        if name not in EVENT_NAMES:
            raise InvalidEvent(f"unknown event {name!r}; expected one of {sorted(EVENT_NAMES)}")
        self._listeners.setdefault(name, []).append(callback)

    def remove_listener(self, name: str, callback: Listener) -> None:
        """Remove one registration of `callback` for `name` (an unknown callback is ignored).

        Raises:
            InvalidEvent: an unknown name.
        """
        if name not in EVENT_NAMES:
            raise InvalidEvent(f"unknown event {name!r}; expected one of {sorted(EVENT_NAMES)}")
        callbacks = self._listeners.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)

    def _emit(self, name: str, value: Any) -> None:
        for callback in list(self._listeners.get(name, ())):
            try:
                callback(value)
            except Exception:  # a listener's bug must not stop the SDK or the other listeners (§6)
                logger.exception("hellotext: %s listener failed", name)

    def _set_session(self, session: str) -> None:
        self._session = session
        self.cookies.set(SESSION_COOKIE, session)
        self._emit("session-set", session)

    def _adopt_cookie_session(self) -> None:
        raw = self.cookies.get(SESSION_COOKIE)
        if raw is None or raw == self._session:
            return  # the common case, checked without the session id rule: track() runs it every call
        cookie = usable_session(raw)
        if cookie is not None:
            self._session = cookie
            self._emit("session-set", cookie)

    def _rotate(self) -> str:
        session = mint_session()
        self._set_session(session)
        return session

    # -- identity -------------------------------------------------------------------------------------

    def forget(self, *, new_session: bool = False) -> None:
        """Delete the identity cookies and keep the session (I7); no request.

        Args:
            new_session: also rotate the session (shared devices).
        """
        for name in IDENTITY_COOKIES:
            self.cookies.delete(name)
        if new_session:
            self._rotate()

    def _user_parameters(self) -> dict[str, str]:
        params: dict[str, str] = {}
        user_id = self.cookies.get(USER_ID_COOKIE)
        if user_id is not None:
            params["id"] = user_id
        source = self.cookies.get(USER_SOURCE_COOKIE)
        if source is not None:
            params["source"] = source
        return params

    def _identify_payload(self, options: dict[str, Any], external_id: object) -> dict[str, Any]:
        payload = dict(options)
        session = self.session
        if session is None:
            payload.pop("session", None)
        else:
            payload["session"] = session
        payload["user_id"] = external_id
        return payload

    def _remember(self, external_id: object, source: object, hashed: str) -> None:
        self.cookies.set(USER_ID_COOKIE, js_string(external_id))
        if isinstance(source, str) and source.strip(JS_WHITESPACE):
            self.cookies.set(USER_SOURCE_COOKIE, source)
        else:
            # A new id must never pair with an old source (§8.3).
            self.cookies.delete(USER_SOURCE_COOKIE)
        self.cookies.set(HASH_COOKIE, hashed)

    def _identify_failed(self, error: Exception, status: int | None, data: Any) -> Result:
        if self.debug:
            raise error
        logger.warning("hellotext: identify failed: %s", error)
        return Result(False, data, status)

    def _identify_answer(
        self, status: int, response: httpx.Response, payload: dict[str, Any], hashed: str, rotated: bool
    ) -> Result | None:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not 200 <= status < 300:
            return self._identify_failed(error_from_answer(status, response.headers, data), status, data)
        if isinstance(data, dict) and data.get("session_conflict") is True and not rotated:
            self._rotate()  # I8: one session never spans two customers; identify once more
            return None
        self._remember(payload["user_id"], payload.get("source"), hashed)
        return Result(True, data, status)

    # -- events ---------------------------------------------------------------------------------------

    def _event(self, action: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The event body in the browser's key order (§7.3); ``None`` in preview mode."""
        if self._preview:
            return None
        body: dict[str, Any] = {}
        session = self.session
        if session is not None:
            body["session"] = session
        user_parameters = params.pop("user_parameters", None)
        body["user_parameters"] = user_parameters if user_parameters is not None else self._user_parameters()
        body["action"] = action
        params.pop("headers", None)  # per-request headers cannot ride in a shared batch
        body.update(params)
        if "page" not in body:
            page_url = params.get("url") or self.url
            if isinstance(page_url, str) and page_url:
                body["page"] = {"url": page_url[:URL_MAX], "path": self._path_of(page_url)}
        utm = read_utm(self.cookies.get(UTM_COOKIE))
        if utm:
            body["utm_params"] = utm
        return body

    def _path_of(self, url: str) -> str:
        # Pages repeat: remember the last URL's path instead of parsing the same URL on every call.
        last = self._last_page
        if last is not None and last[0] == url:
            return last[1]
        path = urlsplit(url).path[:URL_MAX] or "/"
        self._last_page = (url, path)
        return path

    def _preview_id(self) -> str:
        return self._core.delivery.new_id()

    def bind(
        self,
        *,
        cookies: CookieJar,
        url: str | None = None,
        session: str | None = None,
        auto_generate_session: bool = True,
    ) -> Self:
        """A tracker for another visitor that shares this one's delivery and connections.

        The web middleware binds one per request; a worker processing jobs for many visitors can do the same.
        Listeners registered on this tracker are copied.
        """
        return type(self)(
            self.business_id,
            api_root=self.api_root,
            cookies=cookies,
            url=url,
            session=session,
            auto_generate_session=auto_generate_session,
            listeners={name: list(callbacks) for name, callbacks in self._listeners.items()},
            _core=self._core,
        )


class Hellotext(_Tracker):
    """The browser SDK's session and identity rules for a Python program (sync).

    Args:
        business_id: the business's public id.
        api_root: the API root, such as ``https://track.example.com/v1``.
        cookies: where the session and identity are kept; a fresh `MemoryCookieJar` by default.
        session: a session chosen by the program (S1: the URL parameter, then this, then the cookie).
        auto_generate_session: mint a session when none is found.
        url: the page URL this tracker acts for, if any (web apps): its ``hello_session`` parameter wins,
            its ``utm_*`` parameters are kept in ``hello_utm``, and events carry it as ``page``.
        delivery: how events travel (background batches by default; ``DeliveryOptions(sync=True)`` for
            scripts and serverless).
        debug: raise tracking failures instead of logging them.
        transport: an httpx transport for the SDK's requests (tests, proxies).
        listeners: ``{name: [callback, ...]}`` registered before the session is resolved, so they see
            the first ``session-set``.

    Raises:
        TypeError: `business_id` is not a string.
        ValueError: `business_id` is empty, or `api_root` is not an http(s) URL.
    """

    def track(self, action: str, **params: Any) -> str:
        """Report an event (§7): the session, the remembered identity, the action and `params`.

        Args:
            action: the action name (``page.viewed``, ``product.viewed``, a declared custom action ...).
            **params: the event's fields (http-api §8.3): ``object_parameters``, ``amount``, ``url`` ...;
                ``user_parameters`` replaces the remembered identity.

        Returns:
            The event's idempotency key. Delivery happens in the background unless the delivery is
            synchronous; its outcome is logged and counted in ``delivery.stats``.
        """
        try:
            body = self._event(action, params)
            if body is None:
                return self._preview_id()
            return self._core.delivery.submit(body)
        except HellotextError:
            if self.debug:
                raise
            return ""
        except Exception:
            if self.debug:
                raise
            logger.exception("hellotext: track failed")
            return ""

    def identify(
        self,
        external_id: str | int,
        *,
        source: str | None = None,
        email: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        **traits: Any,
    ) -> Result:
        """Identify the visitor as `external_id` (I5), unless this exact identification was already sent.

        Args:
            external_id: your platform's user id.
            source: the platform (``shopify`` ...); the identity is (source, external_id).
            email: unverified email.
            name: unverified name.
            phone: unverified phone.
            **traits: other values kept on the profile as traits. ``None`` values are left out.

        Returns:
            A `Result`: succeeded with the server's answer, or ``{"already_identified": True}`` without
            a request; failed (and logged) when the server refused or could not be reached.
        """
        options = _options(source, email, name, phone, traits)
        rotated = False
        while True:
            try:
                payload = self._identify_payload(options, external_id)
                hashed = fingerprint(payload)
                if not rotated and self.cookies.get(HASH_COOKIE) == hashed:
                    return Result(True, {"already_identified": True}, None)
                content = dumps(payload)
            except (TypeError, ValueError) as exc:
                return self._identify_failed(exc, None, None)
            try:
                response = self._core.http().post(self.api_root + "/public/identifications", content=content)
            except httpx.HTTPError as exc:
                error = ServerUnavailable(0, [{"type": "network", "description": str(exc) or repr(exc)}])
                return self._identify_failed(error, None, None)
            outcome = self._identify_answer(response.status_code, response, payload, hashed, rotated)
            if outcome is not None:
                return outcome
            rotated = True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the events tracked so far are delivered (or given up); see `Delivery.flush`."""
        return self._core.delivery.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and stop the delivery, close connections (no-op on a bound tracker)."""
        if not self._owns_core:
            return True
        return self._core.close(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHellotext(_Tracker):
    """`Hellotext` for asyncio programs: `identify` awaits its request; `track` never blocks the loop.

    Takes the same arguments as `Hellotext`, plus ``async_transport`` for the identification requests.
    Background delivery runs in its worker thread; in sync mode the request runs in a thread too.
    """

    async def track(self, action: str, **params: Any) -> str:
        """Report an event; see `Hellotext.track`."""
        try:
            body = self._event(action, params)
            if body is None:
                return self._preview_id()
            delivery = self._core.delivery
            if delivery.options.sync:
                return await asyncio.to_thread(delivery.submit, body)
            return delivery.submit(body)
        except HellotextError:
            if self.debug:
                raise
            return ""
        except Exception:
            if self.debug:
                raise
            logger.exception("hellotext: track failed")
            return ""

    async def identify(
        self,
        external_id: str | int,
        *,
        source: str | None = None,
        email: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        **traits: Any,
    ) -> Result:
        """Identify the visitor; see `Hellotext.identify`."""
        options = _options(source, email, name, phone, traits)
        rotated = False
        while True:
            try:
                payload = self._identify_payload(options, external_id)
                hashed = fingerprint(payload)
                if not rotated and self.cookies.get(HASH_COOKIE) == hashed:
                    return Result(True, {"already_identified": True}, None)
                content = dumps(payload)
            except (TypeError, ValueError) as exc:
                return self._identify_failed(exc, None, None)
            try:
                response = await self._core.ahttp().post(
                    self.api_root + "/public/identifications", content=content
                )
            except httpx.HTTPError as exc:
                error = ServerUnavailable(0, [{"type": "network", "description": str(exc) or repr(exc)}])
                return self._identify_failed(error, None, None)
            outcome = self._identify_answer(response.status_code, response, payload, hashed, rotated)
            if outcome is not None:
                return outcome
            rotated = True

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait (in a thread) until the events tracked so far are delivered or given up."""
        return await asyncio.to_thread(self._core.delivery.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush and stop the delivery, close connections (no-op on a bound tracker)."""
        if not self._owns_core:
            return True
        return await self._core.aclose(timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _options(
    source: str | None, email: str | None, name: str | None, phone: str | None, traits: dict[str, Any]
) -> dict[str, Any]:
    options = {"source": source, "email": email, "name": name, "phone": phone, **traits}
    return {key: value for key, value in options.items() if value is not None}
