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
    # Starlette tries routes in order: the hot paths (event ingest, link redirects) come first.
    for module in (events, links, public, identifications, sessions, profiles, actions, health, static):
        routes.extend(module.routes)
    return routes
