"""What every request handler shares: settings, database, authenticator, limits, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from hellotext.config import Settings
from hellotext.server.auth import Authenticator
from hellotext.server.limits import Limits
from hellotext.server.metrics import Metrics
from hellotext.store.database import Database


@dataclass
class AppState:
    """Shared, per-application state (never module-level)."""

    settings: Settings
    db: Database
    metrics: Metrics = field(default_factory=Metrics)
    auth: Authenticator = field(init=False)
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self)
        self.limits = Limits(self.settings)
