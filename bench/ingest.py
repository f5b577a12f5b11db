"""Ingest benchmark: durable single-event and batch ingest against a no-op endpoint on the same stack.

Prints, from one run on this machine:

1. requests/s of a no-op endpoint: a minimal Starlette app whose one POST route reads and parses the JSON
   body and answers ``{"status":"received"}``, served by uvicorn with the same worker count;
2. requests/s of ``POST /v1/track/events`` on a real ``hellotext serve --workers N`` with a fresh database
   (``page.viewed`` events with a url and a distinct session each), and its ratio to (1);
3. events/s of ``POST /v1/track/events/batch`` with 500 events per request.

After each measured run the events actually stored are counted in the database and compared with the
``200`` answers wrk saw (requests still in flight when wrk stops may be stored without being counted, so
the stored count may exceed the 200s by at most the number of connections).

Load comes from ``wrk`` (Debian package; installed with apt-get when missing), with a Lua script written to
a temporary file at run time. Everything runs on 127.0.0.1.

Usage::

    .venv/bin/python -m bench.ingest [--workers 2] [--engine sqlite|postgres] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("HELLOTEXT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
RECEIVED = b'{"status":"received"}'

# --------------------------------------------------------------------------------------------------------
# The no-op endpoint (imported by uvicorn's workers as ``bench.ingest:noop_app``)
# --------------------------------------------------------------------------------------------------------


async def _noop(request: Request) -> Response:
    """Read and parse the JSON body, answer like the ingest endpoint; store nothing."""
    body = msgspec.json.decode(await request.body())
    if not isinstance(body, dict):
        return Response(b'{"errors":[]}', status_code=422, media_type="application/json")
    return Response(RECEIVED, media_type="application/json")


noop_app = Starlette(routes=[Route("/v1/track/events", _noop, methods=["POST"])])

# --------------------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------------------

# Per-request bodies with a distinct session each. `setup` numbers the threads; `done` sums the status
# counts every thread kept, and prints one JSON line the benchmark parses.
LUA_COMMON = r"""
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  ok = 0
  other = 0
  prefix = args[1] .. "-" .. tid
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

