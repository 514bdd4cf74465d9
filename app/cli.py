"""The ``studio`` command (SPEC §2): serve, worker, migrate, seed, token, purge and schema.

Every command works with the configured ``DATABASE_URL`` and, without it, with the embedded
PostgreSQL in ``STUDIO_DATA_DIR`` — started for the command and stopped after it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alembic import command as alembic_command
from app.auth import issue_access_token
from app.errors import StudioError
from app.logging import configure_logging
from app.purge import PurgeReport, parse_age
from app.purge import purge as purge_media
from app.settings import Environment, Settings, SettingsError, load_settings
from app.worker.process import run_worker_process
from db import migrations
from db.embedded import EmbeddedPostgres
from db.engine import create_engine, create_sessionmaker
from db.integrity import constraint_errors
from db.queries.users import ensure_user
from db.seed import seed as seed_database
from db.url import DatabaseURL
from schema import print_schema

cli = typer.Typer(
    name="studio",
    help="Studio API: the GraphQL backend of a video-generation studio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
migrate_cli = typer.Typer(
    help="Apply, revert and inspect database migrations.", no_args_is_help=True
)
cli.add_typer(migrate_cli, name="migrate")

console = Console(stderr=True)


def main() -> None:
    # SIGTERM ends a command like Ctrl-C does, so `finally` blocks run and the embedded server
    # is let go of. (uvicorn installs its own handlers while it serves.)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        cli(prog_name="studio")
    except KeyboardInterrupt:
        sys.exit(130)
    except SettingsError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except StudioError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        sys.exit(1)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Number of API processes.")] = 1,
    reload: Annotated[
        bool, typer.Option(help="Restart when the code changes (development).")
    ] = False,
) -> None:
    """Start the API (GraphQL, /healthz, /readyz).

    Without DATABASE_URL, an embedded PostgreSQL is started in STUDIO_DATA_DIR and migrated.
    """
    settings = _settings()
    with _database(settings) as database:
        if settings.run_migrations_on_start:
            asyncio.run(migrations.upgrade_if_behind(_direct(settings, database)))
        # The API processes read their configuration from the environment: hand the resolved
        # database and worker choice down to them.
        os.environ["DATABASE_URL"] = database.render(hide_password=False)
        os.environ["STUDIO_INPROCESS_WORKER"] = str(settings.run_inprocess_worker).lower()
        os.environ.setdefault("STUDIO_GC_FREEZE", "true")  # one application per process
        console.print(f"Studio API on http://{host}:{port}  (database: {database.redacted()})")
        raise_open_file_limit()
        with _stopped_by_signal_is_success():
            uvicorn.run(
                "app.main:create_app",
                factory=True,
                host=host,
                port=port,
                workers=None if reload else workers,
                reload=reload,
                reload_dirs=["app", "schema", "db"] if reload else None,
                log_config=None,
                proxy_headers=True,
                server_header=False,
                # A larger websocket frame is refused (1009) before it is read whole.
                ws_max_size=settings.ws_max_message_bytes,
                # httptools with a bound on request heads (431), which h11 keeps as well.
                http="app.server_protocol:HeadLimitedHttpToolsProtocol",
                h11_max_incomplete_event_size=settings.max_header_bytes,
            )


#: The open-file limit `raise_open_file_limit` asks for when the hard limit is unlimited.
OPEN_FILES_WANTED = 1_048_576


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit, and return it: every
    websocket holds a file, and a soft limit of 1,024 (common) would cap the process at about a
    thousand subscribers' sockets (README, "Live progress at scale")."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # e.g. above the kernel's nr_open: keep what there is
            return soft
        return wanted
    return soft


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once.")] = 1,
) -> None:
    """Run generation jobs until SIGTERM or Ctrl-C (both finish the current stage first).

    Any number of worker processes, on any number of machines, share the queue in the database.
    Without DATABASE_URL, the embedded PostgreSQL in STUDIO_DATA_DIR is used.
    """
    settings = _settings()
    with _database(settings) as database:
        if settings.run_migrations_on_start:
            asyncio.run(migrations.upgrade_if_behind(_direct(settings, database)))
        worker_settings = load_settings(database_url=database.render(hide_password=False))
        asyncio.run(
            run_worker_process(
                worker_settings,
                concurrency,
                on_start=lambda w: console.print(f"worker {w.worker_id}: {concurrency} at a time"),
            )
        )


@migrate_cli.command("upgrade")
def migrate_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database to a revision (default: the latest)."""
    settings = _settings()
    with _database(settings) as database:
        alembic_command.upgrade(migrations.alembic_config(_direct(settings, database)), revision)


