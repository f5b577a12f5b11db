"""Every route of the server, gathered from one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute


def all_routes() -> list[BaseRoute]:
    """The routes of every area, in matching order."""
    from hellotext.server.routes import (
        actions,
        events,
        health,
        identifications,
        links,
        profiles,
        public,
        sessions,
        static,
    )

    routes: list[BaseRoute] = []
    for module in (health, public, events, identifications, actions, sessions, profiles, links, static):
        routes.extend(module.routes)
    return routes
