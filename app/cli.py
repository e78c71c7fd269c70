"""The `dealcoach` command: serve, migrate, bootstrap, webhooks."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from typing import Annotated

import typer

from app.settings import Settings

cli = typer.Typer(
    help="Dealcoach: the sales-leadership API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate", help="Bring the schema up to date before serving")
    ] = False,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = Settings()
    if migrate_first:
        from app.db.migrate import upgrade

        upgrade(settings.database_url)
    if workers > 1 and settings.is_sqlite:
        typer.echo("warning: several workers on SQLite serialise every write; use PostgreSQL", err=True)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its metrics here so /metrics answers for all of them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dealcoach-metrics-")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Bring the database schema up to date."""
    from app.db.migrate import upgrade

    upgrade(Settings().database_url, revision)
    typer.echo(json.dumps({"migrated_to": revision}))


@cli.command()
def bootstrap(
    org: Annotated[str, typer.Option(help="Organisation name")],
    admin_email: Annotated[str, typer.Option(help="The first admin's email")],
    admin_name: Annotated[str, typer.Option(help="The first admin's name")] = "Admin",
) -> None:
    """Create an organisation, its first admin and an API key; print them as one JSON line."""
    from pydantic import ValidationError

    from app.db.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    try:
        result = asyncio.run(_bootstrap(settings, org, admin_email, admin_name))
    except ValidationError as exc:
        typer.echo(f"invalid input: {exc.errors()[0]['loc'][-1]}: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        json.dumps(
            {
                "organization_id": str(result.organization_id),
                "member_id": str(result.member_id),
                "api_key": result.api_key,
            }
        )
    )


async def _bootstrap(settings: Settings, org: str, email: str, name: str):  # type: ignore[no-untyped-def]
    from app.db.engine import make_engine, make_sessionmaker
    from app.db.uow import UnitOfWork
    from app.services.bootstrap import bootstrap_organization

    engine = make_engine(settings)
    try:
        uow = UnitOfWork(make_sessionmaker(engine))
        try:
            return await bootstrap_organization(uow, org_name=org, admin_email=email, admin_name=name)
        finally:
            await uow.close()
    finally:
        await engine.dispose()


@cli.command()
def demo(
    seed: Annotated[int, typer.Option(help="The same seed builds the same organisation")] = 7,
    force: Annotated[bool, typer.Option("--force", help="Add the demo even when organisations exist")] = False,
    keys_file: Annotated[str, typer.Option("--keys-file", help="Where to write the personas' keys")] = "demo-keys.json",
) -> None:
    """Build a realistic demo organisation (people, deals, coaching, losses) and print its personas' keys."""
    from app.db.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    result = asyncio.run(_demo(settings, seed, force))
    if result is None:
        typer.echo(
            "refusing: this database already holds organisations; the demo writes nothing here "
            "(use --force to add it anyway, or point DEALCOACH_DATABASE_URL at an empty database)",
            err=True,
        )
        raise typer.Exit(1)
    personas = [
        {"name": p.name, "email": p.email, "role": p.role, "member_id": str(p.member_id), "api_key": p.api_key}
        for p in result.personas
    ]
    with open(keys_file, "w") as out:
        json.dump({"organization_id": str(result.organization_id), "personas": personas}, out, indent=2)
        out.write("\n")
    _print_personas(result, keys_file)


async def _demo(settings: Settings, seed: int, force: bool):  # type: ignore[no-untyped-def]
    from app.db.engine import make_engine, make_sessionmaker
    from app.services.demo import OrganizationsExist, build_demo

    engine = make_engine(settings)
    try:
        return await build_demo(make_sessionmaker(engine), seed=seed, force=force)
    except OrganizationsExist:
        return None
    finally:
        await engine.dispose()


def _print_personas(result, keys_file: str) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the keys into 80 columns
        console = Console(width=200)
    table = Table(title=f"Demo organisation {result.organization_id}")
    for column in ("Persona", "Role", "Reports to", "Email", "API key"):
        table.add_column(column, no_wrap=column == "API key")
    for p in result.personas:
        table.add_row(p.name, p.role, p.manager or "", p.email, p.api_key)
    console.print(table)
    made = ", ".join(f"{name} {count}" for name, count in sorted(result.counts.items()))
    console.print(f"Made: {made}", soft_wrap=True)
    console.print(f"Keys written to {keys_file}. Try: curl -H 'Authorization: Bearer <key>' $BASE/v1/me")


@cli.command()
def webhooks() -> None:
    """Run a webhook dispatcher and a CRM inbox applier on their own (as many as you like share the work)."""
    from app.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(_dispatch(settings))


async def _dispatch(settings: Settings) -> None:
    import signal

    from app.db.engine import make_engine, make_sessionmaker
    from app.services.inbox_applier import ApplierConfig, InboxApplier
    from app.services.webhook_dispatcher import Dispatcher, DispatcherConfig

    engine = make_engine(settings)
    sessionmaker = make_sessionmaker(engine)
    dispatcher = Dispatcher(sessionmaker, DispatcherConfig.from_settings(settings))
    applier = InboxApplier(sessionmaker, ApplierConfig.from_settings(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    typer.echo(json.dumps({"webhooks": "dispatching"}), err=True)
    try:
        await asyncio.gather(dispatcher.run(stop), applier.run(stop))
    finally:
        await dispatcher.close()
        await applier.close()
        await engine.dispose()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
