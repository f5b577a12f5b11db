"""Every route of the server, gathered from one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute


def all_routes() -> list[BaseRoute]:
    """The routes of every area, in matching order."""
    from hellotext.server.routes import health, public

    routes: list[BaseRoute] = []
    for module in (health, public):
        routes.extend(module.routes)
    return routes
