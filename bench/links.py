"""Short-link benchmark: redirects/s of ``GET /l/{code}`` against a no-op endpoint on the same stack.

Usage::

    .venv/bin/python -m bench.links [--engine sqlite|postgres] [--workers 1] [--duration 5]
                                    [--connections 64] [--rounds 2]

What it does, all on 127.0.0.1:

1. starts a real hellotext server (``hellotext serve``, a fresh SQLite file or PostgreSQL schema) with a
   business, and times the creation of 10,000 links in one ``POST /v1/links/batch`` call;
2. creates one link with a profile and measures human clicks on it (each one a new session attached to
   the profile, a click count and an event, committed before the 302);
3. measures a no-op endpoint on the same stack (a one-route Starlette app served by uvicorn with the
   same worker count and options), in the same run, alternating rounds with 2;
4. prints redirects/s, no-op requests/s (best round of each) and their ratio (goal >= 0.6); also the
   preview-bot redirect (same route, no write) to separate the HTTP stack from the commit.

Load comes from ``wrk`` (Debian package; installed with apt-get when missing and possible) for a fixed
duration and connection count, or else from a multi-process Python client.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hellotext.config import Settings
from hellotext.store import businesses
from hellotext.store.database import Database
from hellotext.store.profiles import insert_profile
from tests.servers import ServerProcess, free_port

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) hellotext-bench"
BOT = "WhatsApp/2.24.1 (hellotext-bench)"
PG_URL = os.environ.get("HELLOTEXT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
GOAL = 0.6


def noop_app() -> Any:
    """The baseline: Starlette with one route that answers a fixed 302, touching nothing."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def noop(request: Request) -> Response:
        return Response(
            status_code=302,
            media_type=None,
            headers={"location": "https://shop.example.test/", "cache-control": "no-store"},
        )

    return Starlette(routes=[Route("/noop", noop, methods=["GET"])])


@dataclass
class Load:
    """One measurement."""

    requests_per_second: float
    requests: int
    errors: int  # answers >= 400 and socket errors
    tool: str
    timeouts: int = 0  # requests wrk gave up on (no answer within its 2 s timeout)


def ensure_wrk() -> str | None:
    """The path of wrk, installing Debian's package when missing and we may; ``None`` if unavailable."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, check=False)
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, duration: float, connections: int, agent: str) -> Load:
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "-H",
        f"User-Agent: {agent}",
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    timeouts = 0
    if socket_errors:
        connect, read, write, timeouts = (int(g) for g in socket_errors.groups())
        errors += connect + read + write
    return Load(rate, total, errors, "wrk", timeouts)


def _client_worker(host: str, port: int, path: str, deadline: float, agent: str, queue: Any) -> None:
    done = errors = 0
    conn = http.client.HTTPConnection(host, port, timeout=10)
    while time.time() < deadline:
        try:
            conn.request("GET", path, headers={"User-Agent": agent})
            response = conn.getresponse()
            response.read()
            if response.status >= 400:
                errors += 1
            done += 1
        except OSError:
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.close()
    queue.put((done, errors))


def run_python_client(url: str, duration: float, connections: int, agent: str) -> Load:
    """Fallback load: `connections` processes, one keep-alive connection each."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match is not None
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start = time.time()
    deadline = start + duration
    procs = [
        context.Process(target=_client_worker, args=(host, port, path, deadline, agent, queue))
        for _ in range(connections)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=duration + 60) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.time() - start
    done = sum(r[0] for r in results)
    return Load(done / elapsed, done, sum(r[1] for r in results), "python")


def measure(wrk: str | None, url: str, duration: float, connections: int, agent: str = USER_AGENT) -> Load:
    """Requests/s of GET `url` for `duration` seconds over `connections` keep-alive connections."""
    if wrk is not None:
        return run_wrk(wrk, url, duration, connections, agent)
    return run_python_client(url, duration, connections, agent)


class NoopServer:
    """The baseline app under uvicorn, with the options ``hellotext serve`` uses."""

    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NoopServer:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.links:noop_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(command, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/noop").status_code == 302:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("no-op server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)


def make_settings(engine: str, folder: Path) -> Settings:
    if engine == "postgres":
        return Settings(database_url=PG_URL, database_schema=f"bench_links_{secrets.token_hex(4)}")
    return Settings(database_url=f"sqlite:///{folder / 'bench.db'}")


