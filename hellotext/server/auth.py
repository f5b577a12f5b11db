"""Credentials, tenancy and CORS at the HTTP edge (spec http-api §2, §4).

`public_route` and `private_route` wrap a handler ``async (request, ctx) -> Response``: they answer
preflights, authenticate, check the origin, translate domain errors into the envelope, and put CORS
headers on every answer of a public endpoint whose origin is allowed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from hellotext.core.ids import TOKEN_PREFIX
from hellotext.errors import IdentityConflict, Problem, ProblemError
from hellotext.server.responses import error_response
from hellotext.store.businesses import Business, business_by_public_id, business_by_token

if TYPE_CHECKING:
    from hellotext.server.state import AppState

PREFLIGHT_METHODS = "GET, POST, OPTIONS"
DEFAULT_ALLOW_HEADERS = "Authorization, Content-Type, Accept"
PUBLIC_ID_CACHE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a handler knows about the caller.

    Attributes:
        business: the credential's business: every lookup is scoped to it.
        secret: whether the credential was a secret token (private scope).
        state: the application's shared state (database, settings, metrics).
    """

    business: Business
    secret: bool
    state: AppState


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def _unauthorized(description: str = "a valid credential is required") -> ProblemError:
    return ProblemError(Problem("unauthorized", None, description), status=401)


def bearer(request: Request) -> str | None:
    """The credential of an ``Authorization: Bearer`` header (scheme case-insensitive)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > 256:
        return None
    return credential


class Authenticator:
    """Resolves credentials to businesses.

    Public ids are cached for a couple of seconds (they are in every browser event, and a business's
    settings rarely change); secret tokens are looked up by hash on every request so that a revocation
    takes effect on the next one.
    """

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._public: dict[str, tuple[float, Business | None]] = {}

    async def resolve(self, credential: str) -> tuple[Business, bool] | None:
        """The business and whether the credential is secret, or ``None`` when unknown or revoked."""
        if credential.startswith(TOKEN_PREFIX):
            business = await self._state.db.read(lambda c: business_by_token(c, credential))
            if business is None:
                return None
            return business, True
        now = time.monotonic()
        cached = self._public.get(credential)
        if cached is not None and cached[0] > now:
            business = cached[1]
        else:
            business = await self._state.db.read(lambda c: business_by_public_id(c, credential))
            if len(self._public) > 10_000:
                self._public.clear()
            self._public[credential] = (now + PUBLIC_ID_CACHE_SECONDS, business)
        return None if business is None else (business, False)

    def forget(self) -> None:
        """Drop the public-id cache (tests change business settings)."""
        self._public.clear()


def normalize_origin(origin: str) -> str:
    """Lowercase scheme and host and drop a default port, for whitelist comparison."""
    text = origin.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text.lower()
    scheme = scheme.lower()
    host = rest.lower().rstrip("/")
    if scheme == "https" and host.endswith(":443"):
        host = host[:-4]
    elif scheme == "http" and host.endswith(":80"):
        host = host[:-3]
    return f"{scheme}://{host}"


def origin_allowed(business: Business, origin: str) -> bool:
    """Whether an actual request's Origin passes the business's whitelist (§4)."""
    if business.whitelist is None:
        return True
    if origin.strip() == "null":
        return False
    wanted = normalize_origin(origin)
    return any(normalize_origin(allowed) == wanted for allowed in business.whitelist)


def _with_cors(response: Response, origin: str | None) -> Response:
    if origin is not None:
        response.headers["access-control-allow-origin"] = origin
        response.headers["vary"] = "Origin"
    return response


def domain_error_response(exc: ProblemError) -> Response:
    """The envelope for a domain error; a conflict also carries the current session object."""
    extra: dict[str, Any] | None = None
    if isinstance(exc, IdentityConflict) and exc.session is not None:
        extra = {"session": exc.session}
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["www-authenticate"] = "Bearer"
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return error_response(exc.problems, exc.status, extra=extra, headers=headers)


def preflight(request: Request) -> Response:
    """Answer a CORS preflight (no credential, no whitelist check)."""
    origin = request.headers.get("origin")
    requested = request.headers.get("access-control-request-headers")
    response = Response(status_code=204)
    if origin is not None:
        response.headers["access-control-allow-origin"] = origin
    response.headers["access-control-allow-methods"] = PREFLIGHT_METHODS
    response.headers["access-control-allow-headers"] = requested or DEFAULT_ALLOW_HEADERS
    response.headers["access-control-max-age"] = "600"
    response.headers["vary"] = "Origin"
    response.headers["cache-control"] = "no-store"
    return response


def refuse_nul(request: Request) -> None:
    """Refuse U+0000 in query and path values, as the body reader does in bodies (§1.2).

    No stored value holds it (PostgreSQL text cannot, and a lookup with it fails there), so a path id
    with it names nothing: 404, like any unknown id. A query value with it is invalid: 422 naming the
    parameter. Session ids in paths are left to their handlers, whose §5.1 check refuses it as §9.2 says.

    Raises:
        ProblemError: 404 or 422 as above.
    """
    # Every request passes here: look at the raw scope first and parse only when a NUL can be there.
    query: bytes = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in request.query_params.multi_items():
            if "\x00" in name or "\x00" in value:
                raise ProblemError(Problem("invalid", name, f"{name} must not contain the NUL character"))
    path: str = request.scope["path"]
    if "\x00" not in path or path.startswith("/v1/sessions/"):
        return
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise ProblemError(Problem("not_found", name, f"no such {name}"), status=404)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.hellotext
    return state


def public_route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a public-endpoint handler: preflight, public id or secret token, origin check, CORS."""

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return preflight(request)
        origin = request.headers.get("origin")
        state = _state(request)
        try:
            credential = bearer(request)
            resolved = None if credential is None else await state.auth.resolve(credential)
            if resolved is None:
                # Unknown business: echo the Origin so the page can read the error.
                return _with_cors(domain_error_response(_unauthorized()), origin)
            business, secret = resolved
            if origin is not None and not origin_allowed(business, origin):
                return domain_error_response(_unauthorized("origin not allowed"))
            ctx = Ctx(business=business, secret=secret, state=state)
            await state.limits.check(request, ctx)
            refuse_nul(request)
            response = await handler(request, ctx)
        except ProblemError as exc:
            response = domain_error_response(exc)
        return _with_cors(response, origin)

    return endpoint


def private_route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a private-endpoint handler: secret token only, no CORS."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        try:
            credential = bearer(request)
            resolved = None if credential is None else await state.auth.resolve(credential)
            if resolved is None or not resolved[1]:
                raise _unauthorized("a secret token is required")
            ctx = Ctx(business=resolved[0], secret=True, state=state)
            await state.limits.check(request, ctx)
            refuse_nul(request)
            return await handler(request, ctx)
        except ProblemError as exc:
            return domain_error_response(exc)

    return endpoint
