"""The documentation keeps up with the code (house style 11; issue 2: the README's two set-up commands).

- every ``hellotext`` command (the click group walked recursively) has a section in ``docs/cli.md`` that
  names each of its options and arguments;
- the README gives the two commands, ``scripts/serve`` and ``scripts/test``, and both scripts exist and are
  executable; ``.ci/run`` runs the test command;
- the README's configuration table lists every ``HELLOTEXT_*`` variable `Settings.from_env` reads;
- ``docs/api.md`` names every path of the OpenAPI document.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from hellotext.cli import cli
from hellotext.server.routes.health import OPENAPI_PATH

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """Every leaf command as (``"businesses create"``, command)."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield " ".join(path), command


def section(text: str, name: str) -> str | None:
    """The part of docs/cli.md under the heading ``## `hellotext NAME` `` (up to the next ``## ``)."""
    match = re.search(rf"^## `hellotext {re.escape(name)}`\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return None if match is None else match.group(1)


ALL_COMMANDS = sorted(name for name, _ in commands(cli))


def test_the_cli_has_the_documented_shape() -> None:
    """The walk finds the commands issue 2 and its neighbours ask for (so the test below has work to do)."""
    assert {
        "serve",
        "migrate",
        "businesses create",
        "businesses list",
        "tokens create",
        "tokens revoke",
    } <= set(ALL_COMMANDS)


@pytest.mark.parametrize("name", ALL_COMMANDS)
def test_every_command_is_documented(name: str) -> None:
    """Style 11: each command has its section in docs/cli.md, naming every option and argument."""
    text = CLI_DOC.read_text(encoding="utf-8")
    body = section(text, name)
    assert body is not None, f"docs/cli.md has no section '## `hellotext {name}`'"
    command = dict(commands(cli))[name]
    assert command.help, f"hellotext {name} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            if longest == "--help":
                continue
            assert longest in body, f"hellotext {name}: option {longest} is not documented"
        elif isinstance(param, click.Argument):
            metavar = (param.name or "").upper()
            assert metavar in body, f"hellotext {name}: argument {metavar} is not documented"


def test_readme_gives_the_two_commands() -> None:
    """Issue 2: the README's two set-up commands, in their own code blocks; the scripts exist and run."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert "scripts/serve\n" in blocks
    assert "scripts/test\n" in blocks
    for script in ("scripts/serve", "scripts/test", ".ci/run"):
        path = ROOT / script
        assert path.is_file() and os.access(path, os.X_OK), script
    serve = (ROOT / "scripts" / "serve").read_text(encoding="utf-8")
    assert "serve --demo" in serve
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_tour_records_an_event_exactly() -> None:
    """Issue 2 acceptance 1: the tour's curl posts to /v1/track/events and shows the exact answer."""
    text = README.read_text(encoding="utf-8")
    assert re.search(r"curl -i \$API/v1/track/events", text)
    assert '# {"status":"received"}' in text


def test_readme_lists_every_setting() -> None:
    """Style 6: every HELLOTEXT_* variable the server reads appears in the README's configuration table."""
    config = (ROOT / "hellotext" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r'\b(?:text|number|flag)\("([A-Z_]+)"', config))
    assert {"DATABASE_URL", "METRICS"} <= names
    readme = README.read_text(encoding="utf-8")
    missing = sorted(name for name in names if f"| `HELLOTEXT_{name}` |" not in readme)
    assert missing == []


def test_api_doc_names_every_path() -> None:
    """Architecture: every endpoint appears in docs/ (docs/api.md names each path of the contract)."""
    document = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = sorted(path for path in document["paths"] if path not in text)
    assert missing == []


@pytest.mark.parametrize("page", ["api.md", "cli.md", "operations.md", "architecture.md"])
def test_doc_links_resolve(page: str) -> None:
    """Relative links between the docs point at files that exist."""
    base = ROOT / "docs"
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", (base / page).read_text(encoding="utf-8")):
        if target.endswith("sdk.md"):
            continue  # written by the SDK's author; may land later
        assert (base / target).exists(), f"{page} links to missing {target}"
