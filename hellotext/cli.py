"""The ``hellotext`` command: a thin layer over the server and the store.

Every command that prints takes ``--json`` for machine-readable output. Errors are translated in one
place (`main`): a `HellotextError` becomes a message on stderr and exit status 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hellotext.config import Settings
from hellotext.errors import HellotextError


def _settings() -> Settings:
    return Settings.from_env()


def _emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


def _open_db() -> Any:
    from hellotext.store.database import Database

    return Database.open(_settings())


@click.group()
@click.version_option(package_name="hellotext")
def cli() -> None:
    """hellotext: self-hosted session and identity tracking."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@click.option("--demo", is_flag=True, help='Create (or reuse) a business named "Demo" and print credentials.')
@click.option("--log-level", default="info", show_default=True, help="uvicorn log level.")
def serve(host: str, port: int, workers: int, demo: bool, log_level: str) -> None:
    """Run the server (migrations run first)."""
    import uvicorn

    from hellotext.store import businesses
    from hellotext.store.migrate import migrate

    settings = _settings()
    migrate(settings)
    if demo:
        db = _open_db()
        try:
            business = db.read_sync(lambda c: businesses.find_business_by_name(c, "Demo"))
            if business is None:
                business = db.write_sync(lambda c: businesses.create_business(c, "Demo"))
            token = db.write_sync(lambda c: businesses.create_token(c, business))
        finally:
            db.close()
        click.echo(f"Demo business public id: {business.public_id}")
        click.echo(f"Demo secret token:       {token}")
        click.echo(f"Demo page:               http://{host}:{port}/demo")
    uvicorn.run(
        "hellotext.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        log_level=log_level,
        access_log=False,
    )


@cli.command("migrate")
def migrate_command() -> None:
    """Bring the database to the newest schema."""
    from hellotext.store.migrate import migrate

    migrate(_settings())
    click.echo("database is up to date")


@cli.group("businesses")
def businesses_group() -> None:
    """Create and list businesses."""


@businesses_group.command("create")
@click.argument("name")
@click.option("--origin", "origins", multiple=True, help="Allowed browser origin (repeatable).")
@click.option(
    "--public-id", default=None, help="Set the public id explicitly (keeps existing pages working)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def businesses_create(name: str, origins: tuple[str, ...], public_id: str | None, as_json: bool) -> None:
    """Create a business and its first secret token."""
    import re

    from hellotext.store import businesses

    if public_id is not None and (
        not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", public_id) or public_id.startswith("htsk_")
    ):
        raise click.BadParameter(
            "1-64 characters of [A-Za-z0-9_-], not starting with htsk_", param_hint="--public-id"
        )
    db = _open_db()
    try:

        def unit(conn: Any) -> tuple[Any, str]:
            business = businesses.create_business(conn, name, public_id=public_id, origins=list(origins))
            return business, businesses.create_token(conn, business)

        business, token = db.write_sync(unit)
    finally:
        db.close()
    data = {"id": business.public_id, "name": business.name, "token": token}
    _emit(as_json, data, f"{business.public_id}\t{business.name}\t{token}")


@businesses_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def businesses_list(as_json: bool) -> None:
    """List businesses."""
    from hellotext.store import businesses

    db = _open_db()
    try:
        rows = db.read_sync(businesses.list_businesses)
    finally:
        db.close()
    data = [{"id": b.public_id, "name": b.name, "whitelist": b.public_settings()["whitelist"]} for b in rows]
    _emit(as_json, data, "\n".join(f"{b.public_id}\t{b.name}" for b in rows))


@cli.group("tokens")
def tokens_group() -> None:
    """Create and revoke secret tokens."""


@tokens_group.command("create")
@click.argument("business_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tokens_create(business_id: str, as_json: bool) -> None:
    """Mint a secret token for BUSINESS_ID (its public id); shown once."""
    from hellotext.store import businesses

    db = _open_db()
    try:
        business = db.read_sync(lambda c: businesses.business_by_public_id(c, business_id))
        if business is None:
            raise click.ClickException(f"no business with id {business_id}")
        token = db.write_sync(lambda c: businesses.create_token(c, business))
    finally:
        db.close()
    _emit(as_json, {"token": token}, token)


@tokens_group.command("revoke")
@click.argument("token")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tokens_revoke(token: str, as_json: bool) -> None:
    """Revoke TOKEN; it stops working on the next request."""
    from hellotext.store import businesses

    db = _open_db()
    try:
        revoked = db.write_sync(lambda c: businesses.revoke_token(c, token))
    finally:
        db.close()
    if not revoked:
        raise click.ClickException("unknown or already revoked token")
    _emit(as_json, {"revoked": True}, "revoked")


@cli.group("links")
def links_group() -> None:
    """Create short links."""


@links_group.command("create")
@click.argument("business_id")
@click.argument("destination")
@click.option("--profile", default=None, help="Profile id: each click attaches a fresh session to it.")
@click.option("--campaign", default=None, help="Campaign name (recorded with every click).")
@click.option(
    "--base-url",
    default=None,
    help="Origin the link is served from; default HELLOTEXT_LINK_BASE_URL, else the url is /l/CODE.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the link object).")
def links_create(
    business_id: str,
    destination: str,
    profile: str | None,
    campaign: str | None,
    base_url: str | None,
    as_json: bool,
) -> None:
    """Create a short link to DESTINATION for BUSINESS_ID (its public id)."""
    import time

    from hellotext.core.links import parse_link
    from hellotext.store import businesses
    from hellotext.store.links import clash_errors, create_links

    base = (base_url or _settings().link_base_url or "").rstrip("/")
    if base and not base.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) origin", param_hint="--base-url")
    spec = parse_link(
        {"destination": destination, "profile": profile, "campaign": campaign}, [base] if base else []
    )
    db = _open_db()
    try:
        business = db.read_sync(lambda c: businesses.business_by_public_id(c, business_id))
        if business is None:
            raise click.ClickException(f"no business with id {business_id}")
        for attempt in range(3):  # a drawn code that exists already fails the insert: draw again
            try:
                [link] = db.write_sync(lambda c: create_links(c, business.pk, [spec], time.time()))
                break
            except clash_errors(db):
                if attempt == 2:
                    raise
    finally:
        db.close()
    data = link.as_json(base)
    _emit(as_json, data, f"{data['url']}\t{data['id']}")


@cli.group("profiles")
def profiles_group() -> None:
    """Manage profiles."""


@profiles_group.command("erase")
@click.argument("business_id")
@click.argument("profile_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (what was removed).")
def profiles_erase(business_id: str, profile_id: str, as_json: bool) -> None:
    """Erase PROFILE_ID of BUSINESS_ID (its public id): the profile, its identities, sessions and events."""
    from hellotext.store import businesses
    from hellotext.store.erasure import erase_profile

    db = _open_db()
    try:
        business = db.read_sync(lambda c: businesses.business_by_public_id(c, business_id))
        if business is None:
            raise click.ClickException(f"no business with id {business_id}")
        erased = db.write_sync(lambda c: erase_profile(c, business.pk, profile_id))
    finally:
        db.close()
    if erased is None:
        raise click.ClickException(f"no profile with id {profile_id}")
    text = (
        f"erased {profile_id}: {erased.events} events, {erased.sessions} sessions, "
        f"{erased.identities} identities"
    )
    _emit(as_json, erased.as_json(), text)


def main() -> None:
    """Entry point: run the CLI, turning our errors into a message and exit status 1."""
    try:
        cli(standalone_mode=True)
    except HellotextError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
