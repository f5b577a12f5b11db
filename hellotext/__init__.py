"""hellotext: session and identity tracking. The Python SDK's public names live here."""

from __future__ import annotations

from hellotext.errors import (
    APIError,
    HellotextError,
    IdentityConflict,
    NotFound,
    RateLimited,
    ServerUnavailable,
    Unauthorized,
    ValidationFailed,
)

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "HellotextError",
    "IdentityConflict",
    "NotFound",
    "RateLimited",
    "ServerUnavailable",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
]
