"""Web middleware (issue 6 acceptance 4; S1, S2, §5.2, §5.4): real Starlette, Flask and Django apps.

Each app is served for real (uvicorn in a thread; wsgiref in a thread; Django's WSGI handler in a child
process, so its global settings stay out of the test process) and driven over HTTP with a ``Host`` header
on ``shop.example.test``. The SDK's API calls go to the stand-in sink.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hellotext import DeliveryOptions, HellotextMiddleware, HellotextWSGIMiddleware
from hellotext.sdk.contrib.fastapi import get_hellotext, get_session
from hellotext.sdk.contrib.flask import current_hellotext, current_session, init_app
from hellotext.sdk.web import RequestCookieJar
from tests.sdk.sink import Sink
from tests.servers import free_port

HOST = "shop.example.test"
ROOT = Path(__file__).resolve().parents[2]
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SYNC = DeliveryOptions(sync=True, max_retries=0)


# -- serving real apps ----------------------------------------------------------------------------------


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """uvicorn in a thread on a free port (it trusts X-Forwarded-Proto from 127.0.0.1)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """wsgiref in a thread on a free port."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="wsgiref", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


DJANGO_APP = """
import os, sys
import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

def index(request):
    tracker = request.hellotext
    tracker.track("page.viewed", url=request.build_absolute_uri())
    if request.GET.get("identify"):
        tracker.identify(request.GET["identify"], source="web")
    return HttpResponse("session=" + str(request.hello_session))

settings.configure(
    DEBUG=False, SECRET_KEY="test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
    MIDDLEWARE=["hellotext.sdk.contrib.django.HellotextMiddleware"],
    HELLOTEXT={"BUSINESS_ID": "biz", "API_ROOT": os.environ["API_ROOT"],
               "DELIVERY": __import__("hellotext").DeliveryOptions(sync=True, max_retries=0)},
)
urlpatterns = [path("", index)]
django.setup()
if os.environ.get("BREAK_COOKIES"):
    import hellotext.sdk.contrib.django as adapter
    def broken(host):
        raise RuntimeError("injected failure")
    adapter.root_domain = broken

from django.core.wsgi import get_wsgi_application
from wsgiref.simple_server import WSGIRequestHandler, make_server

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", int(os.environ["PORT"]), get_wsgi_application(), handler_class=Quiet)
print("ready", flush=True)
server.serve_forever()
"""


@contextmanager
def serve_django(tmp_path: Path, api_root: str, *, break_cookies: bool = False) -> Iterator[str]:
    """A Django project (one view, the adapter in MIDDLEWARE) served by wsgiref in a child process."""
    script = tmp_path / "django_app.py"
    script.write_text(textwrap.dedent(DJANGO_APP))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "API_ROOT": api_root, "PORT": str(port)}
    if break_cookies:
        env["BREAK_COOKIES"] = "1"
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, cwd=tmp_path)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the apps -------------------------------------------------------------------------------------------


def starlette_app(api_root: str, **options: Any) -> tuple[Starlette, HellotextMiddleware]:
    async def index(request: Request) -> PlainTextResponse:
        tracker = get_hellotext(request)
        await tracker.track("page.viewed", url=str(request.url))
        if "identify" in request.query_params:
            await tracker.identify(request.query_params["identify"], source="web")
        return PlainTextResponse(f"session={get_session(request)}")

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"state={sorted(websocket.scope.get('state', {}))}")
        await websocket.close()

    app = Starlette(routes=[Route("/", index), WebSocketRoute("/ws", socket)])
    options.setdefault("delivery", SYNC)
    middleware = HellotextMiddleware(app, "biz", api_root=api_root, **options)
    return app, middleware


def flask_app(api_root: str, **options: Any) -> tuple[Flask, HellotextWSGIMiddleware]:
    app = Flask(__name__)
    options.setdefault("delivery", SYNC)
    middleware = init_app(app, "biz", api_root=api_root, **options)

    @app.get("/")
    def index() -> str:
        from flask import request

        tracker = current_hellotext()
        tracker.track("page.viewed", url=request.url)
        if "identify" in request.args:
            tracker.identify(request.args["identify"], source="web")
        return f"session={current_session()}"

    return app, middleware


@contextmanager
def served(
    kind: str, api_root: str, tmp_path: Path, *, break_cookies: bool = False, **options: Any
) -> Iterator[str]:
    if kind == "starlette":
        _, middleware = starlette_app(api_root, **options)
        with serve_asgi(middleware) as url:
            yield url
    elif kind == "flask":
        app, middleware = flask_app(api_root, **options)
        with serve_wsgi(app) as url:
            yield url
        middleware.close(5)
    else:
        with serve_django(tmp_path, api_root, break_cookies=break_cookies) as url:
            yield url


def get(url: str, path: str = "/", *, cookie: str | None = None, **headers: str) -> httpx.Response:
    sent = {"Host": HOST, **headers}
    if cookie is not None:
        sent["Cookie"] = cookie
    return httpx.get(url + path, headers=sent, timeout=30)


def cookies_set(response: httpx.Response) -> dict[str, str]:
    """name → the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def attributes(line: str) -> dict[str, str]:
    parts = [p.strip() for p in line.split(";")[1:]]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


KINDS = ["starlette", "flask", "django"]


