"""One exception root for the whole package.

The tree::

    HellotextError
    ├── ConfigurationError          bad HELLOTEXT_* settings; raised at start-up
    ├── ProblemError                a request the domain refuses; carries `problems`
    │   ├── ValidationFailed        422: one or more invalid values
    │   ├── NotFound                404: an id unknown in the business
    │   ├── IdentityConflict        409 (or 422): session owned by another profile; `.owner`
    │   └── Unauthorized            401: bad credential or origin
    ├── APIError                    SDK: the server answered an error (status, errors, retry_after)
    │   ├── RateLimited             429, with `retry_after`
    │   └── ServerUnavailable       5xx or no answer
    ├── InvalidEvent                SDK: unknown listener name (also a ValueError)
    └── QueueFull                   SDK: an event was dropped by a full delivery queue (debug only)

Domain code raises `ProblemError` subclasses with `Problem` entries; the server turns them into the
spec's error envelope in one place (`hellotext.server.errors`). The SDK's private-API client raises the
same `ProblemError` classes for the answers a caller acts on (401, 404, 409, 422), built from the
server's envelope, so ``exc.status``, ``exc.problems`` and ``exc.errors`` (the envelope entries) are there
on both sides; every other failed answer is an `APIError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One entry of the error envelope: what is wrong, and where.

    Attributes:
        type: the spec's error type (``invalid``, ``parameter_missing`` ...).
        parameter: dotted path of the offending value, a path or query parameter name, or ``None``.
        description: one English sentence for humans.
    """

    type: str
    parameter: str | None
    description: str

    def as_dict(self) -> dict[str, Any]:
        """The envelope entry, with ``message`` identical to ``description``."""
        return {
            "type": self.type,
            "parameter": self.parameter,
            "description": self.description,
            "message": self.description,
        }


class HellotextError(Exception):
    """Root of every exception raised by hellotext."""


class ConfigurationError(HellotextError):
    """A setting is missing or malformed."""


class ProblemError(HellotextError):
    """The domain refuses a request; `problems` lists why and `status` is the HTTP status to answer."""

    status: int = 422
    #: The whole decoded answer when the error was built by the SDK from a server's reply.
    body: Any = None

    def __init__(self, problems: list[Problem] | Problem, *, status: int | None = None) -> None:
        self.problems: list[Problem] = problems if isinstance(problems, list) else [problems]
        if status is not None:
            self.status = status
        super().__init__("; ".join(p.description for p in self.problems))

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The error envelope's entries (``type``, ``parameter``, ``description``, ``message``)."""
        return [p.as_dict() for p in self.problems]

    @classmethod
    def one(cls, type_: str, parameter: str | None, description: str) -> ProblemError:
        """Build the error from a single problem."""
        return cls(Problem(type_, parameter, description))


class ValidationFailed(ProblemError):
    """A value is missing, empty, of the wrong type or out of range (422)."""

    status = 422


class NotFound(ProblemError):
    """An id is unknown in the credential's business (404)."""

    status = 404


class IdentityConflict(ProblemError):
    """The session is already attached to another profile.

    Attributes:
        session: the current session object (as the API shows it), naming the owner.
    """

    status = 409

    def __init__(
        self,
        problems: list[Problem] | Problem,
        *,
        session: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(problems, status=status)
        self.session = session

    @property
    def owner(self) -> str | None:
        """Id of the profile the session is attached to, when the answer named it."""
        if isinstance(self.session, dict):
            profile = self.session.get("profile")
            return profile if isinstance(profile, str) else None
        return None


class Unauthorized(ProblemError):
    """Missing, unknown or revoked credential, wrong kind, or origin not allowed (401)."""

    status = 401


class APIError(HellotextError):
    """The server answered with an error (Python SDK side).

    Attributes:
        status: the HTTP status, or 0 when no answer came.
        errors: the envelope's ``errors`` entries.
        retry_after: seconds to wait, when the server said so.
        body: the whole decoded body, when it was JSON.
    """

    def __init__(
        self,
        status: int,
        errors: list[dict[str, Any]] | None = None,
        *,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        self.status = status
        self.errors = errors or []
        self.retry_after = retry_after
        self.body = body
        first = self.errors[0].get("description") if self.errors else None
        super().__init__(f"HTTP {status}: {first}" if first else f"HTTP {status}")


class RateLimited(APIError):
    """429: too many requests; wait `retry_after` seconds."""


class ServerUnavailable(APIError):
    """5xx, or the server could not be reached."""


class InvalidEvent(HellotextError, ValueError):
    """An unknown listener name was given to ``on`` or ``remove_listener`` (SDK)."""


class QueueFull(HellotextError):
    """The delivery queue was full and an event was dropped (raised only with ``debug=True``)."""
