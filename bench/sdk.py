"""The Python SDK's background tracking next to posthog-python's and Segment's, against one local sink.

    .venv/bin/python bench/sdk.py [--events 50000] [--repeat 3] [--venv DIR]

It creates a scratch virtualenv in a temporary folder (or reuses ``--venv``), installs ``posthog``,
``segment-analytics-python`` and ``httpx`` there from the package index, and runs each SDK in a fresh
process of that virtualenv (ours from this checkout, through ``PYTHONPATH``). All three send to the same
sink: a small asyncio HTTP/1.1 server in its own process on 127.0.0.1 that accepts every POST, counts the
events in it and answers as each API would (ours: ``{"results": [{"status": "received"}, ...]}``, like
``POST /v1/track/events/batch``).

Measured per SDK, default settings except a queue large enough to hold every event (so none is dropped):

- **track call**: wall time of N ``track``/``capture`` calls on the caller's thread, divided by N (µs per
  call; the SDK's worker thread runs meanwhile, as in a web app);
- **delivered events/s**: N divided by the time from the first call until the sink has counted all N
  events (after the SDK's ``flush``, so nobody waits out a timer).

The median of ``--repeat`` runs is reported, with the ratios the issue asks about: our delivered events/s
over each peer's (goal ≥ 2), and our call cost over each peer's (goal ≤ 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = ["posthog", "segment-analytics-python"]
SDKS = ["hellotext", "posthog", "segment"]


# -- the sink (runs in its own process) ------------------------------------------------------------------


def run_sink(port: int) -> None:
    """Serve until killed: count events per POST, answer like each API; GET /count, POST /reset."""
    counts = {"events": 0}

    def answer(path: str, body: bytes) -> bytes:
        if path == "/count":
            return json.dumps(counts).encode()
        if path == "/reset":
            counts["events"] = 0
            return b"{}"
        data = json.loads(body)
        if path == "/v1/track/events/batch":
            n = len(data["events"])
            counts["events"] += n
            return b'{"results":[' + b",".join([b'{"status":"received"}'] * n) + b"]}"
        counts["events"] += len(data.get("batch", []))
        return b'{"status":1,"success":true}'

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                _method, target, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    key, _, value = line.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                payload = answer(target.split("?", 1)[0], body)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- one SDK run (runs in the scratch virtualenv) --------------------------------------------------------


def _sink_call(sink: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(sink + path, data=b"" if path == "/reset" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def run_sdk(name: str, sink: str, events: int) -> None:
    """Track `events` events with one SDK and print {"call_us", "delivered_per_s", "received"} as JSON."""
    properties = {"url": "https://shop.example.com/p/1", "plan": "gold"}
    if name == "hellotext":
        from hellotext import DeliveryOptions, Hellotext, MemoryCookieJar

        jar = MemoryCookieJar({"hello_user_id": "user-1", "hello_user_source": "web"})
        client: Any = Hellotext(
            "biz", api_root=sink + "/v1", cookies=jar, delivery=DeliveryOptions(max_queue=events + 1000)
        )

        def track(n: int) -> None:
            client.track("page.viewed", url=properties["url"], metadata={"plan": "gold", "n": n})

        def flush() -> None:
            client.flush()

        version = "this checkout"
    elif name == "posthog":
        import posthog

        client = posthog.Posthog("phc_bench", host=sink, max_queue_size=events + 1000)

        def track(n: int) -> None:
            client.capture("page.viewed", distinct_id="user-1", properties={**properties, "n": n})

        def flush() -> None:
            client.flush()

        version = posthog.VERSION
    else:
        from segment.analytics import Client as SegmentClient
        from segment.analytics.version import VERSION as segment_version

        client = SegmentClient("write-key", host=sink, max_queue_size=events + 1000)

        def track(n: int) -> None:
            client.track(user_id="user-1", event="page.viewed", properties={**properties, "n": n})

        def flush() -> None:
            client.flush()

        version = segment_version

    for n in range(200):  # warm up: connections, imports, the worker thread
        track(n)
    flush()
    deadline = time.monotonic() + 60
    while _sink_call(sink, "/count")["events"] < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    _sink_call(sink, "/reset")

    started = time.perf_counter()
    for n in range(events):
        track(n)
    called = time.perf_counter()
    flush()
    deadline = time.monotonic() + 300
    received = 0
    while time.monotonic() < deadline:
        received = _sink_call(sink, "/count")["events"]
        if received >= events:
            break
        time.sleep(0.005)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "version": version,
                "call_us": (called - started) / events * 1e6,
                "delivered_per_s": received / (done - started),
                "received": received,
            }
        ),
        flush=True,
    )
    os._exit(0)  # skip the SDKs' exit-time flushes: everything was delivered


# -- the driver ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEERS, "httpx"],
        check=True,
    )
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per run (default 50000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per SDK; the median is reported")
    parser.add_argument("--venv", type=Path, help="reuse this virtualenv instead of a temporary one")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", choices=SDKS, help=argparse.SUPPRESS)
    parser.add_argument("--sink-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink is not None:
        run_sink(args.sink)
        return
    if args.run is not None:
        run_sdk(args.run, args.sink_url, args.events)
        return

    scratch = None if args.venv else Path(tempfile.mkdtemp(prefix="hellotext-bench-"))
    try:
        python = make_venv(args.venv or scratch / "venv")  # type: ignore[operator]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        port = free_port()
        sink = subprocess.Popen(
            [str(python), __file__, "--sink", str(port)], stdout=subprocess.PIPE, env=env, text=True
        )
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            url = f"http://127.0.0.1:{port}"
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in SDKS}
            for round_ in range(args.repeat):
                for name in SDKS:
                    out = subprocess.run(
                        [
                            str(python),
                            __file__,
                            "--run",
                            name,
                            "--sink-url",
                            url,
                            "--events",
                            str(args.events),
                        ],
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=900,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
                    results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"round {round_ + 1}/{args.repeat} done", file=sys.stderr, flush=True)
        finally:
            sink.kill()
            sink.wait()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report(results, args.events)


def report(results: dict[str, list[dict[str, Any]]], events: int) -> None:
    labels = {"hellotext": "hellotext", "posthog": "posthog", "segment": "segment-analytics-python"}
    median: dict[str, dict[str, float]] = {}
    print(f"\n{events} events per run, median of {len(results['hellotext'])} runs; sink on 127.0.0.1\n")
    print(f"{'SDK':<40} {'track call (µs)':>16} {'delivered events/s':>19} {'received':>10}")
    for name in SDKS:
        runs = results[name]
        median[name] = {
            "call": statistics.median(r["call_us"] for r in runs),
            "rate": statistics.median(r["delivered_per_s"] for r in runs),
        }
        received = min(r["received"] for r in runs)
        label = f"{labels[name]} {runs[0]['version']}"
        print(f"{label:<40} {median[name]['call']:>16.2f} {median[name]['rate']:>19,.0f} {received:>10}")
    ours = median["hellotext"]
    print()
    for name in ("posthog", "segment"):
        rate = ours["rate"] / median[name]["rate"]
        call = ours["call"] / median[name]["call"]
        print(
            f"vs {labels[name]:<26} delivered x{rate:.2f} (goal >= 2: {'met' if rate >= 2 else 'NOT met'}), "
            f"call cost x{call:.2f} (goal <= 1: {'met' if call <= 1 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