@migrate_cli.command("downgrade")
def migrate_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")],
) -> None:
    """Revert the database to an earlier revision."""
    settings = _settings()
    with _database(settings) as database:
        alembic_command.downgrade(migrations.alembic_config(_direct(settings, database)), revision)


@migrate_cli.command("current")
def migrate_current() -> None:
    """Show the revision the database is at."""
    settings = _settings()
    with _database(settings) as database:
        alembic_command.current(
            migrations.alembic_config(_direct(settings, database)), verbose=False
        )


@migrate_cli.command("history")
def migrate_history() -> None:
    """List all revisions, newest first."""
    alembic_command.history(migrations.alembic_config(), indicate_current=False)


@cli.command()
def seed(
    users: Annotated[int, typer.Option(min=1, max=1000, help="Demo users to create.")] = 5,
    videos_per_user: Annotated[
        int, typer.Option(min=0, max=500, help="Videos per user (6+ covers every status).")
    ] = 12,
    random_seed: Annotated[int, typer.Option(help="Seed for the random choices.")] = 7,
) -> None:
    """Fill the database with realistic demo data. Running it twice adds nothing twice."""
    settings = _settings()
    with _database(settings) as database:
        if settings.run_migrations_on_start:
            asyncio.run(migrations.upgrade_if_behind(_direct(settings, database)))
        asyncio.run(_seed(settings, database, users, videos_per_user, random_seed))


async def _seed(
    settings: Settings, database: DatabaseURL, users: int, videos_per_user: int, random_seed: int
) -> None:
    engine = create_engine(settings, database, pooled=False, application_name="studio-seed")
    try:
        async with engine.connect() as connection:
            if await migrations.current_revisions(connection) != migrations.head_revisions():
                console.print(
                    "[red]error:[/red] the database is not at the latest migration; "
                    "run `studio migrate upgrade` first"
                )
                raise typer.Exit(1)
        progress = Progress(
            TextColumn("seeding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        with progress:
            task = progress.add_task("", total=users)
            async with create_sessionmaker(engine).begin() as session:
                result = await seed_database(
                    session,
                    users=users,
                    videos_per_user=videos_per_user,
                    random_seed=random_seed,
                    on_user=lambda email: progress.update(task, advance=1, description=email),
                )
        console.print(
            f"users created: {result.users_created} (already there: {result.users_skipped}), "
            f"voice profiles: {result.voice_profiles}, videos: {result.videos}, jobs: {result.jobs}"
        )
    finally:
        await engine.dispose()


@cli.command()
def token(
    email: Annotated[str, typer.Option(help="The user's email; the user is created if new.")],
) -> None:
    """Print a development access token for a user (the token is the last line of output).

    Send it as `Authorization: Bearer <token>`. Refused in production: there, people sign in.
    """
    settings = _settings()
    if settings.env is Environment.PRODUCTION:
        console.print("[red]error:[/red] `studio token` is for development; sign in instead")
        raise typer.Exit(1)
    with _database(settings) as database:
        if settings.run_migrations_on_start:
            asyncio.run(migrations.upgrade_if_behind(_direct(settings, database)))
        user_id, created = asyncio.run(_ensure_user(settings, database, email))
    issued = issue_access_token(settings, user_id)
    studio = settings.public_url or "http://127.0.0.1:8000"
    # Plain echo: a console would wrap the long link and break it.
    typer.echo(
        f"{'created' if created else 'found'} user {email} ({user_id}); "
        f"token valid until {issued.expires_at.isoformat()}\n"
        f"GraphiQL signed in as this user: {studio}/graphql#token={issued.token}\n"
        "Requests: send the header 'Authorization: Bearer <token>' with the token below.",
        err=True,
    )
    typer.echo(issued.token)


@cli.command()
def purge(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Age, as 30d, 12h, 90m, 45s or 2w: what was deleted or replaced longer ago goes.",
        ),
    ] = "30d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
) -> None:
    """Remove for good the videos and voice profiles deleted longer ago than --older-than, and
    the media files nothing uses any more (see app/purge.py). Purged videos cannot be restored."""
    try:
        age = parse_age(older_than)
    except ValueError as error:
        console.print(f"[red]error:[/red] --older-than: {error}")
        raise typer.Exit(2) from None
    settings = _settings()
    with _database(settings) as database:
        report = asyncio.run(_purge(settings, database, age, dry_run))
    verb = "would remove" if dry_run else "removed"
    for folder in report.folders:
        typer.echo(f"{verb} {folder}")
    typer.echo(
        f"{verb} {len(report.videos)} videos, {len(report.voice_profiles)} voice profiles and "
        f"{len(report.folders)} media folders ({report.bytes / 1_000_000:.1f} MB)"
    )
    typer.echo(f"{verb} {report.state_changes} old entries of the job and video state histories")


