"""Flask: install the WSGI middleware, and reach the request's tracker.

::

    from flask import Flask
    from hellotext.sdk.contrib.flask import current_hellotext, init_app

    app = Flask(__name__)
    init_app(app, "D5GAnwf4", api_root="https://track.example.com/v1")

    @app.get("/")
    def index():
        current_hellotext().track("page.viewed")
        return "hello"
"""

from __future__ import annotations

from typing import Any

from hellotext.sdk.tracker import Hellotext
from hellotext.sdk.wsgi import HellotextWSGIMiddleware

__all__ = ["current_hellotext", "current_session", "init_app"]


def init_app(app: Any, business_id: str, *, api_root: str, **options: Any) -> HellotextWSGIMiddleware:
    """Wrap ``app.wsgi_app`` in `HellotextWSGIMiddleware` (same keyword options) and return it."""
    middleware = HellotextWSGIMiddleware(app.wsgi_app, business_id, api_root=api_root, **options)
    app.wsgi_app = middleware
    return middleware


def current_hellotext() -> Hellotext:
    """The `Hellotext` bound to the current request."""
    from flask import request

    tracker: Hellotext = request.environ["hellotext"]
    return tracker


def current_session() -> str | None:
    """The current request's session id."""
    from flask import request

    session: str | None = request.environ.get("hellotext.session")
    return session
