"""Running real hellotext servers on free ports, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from hellotext.config import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``HELLOTEXT_*`` variables that reproduce `settings` in a child process."""
    env = {"HELLOTEXT_DATABASE_URL": settings.database_url}
    if settings.database_schema:
        env["HELLOTEXT_DATABASE_SCHEMA"] = settings.database_schema
    if settings.link_base_url:
        env["HELLOTEXT_LINK_BASE_URL"] = settings.link_base_url
    if settings.redis_url:
        env["HELLOTEXT_REDIS_URL"] = settings.redis_url
    if settings.rate_limit_per_business:
        env["HELLOTEXT_RATE_LIMIT_PER_BUSINESS"] = str(settings.rate_limit_per_business)
    if settings.rate_limit_per_address:
        env["HELLOTEXT_RATE_LIMIT_PER_ADDRESS"] = str(settings.rate_limit_per_address)
    env["HELLOTEXT_RATE_LIMIT_BURST_SECONDS"] = str(settings.rate_limit_burst_seconds)
    env["HELLOTEXT_METRICS"] = "true" if settings.metrics_enabled else "false"
    return env


class ServerProcess:
    """``hellotext serve`` in a child process on 127.0.0.1.

    Args:
        settings: the database and options; passed as environment variables.
        workers: uvicorn worker processes.
        extra_env: more variables for the child.
        log_path: where the child's output goes (kept for post-mortems).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 1,
        extra_env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(extra_env or {})
        self.log_path = log_path
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start and wait until ``/health`` answers 200."""
        env = {**os.environ, **settings_env(self.settings), **self.extra_env}
        out: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
            out = self._log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hellotext",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--log-level",
                self.log_level,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become healthy in time")

    def kill(self) -> None:
        """SIGKILL the whole process group (workers included): a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            self._close_log()
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_log()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
