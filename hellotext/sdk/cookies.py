"""Where a `Hellotext` keeps its cookies: a small protocol and two jars.

The browser SDK keeps the session and the identity in cookies (spec browser-sdk §5). A Python program has
no browser, so a `Hellotext` reads and writes the same names through a `CookieJar`:

- `MemoryCookieJar` (the default): a dict, for one process or one request;
- `FileCookieJar`: a JSON file, for a script or a device that must keep its session across runs; several
  processes may share one file, as browser tabs share cookies;
- the web middleware binds a jar to one request: it reads the ``Cookie`` header and turns writes into
  ``Set-Cookie`` headers (`hellotext.sdk.web.RequestCookieJar`).

Values are stored decoded; encoding for the wire is the middleware's business.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

try:  # POSIX: serialise writers of one file across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows keeps the in-process lock only
    fcntl = None  # type: ignore[assignment]

__all__ = ["CookieJar", "FileCookieJar", "MemoryCookieJar"]


@runtime_checkable
class CookieJar(Protocol):
    """Storage for the SDK's cookies (``hello_session``, ``hello_user_id`` ...), by name."""

    def get(self, name: str) -> str | None:
        """The value of cookie `name`, or ``None`` when it is not set."""
        ...

    def set(self, name: str, value: str) -> None:
        """Set cookie `name` to `value`."""
        ...

    def delete(self, name: str) -> None:
        """Remove cookie `name` (no error when it is not set)."""
        ...


class MemoryCookieJar:
    """Cookies in a dict: they live as long as the jar.

    Args:
        initial: cookies to start with.
    """

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._values: dict[str, str] = dict(initial or {})

    def get(self, name: str) -> str | None:
        """The value of cookie `name`, or ``None``."""
        return self._values.get(name)

    def set(self, name: str, value: str) -> None:
        """Set cookie `name`."""
        self._values[name] = value

    def delete(self, name: str) -> None:
        """Remove cookie `name`."""
        self._values.pop(name, None)

    def as_dict(self) -> dict[str, str]:
        """A copy of every cookie."""
        return dict(self._values)

    def __repr__(self) -> str:
        return f"MemoryCookieJar({sorted(self._values)})"


class FileCookieJar:
    """Cookies in a JSON file (an object of name → value), written atomically.

    Every write replaces the whole file through a temporary file and ``os.replace``, so a reader (another
    process, or this one after a crash) sees the old file or the new one, never half of one. Writers re-read
    the file under a lock first, so concurrent processes do not undo each other's changes. Every read goes
    to the file (it is small): a change made by another process is seen at once, as a browser tab sees a
    cookie written by another tab. (A cache keyed on the file's stamp would miss changes made within the
    file system's timestamp granularity.)

    Args:
        path: the file; created on the first write, with its directory. An unreadable or corrupt file reads
            as empty (the jar then behaves like a fresh browser).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock:
            if fcntl is None:
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".lock")
            with open(lock_path, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, values: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(values, handle, ensure_ascii=False, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get(self, name: str) -> str | None:
        """The value of cookie `name`, or ``None``."""
        with self._lock:
            return self._load().get(name)

    def set(self, name: str, value: str) -> None:
        """Set cookie `name` and write the file."""
        with self._exclusive():
            values = self._load()
            if values.get(name) == value:
                return
            values[name] = value
            self._write(values)

    def delete(self, name: str) -> None:
        """Remove cookie `name` and write the file."""
        with self._exclusive():
            values = self._load()
            if name not in values:
                return
            del values[name]
            self._write(values)

    def as_dict(self) -> dict[str, str]:
        """A copy of every cookie."""
        with self._lock:
            return self._load()

    def __repr__(self) -> str:
        return f"FileCookieJar({str(self.path)!r})"