local function event()
  counter = counter + 1
  return '{"action":"page.viewed","url":"https://shop.example.test/p/' .. counter ..
         '","session":"' .. prefix .. "-" .. counter .. '"}'
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    other_total = other_total + thread:get("other")
  end
  io.write(string.format(
    'WRKRESULT {"requests":%d,"duration_us":%d,"ok":%d,"other":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, ok_total, other_total, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

LUA_SINGLE = (
    LUA_COMMON
    + r"""
function request()
  return wrk.format(nil, "/v1/track/events", nil, event())
end
"""
)

LUA_BATCH = (
    LUA_COMMON
    + r"""
local size = 500

function request()
  local items = {}
  for i = 1, size do items[i] = event() end
  return wrk.format(nil, "/v1/track/events/batch", nil, '{"events":[' .. table.concat(items, ",") .. ']}')
end
"""
)


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run saw."""

    requests: int
    seconds: float
    ok: int
    other: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("could not install wrk")
    return found


def run_wrk(
    wrk: str, url: str, script: str, credential: str, *, duration: float, connections: int, threads: int
) -> WrkResult:
    """Run wrk with a Lua script for `duration` seconds and parse its result line."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            path,
            url,
            "--",
            secrets.token_hex(4),
            credential,
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    match = re.search(r"WRKRESULT (\{.*\})", output)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    data = json.loads(match.group(1))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        ok=data["ok"],
        other=data["other"],
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


# --------------------------------------------------------------------------------------------------------
# Servers and the database
# --------------------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until the server answers at all (any HTTP status)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def start_noop(workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """The no-op app on uvicorn with the options ``hellotext serve`` uses."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.ingest:noop_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/", proc)
    return proc, url


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group.

    Divided by the requests served, it gives the server's CPU cost per request: a figure that, unlike
    requests/s, barely moves when other programs compete for the CPUs.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        # After the command name: state, ppid, pgrp, ... utime is field 14 of stat(5), stime 15.
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group; SIGKILL if it lingers."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def database_env(engine: str, workdir: Path) -> dict[str, str]:
    """``HELLOTEXT_*`` variables for a fresh database of `engine`."""
    if engine == "sqlite":
        return {"HELLOTEXT_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}"}
    return {"HELLOTEXT_DATABASE_URL": PG_URL, "HELLOTEXT_DATABASE_SCHEMA": f"bench_{secrets.token_hex(4)}"}


def count_events(env: dict[str, str]) -> int:
    """Events stored, read by a fresh connection."""
    from sqlalchemy import func, select

    from hellotext.config import Settings
    from hellotext.store.engine import make_engines
    from hellotext.store.schema import events

    engines = make_engines(Settings.from_env(env))
    try:
        with engines.read.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    finally:
        engines.dispose()


def drop_schema(env: dict[str, str]) -> None:
    """Remove a PostgreSQL benchmark schema."""
    schema = env.get("HELLOTEXT_DATABASE_SCHEMA")
    if not schema:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from hellotext.config import Settings
    from hellotext.store.engine import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(Settings.from_env(env)), poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def create_business(env: dict[str, str]) -> str:
    """A business through the CLI (which also migrates); returns its public id."""
    result = subprocess.run(
        [sys.executable, "-m", "hellotext", "businesses", "create", "Bench", "--json"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    public_id: str = json.loads(result.stdout)["id"]
    return public_id


def start_hellotext(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``hellotext serve --workers N`` on 127.0.0.1."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "hellotext",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/health", proc)
    return proc, url


# --------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------


def describe(result: WrkResult) -> str:
    return (
        f"{result.ok} answered 200, {result.other} other, {result.socket_errors} socket errors; "
        f"latency p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    )


def check_stored(label: str, ok_events: int, stored: int, slack: int) -> bool:
    """Print the 200s and the stored count; they match when stored - ok is within the in-flight slack."""
    matches = 0 <= stored - ok_events <= slack
    verdict = "match" if matches else "MISMATCH"
    print(f"  {label}: events answered 200 = {ok_events}, events stored = {stored} ({verdict})")
    return matches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--batch-connections", type=int, default=8, help="wrk connections for the batch run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    load = {"connections": args.connections, "threads": args.threads}
    print(
        f"hellotext ingest benchmark: {args.engine}, {args.workers} workers, {args.duration:.0f} s per run, "
        f"wrk {args.threads} threads x {args.connections} connections, {os.cpu_count()} CPUs"
    )

    proc, url = start_noop(args.workers)
    try:
        run_wrk(wrk, url + "/v1/track/events", LUA_SINGLE, "x", duration=args.warmup, **load)
        cpu = cpu_seconds(proc.pid)
        noop = run_wrk(wrk, url + "/v1/track/events", LUA_SINGLE, "x", duration=args.duration, **load)
        noop_cpu = (cpu_seconds(proc.pid) - cpu) / max(1, noop.requests)
    finally:
        stop(proc)
    print(f"no-op endpoint (Starlette + uvicorn, parse JSON): {noop.ok_per_second:,.0f} requests/s")
    print(f"  {describe(noop)}; server CPU {noop_cpu * 1000:.3f} ms per request")

    ok = True
    with tempfile.TemporaryDirectory(prefix="hellotext-bench-") as workdir:
        env = database_env(args.engine, Path(workdir))
        try:
            credential = create_business(env)
            proc, url = start_hellotext(env, args.workers)
            try:
                endpoint = url + "/v1/track/events"
                run_wrk(wrk, endpoint, LUA_SINGLE, credential, duration=args.warmup, **load)
                before = count_events(env)
                cpu = cpu_seconds(proc.pid)
                single = run_wrk(wrk, endpoint, LUA_SINGLE, credential, duration=args.duration, **load)
                single_cpu = (cpu_seconds(proc.pid) - cpu) / max(1, single.requests)
                time.sleep(0.5)  # let requests that were in flight when wrk stopped finish
                after_single = count_events(env)

                batch_load = {"connections": args.batch_connections, "threads": args.threads}
                endpoint = url + "/v1/track/events/batch"
                cpu = cpu_seconds(proc.pid)
                batch = run_wrk(wrk, endpoint, LUA_BATCH, credential, duration=args.duration, **batch_load)
                batch_cpu = (cpu_seconds(proc.pid) - cpu) / max(1, batch.requests * 500)
                time.sleep(0.5)
                after_batch = count_events(env)
            finally:
                stop(proc)
        finally:
            drop_schema(env)

    ratio = single.ok_per_second / noop.ok_per_second
    print(f"single-event durable ingest ({args.engine}): {single.ok_per_second:,.0f} requests/s")
    print(f"  {describe(single)}; server CPU {single_cpu * 1000:.3f} ms per request")
    ok &= check_stored("single", single.ok, after_single - before, args.connections)
    print(
        f"ratio ingest / no-op: {ratio:.2f} (goal >= 0.6); server CPU per request, no-op / ingest: "
        f"{noop_cpu / single_cpu:.2f}"
    )
    batch_events = batch.ok * 500
    print(
        f"batch ingest ({args.engine}, 500 events per request): {batch_events / batch.seconds:,.0f} events/s "
        f"({batch.ok_per_second:,.1f} requests/s; goal >= 15,000 events/s)"
    )
    print(f"  {describe(batch)}; server CPU {batch_cpu * 1e6:.1f} µs per event")
    ok &= check_stored("batch", batch_events, after_batch - after_single, args.batch_connections * 500)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
