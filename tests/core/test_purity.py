"""The domain rules are plain Python (issue 2 acceptance 7; guide: data flows edge → domain → storage)."""

from __future__ import annotations

import ast
from pathlib import Path

import hellotext.core

CORE = Path(hellotext.core.__file__).parent
FORBIDDEN = (
    "starlette",
    "sqlalchemy",
    "uvicorn",
    "msgspec",
    "psycopg",
    "httpx",
    "alembic",
    "hellotext.server",
    "hellotext.store",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_framework_nor_storage() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) > 5  # the walk really sees the package
    offenders = {
        path.name: sorted(name for name in _imports(path) if name.startswith(FORBIDDEN)) for path in modules
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
