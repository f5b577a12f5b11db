"""hellotext: session and identity tracking. The Python SDK's public names live here.

::

    from hellotext import Client, Hellotext

    tracker = Hellotext("D5GAnwf4", api_root="https://track.example.com/v1")
    tracker.track("page.viewed", url="https://shop.example.com/")

    client = Client("htsk_...", api_root="https://track.example.com/v1")
    client.sessions.attach(tracker.session, profile=client.profiles.create(email="john@example.com")["id"])

The base install needs only httpx; the server lives in `hellotext.server` (the ``server`` extra).
"""

from __future__ import annotations

from hellotext.errors import (
    APIError,
    HellotextError,
    IdentityConflict,
    InvalidEvent,
    NotFound,
    QueueFull,
    RateLimited,
    ServerUnavailable,
    Unauthorized,
    ValidationFailed,
)
from hellotext.sdk import (
    AsyncClient,
    AsyncHellotext,
    Client,
    CookieJar,
    DeliveryOptions,
    FileCookieJar,
    Hellotext,
    HellotextMiddleware,
    HellotextWSGIMiddleware,
    MemoryCookieJar,
    Result,
)
from hellotext.sdk.wire import SDK_VERSION as __version__

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncHellotext",
    "Client",
    "CookieJar",
    "DeliveryOptions",
    "FileCookieJar",
    "Hellotext",
    "HellotextError",
    "HellotextMiddleware",
    "HellotextWSGIMiddleware",
    "IdentityConflict",
    "InvalidEvent",
    "MemoryCookieJar",
    "NotFound",
    "QueueFull",
    "RateLimited",
    "Result",
    "ServerUnavailable",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
]