async def _purge(
    settings: Settings, database: DatabaseURL, age: timedelta, dry_run: bool
) -> PurgeReport:
    engine = create_engine(settings, database, pooled=False, application_name="studio-purge")
    try:
        return await purge_media(settings, create_sessionmaker(engine), age, dry_run=dry_run)
    finally:
        await engine.dispose()


@cli.command()
def schema() -> None:
    """Print the GraphQL schema (SDL), for client code generation."""
    typer.echo(print_schema(), nl=False)


async def _ensure_user(
    settings: Settings, database: DatabaseURL, email: str
) -> tuple[uuid.UUID, bool]:
    engine = create_engine(settings, database, pooled=False, application_name="studio-token")
    try:
        async with create_sessionmaker(engine).begin() as session:
            async with constraint_errors(session):
                user, created = await ensure_user(session, email)
            return user.id, created
    finally:
        await engine.dispose()


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings)
    return settings


def _direct(settings: Settings, database: DatabaseURL) -> DatabaseURL:
    """Where migrations run: they hold an advisory lock, so never through a transaction pooler
    (``DATABASE_DIRECT_URL``; the embedded database has no pooler)."""
    return settings.direct_database if settings.database_url is not None else database


@contextmanager
def _database(settings: Settings) -> Iterator[DatabaseURL]:
    """The configured database, or the embedded one for the duration of the block (started for
    it, or the one a running `studio serve` holds)."""
    if settings.database_url is not None:
        if settings.database.dropped:
            console.print(
                f"note: ignoring {', '.join(settings.database.dropped)} in DATABASE_URL "
                "(not supported by asyncpg; sslmode still applies)"
            )
        yield settings.database
        return
    embedded = EmbeddedPostgres(settings.embedded_pgdata)
    # Attaching to the server a running `studio serve` holds is quick and changes nothing: say
    # nothing, so `studio token` and `studio seed` print only their own output.
    if not embedded.is_running():
        console.print(f"Starting the embedded PostgreSQL in {settings.embedded_pgdata} …")
    with embedded as database:
        yield database


@contextmanager
def _stopped_by_signal_is_success() -> Iterator[None]:
    """uvicorn re-raises SIGINT/SIGTERM after a graceful shutdown; for `serve` that is success."""
    try:
        yield
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        if exc.code != 128 + signal.SIGTERM:
            raise


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