def drop(settings: Settings) -> None:
    if settings.is_postgres and settings.database_schema:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        from hellotext.store.engine import sqlalchemy_url

        engine = create_engine(sqlalchemy_url(settings), poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (both servers)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each measurement")
    parser.add_argument("--python-client", action="store_true", help="do not use wrk")
    args = parser.parse_args(argv)

    wrk = None if args.python_client else ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="hellotext-bench-") as tmp:
        folder = Path(tmp)
        settings = make_settings(args.engine, folder)
        db = Database.open(settings)
        try:

            def setup(conn: Any) -> tuple[str, str]:
                business = businesses.create_business(conn, "Bench")
                token = businesses.create_token(conn, business)
                return token, insert_profile(conn, business.pk, time.time())

            token, profile = db.write_sync(setup)
        finally:
            db.close()

        server = ServerProcess(settings, workers=args.workers, log_path=folder / "server.log").start()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                items = [
                    {"destination": f"https://shop.example.test/p/{i}?ref=sms", "campaign": "bench"}
                    for i in range(10_000)
                ]
                started = time.perf_counter()
                response = client.post("/v1/links/batch", json={"links": items})
                batch_seconds = time.perf_counter() - started
                assert response.status_code == 201, response.text[:300]
                assert len(response.json()["links"]) == 10_000
                link = client.post(
                    "/v1/links",
                    json={
                        "destination": "https://shop.example.test/product?x=1#top",
                        "profile": profile,
                        "campaign": "bench",
                        "utm": {"source": "hellotext", "medium": "sms", "campaign": "bench"},
                    },
                ).json()

            redirects: list[Load] = []
            noops: list[Load] = []
            previews: list[Load] = []
            with NoopServer(args.workers) as noop:
                # Warm both up, then alternate so background load on the machine hits both alike.
                measure(wrk, f"{noop.url}/noop", 1, args.connections)
                measure(wrk, f"{server.url}/l/{link['code']}", 1, args.connections)
                for _ in range(args.rounds):
                    noops.append(measure(wrk, f"{noop.url}/noop", args.duration, args.connections))
                    redirects.append(
                        measure(wrk, f"{server.url}/l/{link['code']}", args.duration, args.connections)
                    )
                    previews.append(
                        measure(wrk, f"{server.url}/l/{link['code']}", args.duration, args.connections, BOT)
                    )
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                clicks = client.get(f"/v1/links/{link['id']}").json()["clicks"]
        finally:
            server.stop()
            drop(settings)
        # The server's own complaints, if any, before the temporary folder goes.
        log_lines = (folder / "server.log").read_text(errors="replace").splitlines()
        complaints = [line for line in log_lines if "error" in line.lower()]

    best_redirect = max(r.requests_per_second for r in redirects)
    best_noop = max(n.requests_per_second for n in noops)
    ratio = best_redirect / best_noop
    tool = redirects[0].tool
    print(
        f"engine: {args.engine}  workers: {args.workers}  load: {tool}, {args.connections} connections, "
        f"{args.duration:g} s x {args.rounds} rounds"
    )
    print(f"create 10,000 links (one batch call): {batch_seconds:.2f} s")
    for index, (n, r) in enumerate(zip(noops, redirects, strict=True), 1):
        print(
            f"round {index}: no-op {n.requests_per_second:,.0f} req/s ({n.errors} errors), "
            f"redirect {r.requests_per_second:,.0f} req/s ({r.errors} errors, {r.timeouts} over 2 s)"
        )
    median = statistics.median(r.requests_per_second for r in redirects)
    print(f"redirects/s: {best_redirect:,.0f} (median {median:,.0f})")
    print(f"no-op req/s: {best_noop:,.0f}")
    best_preview = max(p.requests_per_second for p in previews)
    print(
        f"preview redirects/s (no write, same route): {best_preview:,.0f} "
        f"({best_preview / best_noop:.2f} of no-op)"
    )
    print(f"ratio redirect/no-op: {ratio:.2f} (goal >= {GOAL})")
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    if complaints:
        print(f"server log: {len(complaints)} error lines, last: {complaints[-1][:200]}")
    print(f"clicks recorded on the link: {clicks} (human redirects answered, warm-up included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