# -- tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_session_from_the_url_is_set_on_the_root_domain_s1_s2(kind: str, sink: Sink, tmp_path: Path) -> None:
    """S1, S2, §5.2, §5.4: ?hello_session=abc → the app sees abc, the response sets hello_session=abc on
    .example.test for ten years, SameSite=Lax, not HttpOnly; the next request (cookie only) sees abc."""
    with served(kind, sink.api_root, tmp_path) as url:
        first = get(url, "/?hello_session=abc")
        assert first.status_code == 200 and first.text == "session=abc"
        line = cookies_set(first)["hello_session"]
        assert line.startswith("hello_session=abc;")
        attrs = attributes(line)
        assert attrs["domain"].lstrip(".") == "example.test"
        assert attrs["path"] == "/" and attrs["max-age"] == "315360000" and attrs["samesite"].lower() == "lax"
        assert "httponly" not in attrs and "secure" not in attrs

        second = get(url, "/", cookie="other=1; hello_session=abc")
        assert second.text == "session=abc"

        fresh = get(url, "/")
        minted = fresh.text.removeprefix("session=")
        assert UUID4.fullmatch(minted)
        assert cookies_set(fresh)["hello_session"].startswith(f"hello_session={minted};")
    assert [e["session"] for e in sink.events()] == ["abc", "abc", minted]  # the app's track calls
    assert sink.events()[0]["page"]["url"].endswith("/?hello_session=abc")


@pytest.mark.parametrize("kind", KINDS)
def test_identify_in_a_view_sets_the_identity_cookies_i6(kind: str, sink: Sink, tmp_path: Path) -> None:
    """I6: identify from a request writes hello_user_id/source/hash back to the browser as Set-Cookie."""
    with served(kind, sink.api_root, tmp_path) as url:
        response = get(url, "/?hello_session=abc&identify=user_1")
    names = cookies_set(response)
    assert names["hello_user_id"].startswith("hello_user_id=user_1;")
    assert names["hello_user_source"].startswith("hello_user_source=web;")
    assert names["hello_user_identification_hash"].startswith("hello_user_identification_hash=v1%3A")
    assert sink.posts("/v1/public/identifications")[0].body == {
        "source": "web",
        "session": "abc",
        "user_id": "user_1",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_tracking_failures_never_change_the_response(kind: str, sink: Sink, tmp_path: Path) -> None:
    """Style rule 4: with the API unreachable, track and identify fail quietly; the response is the same."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with served(kind, dead, tmp_path) as url:
        response = get(url, "/?hello_session=abc&identify=user_1")
    assert response.status_code == 200 and response.text == "session=abc"
    assert list(cookies_set(response)) == ["hello_session"]  # no identity cookie after a failed identify


@pytest.mark.parametrize("kind", KINDS)
def test_a_failure_building_the_cookie_leaves_the_response_alone(
    kind: str, sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Style rule 4: an exception inside the SDK's cookie writing (injected) → the app's response as is."""

    def broken(self: RequestCookieJar, **kwargs: Any) -> list[str]:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(RequestCookieJar, "set_cookie_headers", broken)
    with served(kind, sink.api_root, tmp_path, break_cookies=True) as url:
        response = get(url, "/?hello_session=abc")
    assert response.status_code == 200 and response.text == "session=abc"
    assert "hello_session" not in cookies_set(response)


def test_https_secure_host_only_copy_and_refresh_5_2(sink: Sink) -> None:
    """§5.2: Secure on https; a duplicate (host-only) copy is cleared first; refresh_cookie=False sends the
    cookie only when it changes."""
    _, middleware = starlette_app(sink.api_root, refresh_cookie=False)
    with serve_asgi(middleware) as url:
        secure = get(url, "/?hello_session=abc", **{"X-Forwarded-Proto": "https"})
        line = cookies_set(secure)["hello_session"]
        assert "secure" in attributes(line)
        unchanged = get(url, "/", cookie="hello_session=abc")
        assert unchanged.text == "session=abc" and "set-cookie" not in unchanged.headers
        duplicated = get(url, "/?hello_session=new", cookie="hello_session=old; hello_session=older")
        lines = duplicated.headers.get_list("set-cookie")
        assert len(lines) == 2
        assert "domain" not in attributes(lines[0]) and attributes(lines[0])["max-age"] == "0"
        assert lines[1].startswith("hello_session=new;") and attributes(lines[1])["domain"] == ".example.test"
        ip = get(url, "/?hello_session=abc", Host="127.0.0.1:8000")
        assert "domain" not in attributes(cookies_set(ip)["hello_session"])  # §5.4: IP hosts are host-only


def test_non_http_scopes_pass_through(sink: Sink) -> None:
    """Style rule 7: websocket (and lifespan) scopes go straight to the app, untouched."""
    from websockets.sync.client import connect

    _, middleware = starlette_app(sink.api_root)
    with serve_asgi(middleware) as url, connect(url.replace("http", "ws") + "/ws") as socket:
        assert socket.recv(timeout=10) == "state=[]"


def test_no_generation_sets_no_cookie_s3(sink: Sink) -> None:
    """S3: with auto_generate_session=False a request without a session gets none, and no cookie."""
    app, middleware = flask_app(sink.api_root, auto_generate_session=False)
    with serve_wsgi(app) as url:
        response = get(url)
    middleware.close(5)
    assert response.text == "session=None" and "set-cookie" not in response.headers
    assert "session" not in sink.events()[0]


def test_background_delivery_is_shared_and_flushed_at_shutdown(sink: Sink) -> None:
    """One delivery per app: requests never wait for it; lifespan shutdown flushes it in one batch."""
    options = DeliveryOptions(flush_interval=60)
    _, middleware = starlette_app(sink.api_root, delivery=options)
    with serve_asgi(middleware) as url:
        for n in range(5):
            get(url, f"/?hello_session=s{n}")
        assert sink.events() == []  # still queued: nothing blocked a request
    assert [e["session"] for e in sink.events()] == [f"s{n}" for n in range(5)]
    assert len(sink.posts("/v1/track/events/batch")) == 1
