"""The HTTP server: ``create_app(settings)`` builds the ASGI application."""

from __future__ import annotations

from hellotext.server.app import create_app

__all__ = ["create_app"]
