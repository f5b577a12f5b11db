"""SDK fixtures: a stand-in API sink in a thread (see `tests.sdk.sink`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sdk.sink import Sink, running_sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A real HTTP sink on a free port of 127.0.0.1 that answers like the hellotext API."""
    with running_sink() as value:
        yield value
