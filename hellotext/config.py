"""Settings, read once from ``HELLOTEXT_*`` environment variables, typed, failing fast."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from hellotext.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///hellotext.db"


def _mask_url(url: str) -> str:
    """Hide the password of a database URL for display."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Server configuration.

    Attributes:
        database_url: ``sqlite:///path`` (default ``./hellotext.db``) or ``postgresql://...``.
        database_schema: PostgreSQL schema to use (tests give each run its own); ``None`` = default.
        link_base_url: public origin for short links (``url`` of a link); ``None`` = the request's origin.
        metrics_enabled: serve ``GET /metrics``.
        redis_url: shared rate-limit store; ``None`` = in-process buckets.
        rate_limit_per_business: sustained requests/s per business on public endpoints (0 = off).
        rate_limit_per_address: sustained requests/s per client address on ``/v1`` (0 = off).
        rate_limit_burst_seconds: bucket size expressed in seconds of the sustained rate.
        request_timeout: seconds a request may take before it is answered 503.
        writer_batch_max: most work items committed in one group commit.
    """

    database_url: str = DEFAULT_DATABASE_URL
    database_schema: str | None = None
    link_base_url: str | None = None
    metrics_enabled: bool = True
    redis_url: str | None = field(default=None, repr=False)
    rate_limit_per_business: float = 0.0
    rate_limit_per_address: float = 0.0
    rate_limit_burst_seconds: float = 2.0
    request_timeout: float = 30.0
    writer_batch_max: int = 512

    def __repr__(self) -> str:
        return (
            f"Settings(database_url={_mask_url(self.database_url)!r}, "
            f"database_schema={self.database_schema!r}, link_base_url={self.link_base_url!r}, "
            f"metrics_enabled={self.metrics_enabled}, redis={'set' if self.redis_url else 'unset'})"
        )

    @property
    def is_postgres(self) -> bool:
        """Whether the database URL names PostgreSQL."""
        return self.database_url.startswith(("postgresql", "postgres://"))

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``HELLOTEXT_*`` variables.

        Raises:
            ConfigurationError: a variable is malformed.
        """
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(f"HELLOTEXT_{name}", "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigurationError(f"HELLOTEXT_{name} must be a number, got {raw!r}") from None
            if value < 0:
                raise ConfigurationError(f"HELLOTEXT_{name} must not be negative")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = text(name)
            if raw is None:
                return default
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ConfigurationError(f"HELLOTEXT_{name} must be true or false, got {raw!r}")

        url = text("DATABASE_URL") or DEFAULT_DATABASE_URL
        if not url.startswith(("sqlite:", "postgresql", "postgres://")):
            raise ConfigurationError("HELLOTEXT_DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        link_base = text("LINK_BASE_URL")
        if link_base is not None:
            if not link_base.startswith(("http://", "https://")):
                raise ConfigurationError("HELLOTEXT_LINK_BASE_URL must be an http(s) origin")
            link_base = link_base.rstrip("/")
        return cls(
            database_url=url,
            database_schema=text("DATABASE_SCHEMA"),
            link_base_url=link_base,
            metrics_enabled=flag("METRICS", True),
            redis_url=text("REDIS_URL"),
            rate_limit_per_business=number("RATE_LIMIT_PER_BUSINESS", 0.0),
            rate_limit_per_address=number("RATE_LIMIT_PER_ADDRESS", 0.0),
            rate_limit_burst_seconds=number("RATE_LIMIT_BURST_SECONDS", 2.0),
            request_timeout=number("REQUEST_TIMEOUT", 30.0),
            writer_batch_max=int(number("WRITER_BATCH_MAX", 512)) or 1,
        )
