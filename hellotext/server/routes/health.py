"""Operational endpoints (spec http-api §11): health, metrics, OpenAPI document."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.server.responses import json_response, problem

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
HEALTH_TIMEOUT = 2.0


def _ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


async def health(request: Request) -> Response:
    """``200 {"status": "ok"}`` when a trivial query answers in time, else 503."""
    db = request.app.state.hellotext.db
    try:
        await asyncio.wait_for(db.read(_ping), timeout=HEALTH_TIMEOUT)
    except Exception:  # any failure of the database means "unavailable", which is the answer
        body = {
            "status": "unavailable",
            "errors": [
                {
                    "type": "server_error",
                    "parameter": None,
                    "description": "the database is unreachable",
                    "message": "the database is unreachable",
                }
            ],
        }
        return json_response(body, 503)
    return json_response({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus text format, unless disabled by configuration."""
    state = request.app.state.hellotext
    if not state.settings.metrics_enabled:
        return problem("not_found", None, "no such path", 404)
    return Response(
        state.metrics.render(),
        media_type=None,
        headers={"content-type": "text/plain; version=0.0.4; charset=utf-8"},
    )


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The hand-written contract, parsed once."""
    with OPENAPI_PATH.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 description, as JSON."""
    return json_response(openapi_document())


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/v1/openapi.json", openapi, methods=["GET"]),
]
