"""The Python SDK: the browser twin (`Hellotext`), the private-API client (`Client`), background delivery,
and web middleware. Its public names are re-exported by `hellotext`; import them from there.

Modules: `fingerprint` (identify dedupe, byte-identical to hellotext.js), `session` (S1-S4 and the
root-domain rule, pure), `cookies` (`CookieJar` and two jars), `tracker` (`Hellotext`, `AsyncHellotext`),
`delivery` (the queue and its worker), `client` (`Client`, `AsyncClient`), `wire` (headers, typed errors),
`web`, `asgi`, `wsgi` (middleware) and `contrib` (Django, Flask, FastAPI adapters).

Everything here needs only the standard library and httpx.
"""

from __future__ import annotations

from hellotext.sdk.asgi import HellotextMiddleware
from hellotext.sdk.client import AsyncClient, Client
from hellotext.sdk.cookies import CookieJar, FileCookieJar, MemoryCookieJar
from hellotext.sdk.delivery import Delivery, DeliveryOptions, DeliveryStats
from hellotext.sdk.tracker import AsyncHellotext, Hellotext, Result
from hellotext.sdk.wsgi import HellotextWSGIMiddleware

__all__ = [
    "AsyncClient",
    "AsyncHellotext",
    "Client",
    "CookieJar",
    "Delivery",
    "DeliveryOptions",
    "DeliveryStats",
    "FileCookieJar",
    "Hellotext",
    "HellotextMiddleware",
    "HellotextWSGIMiddleware",
    "MemoryCookieJar",
    "Result",
]
