"""A small real HTTP server on 127.0.0.1 standing in for the API where the real server cannot be made to
answer as a test needs (a 429, a 503, a hang, a conflict on the first identification).

It answers like the hellotext server by default: ``POST /v1/track/events/batch`` → ``{"results": [...]}``,
``POST /v1/track/events`` → ``{"status": "received"}``, ``POST /v1/public/identifications`` → identified.
A test changes an answer by setting `Sink.script` (a function of the request returning an `Answer`, or
``None`` for the default). Requests are recorded in `Sink.requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATIC = Path(__file__).resolve().parents[2] / "hellotext" / "server" / "static"


@dataclass
class Seen:
    """One request the sink received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    """What to answer: a status, a JSON body (or raw bytes), headers, and an optional delay first."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


@dataclass
class Sink:
    """The sink's address, what it received, and how it answers."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    script: Callable[[Seen], Answer | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    page: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_root(self) -> str:
        return self.url + "/v1"

    def events(self) -> list[dict[str, Any]]:
        """Every event received through the batch and single-event endpoints, in arrival order."""
        out: list[dict[str, Any]] = []
        with self.lock:
            for seen in self.requests:
                if seen.path == "/v1/track/events/batch":
                    out.extend(seen.body["events"])
                elif seen.path == "/v1/track/events":
                    out.append(seen.body)
        return out

    def posts(self, path: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.requests if seen.method == "POST" and seen.path == path]


def default_answer(seen: Seen) -> Answer:
    if seen.method == "POST" and seen.path == "/v1/track/events/batch":
        return Answer(body={"results": [{"status": "received"} for _ in seen.body["events"]]})
    if seen.method == "POST" and seen.path == "/v1/track/events":
        return Answer(body={"status": "received"})
    if seen.method == "POST" and seen.path == "/v1/public/identifications":
        session = seen.body.get("session") if isinstance(seen.body, dict) else None
        return Answer(
            body={
                "status": "identified",
                "session": session,
                "session_attached": session is not None,
                "session_conflict": False,
            }
        )
    return Answer(status=404, body={"errors": [{"type": "not_found", "parameter": None}]})


def _handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real clients use it

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, answer: Answer) -> None:
            if answer.delay:
                time.sleep(answer.delay)
            payload = answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            content_type = "application/json" if answer.raw is None else "text/html; charset=utf-8"
            self.send_header("Content-Type", answer.headers.get("Content-Type", content_type))
            for key, value in answer.headers.items():
                if key != "Content-Type":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/hellotext.js":
                body = (STATIC / "hellotext.js").read_bytes()
                self._answer(Answer(raw=body, headers={"Content-Type": "application/javascript"}))
            elif path == "/":
                self._answer(Answer(raw=sink.page.encode()))
            else:
                self._handle("GET", b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._handle("POST", self.rfile.read(length))

        def _handle(self, method: str, raw: bytes) -> None:
            seen = Seen(
                method,
                urlsplit(self.path).path,
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            with sink.lock:
                sink.requests.append(seen)
            answer = sink.script(seen) if sink.script else None
            self._answer(answer or default_answer(seen))

    return Handler


@contextmanager
def running_sink(port: int = 0) -> Iterator[Sink]:
    """Start a sink on 127.0.0.1 (a free port unless given) in a thread; stop it afterwards."""
    sink = Sink()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(sink))
    httpd.daemon_threads = True
    sink.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
