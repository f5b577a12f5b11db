"""The SDK's public surface (style rule 1) and the base install (issue 6 acceptance 5)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import tomllib
import venv
from pathlib import Path

import pytest

import hellotext
from tests.sdk.sink import Sink

ROOT = Path(__file__).resolve().parents[2]


def test_all_is_sorted_and_complete() -> None:
    """`hellotext.__all__` is sorted, names only what the module defines publicly, and misses none."""
    assert hellotext.__all__ == sorted(hellotext.__all__)
    defined = {
        name
        for name, value in vars(hellotext).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(hellotext.__all__) == defined | {"__version__"}
    for name in hellotext.__all__:
        assert getattr(hellotext, name) is not None
        if inspect.isclass(getattr(hellotext, name)):
            assert getattr(hellotext, name).__doc__, f"{name} has no docstring"


def test_the_sdk_names_the_issue_asks_for_are_exported() -> None:
    """Issue 6: the tracker, the client, the jars, the middlewares and the typed errors."""
    wanted = {
        "Hellotext",
        "AsyncHellotext",
        "Client",
        "AsyncClient",
        "CookieJar",
        "MemoryCookieJar",
        "FileCookieJar",
        "HellotextMiddleware",
        "HellotextWSGIMiddleware",
        "HellotextError",
        "IdentityConflict",
        "NotFound",
        "ValidationFailed",
        "Unauthorized",
        "RateLimited",
        "APIError",
    }
    assert wanted <= set(hellotext.__all__)
    assert issubclass(hellotext.RateLimited, hellotext.APIError)
    assert all(
        issubclass(getattr(hellotext, n), hellotext.HellotextError)
        for n in wanted
        if n.endswith(("Error", "Conflict", "Found", "Failed", "Unauthorized", "Limited"))
    )


def test_version_matches_the_project() -> None:
    """`__version__` is the version pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert hellotext.__version__ == project["version"]


def test_importing_hellotext_needs_no_server_dependency() -> None:
    """The base install: importing hellotext loads neither starlette, msgspec, sqlalchemy nor the server."""
    heavy = ("starlette", "msgspec", "sqlalchemy", "uvicorn", "hellotext.server", "hellotext.store")
    code = (
        f"import sys, hellotext; found = [m for m in {heavy!r} if m in sys.modules]; assert not found, found"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


SCRIPT = """
import importlib.util, sys
assert importlib.util.find_spec("starlette") is None, "starlette must not be installed"
assert importlib.util.find_spec("sqlalchemy") is None, "sqlalchemy must not be installed"
import hellotext
from hellotext import Client, DeliveryOptions, Hellotext, MemoryCookieJar, NotFound

api = sys.argv[1]
jar = MemoryCookieJar()
with Hellotext("biz", api_root=api, cookies=jar, delivery=DeliveryOptions(sync=True), debug=True) as tracker:
    tracker.track("page.viewed", url="https://shop.example.com/")
    assert tracker.identify("user_1", source="web").succeeded
with Client("htsk_x", api_root=api) as client:
    try:
        client.sessions.get("abc")
    except NotFound:
        pass
    else:
        raise AssertionError("expected NotFound")
print("ok", hellotext.__version__, jar.get("hello_user_identification_hash"))
"""


@pytest.mark.slow
def test_pip_install_without_extras_runs_the_sdk(tmp_path: Path, sink: Sink) -> None:
    """`pip install .` (no extras, httpx from the index) imports hellotext and runs the SDK end to end."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    build = tmp_path / "src"
    # Install from a clean copy of the tracked files, so files other work leaves around do not leak in.
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True
    ).stdout
    for name in filter(None, archive.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = build / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(build)],
        capture_output=True,
        timeout=600,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr.decode()[-3000:]
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, env=env, check=True)
    packages = {line.split("==")[0].lower() for line in frozen.stdout.decode().split()}
    assert "httpx" in packages and "starlette" not in packages and "msgspec" not in packages
    script = tmp_path / "run_sdk.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run(
        [str(python), str(script), sink.api_root], capture_output=True, timeout=120, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert done.stdout.decode().startswith(f"ok {hellotext.__version__} v1:")
    assert len(sink.events()) == 1 and len(sink.posts("/v1/public/identifications")) == 1
