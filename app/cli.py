"""The `dealcoach` command: serve, migrate, bootstrap, webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from typing import Annotated, Any

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
    """Serve the API with uvicorn (several workers: app/serving.py)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    settings = Settings()
    if migrate_first:
        from app.db.migrate import upgrade

        upgrade(settings.database_url)
    if workers > 1 and settings.is_sqlite:
        typer.echo("warning: several workers on SQLite serialise every write; use PostgreSQL", err=True)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its metrics here so /metrics answers for all of them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dealcoach-metrics-")
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": False,
        "log_config": None,
        "proxy_headers": True,
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run("app.main:served_app", **options)
        return
    from app.serving import OwnSocketWorkers, balanced_sockets

    config = uvicorn.Config("app.main:served_app", **options)
    try:
        sockets = balanced_sockets(config, workers)
    except OSError as exc:
        typer.echo(f"cannot listen on {host}:{port}: {exc}", err=True)
        raise typer.Exit(STARTUP_FAILURE) from None
    port = sockets[0].getsockname()[1]
    typer.echo(json.dumps({"serving": f"http://{host}:{port}", "workers": workers, "sockets": len(sockets)}), err=True)
    with contextlib.suppress(KeyboardInterrupt):
        OwnSocketWorkers(config, sockets).run()


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


import_app = typer.Typer(help="Bring data in over the API.", no_args_is_help=True)
cli.add_typer(import_app, name="import")


@import_app.command("deals")
def import_deals(
    file: Annotated[str, typer.Argument(help="CSV: source,external_id,name,account_name,amount,currency,...")],
    url: Annotated[str, typer.Option(help="The API's base URL")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(help="An API key (an admin or integration member)", envvar="DEALCOACH_KEY")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row, send nothing")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=500, help="Rows per request")] = 500,
    in_flight: Annotated[int, typer.Option(min=1, max=8, help="Batches sent at once")] = 2,
) -> None:
    """Upsert deals from a CSV file in batches of 500, two at once; rejected rows go to FILE.errors.csv."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app import transfer

    if not os.path.isfile(file):
        typer.echo(f"error: no such file: {file}", err=True)
        raise typer.Exit(2)
    errors_path = f"{file.removesuffix('.csv')}.errors.csv"
    columns = (TextColumn("[bold]import"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"))
    started = time.monotonic()
    try:
        with (
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
            open(errors_path, "w", newline="", encoding="utf-8") as errors_out,
            Progress(*columns, TimeElapsedColumn(), console=_err_console(), transient=False) as progress,
        ):
            task = progress.add_task("rows", total=None, rate="0")

            def advance(n: int) -> None:
                done = progress.tasks[0].completed + n
                rate = done / max(time.monotonic() - started, 1e-6)
                progress.update(task, advance=n, rate=f"{rate:,.0f}")

            report = transfer.import_deals(
                file, client, errors_out, dry_run=dry_run, progress=advance, batch_size=batch_size, in_flight=in_flight
            )
    except transfer.HeaderError as exc:
        os.unlink(errors_path)
        typer.echo(f"error: {file}: bad header: {exc}", err=True)
        typer.echo(
            f"expected columns: {', '.join(transfer.REQUIRED)}, owner_email or owner_id, "
            f"optionally {', '.join(transfer.OPTIONAL)}",
            err=True,
        )
        raise typer.Exit(2) from None
    except (transfer.ApiError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        # The batches in flight were answered before this point (the pool waits for them).
        typer.echo(
            "interrupted: run the same command again to finish; batches already applied are replayed, not repeated",
            err=True,
        )
        raise typer.Exit(130) from None
    summary = {
        "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "failed": report.failed, "replayed": report.replayed, "dry_run": dry_run,
    }  # fmt: skip
    typer.echo(json.dumps(summary))
    if report.replayed:
        typer.echo(
            f"{report.replayed_batches} batch(es), {report.replayed} row(s), had been applied by an earlier run: "
            "nothing was written again, and their outcomes above are those of that run",
            err=True,
        )
    if report.failed:
        typer.echo(f"{report.failed} row(s) rejected: see {errors_path}", err=True)
        raise typer.Exit(1)
    os.unlink(errors_path)


@cli.command()
def export(
    what: Annotated[str, typer.Argument(help="deals, reviews or events")],
    url: Annotated[str, typer.Option(help="The API's base URL")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(help="An API key", envvar="DEALCOACH_KEY")] = "",
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "jsonl",
    output: Annotated[str | None, typer.Option(help="A file (default: standard output)")] = None,
    owner_id: Annotated[str | None, typer.Option(help="deals, reviews")] = None,
    stage: Annotated[str | None, typer.Option(help="deals")] = None,
    status: Annotated[str | None, typer.Option(help="deals, reviews")] = None,
    closed_from: Annotated[str | None, typer.Option(help="deals, reviews: YYYY-MM-DD")] = None,
    closed_to: Annotated[str | None, typer.Option(help="deals, reviews: YYYY-MM-DD")] = None,
    updated_since: Annotated[str | None, typer.Option(help="deals: an instant")] = None,
    q: Annotated[str | None, typer.Option(help="deals: text in the name or account")] = None,
    reviewer_id: Annotated[str | None, typer.Option(help="reviews")] = None,
    week: Annotated[str | None, typer.Option(help="reviews: 2026-W47")] = None,
    deal_id: Annotated[str | None, typer.Option(help="reviews, events")] = None,
    type: Annotated[list[str] | None, typer.Option("--type", help="events: an event type (repeatable)")] = None,
    after_seq: Annotated[int | None, typer.Option(help="events: only events after this seq")] = None,
) -> None:
    """Export a listing page by page, following cursors, as CSV or JSON lines."""
    import sys

    import httpx
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from app import transfer

    if what not in transfer.LISTINGS or fmt not in ("csv", "jsonl"):
        typer.echo("error: export deals|reviews|events --format csv|jsonl", err=True)
        raise typer.Exit(2)
    given = {
        "owner_id": owner_id, "stage": stage, "status": status, "closed_from": closed_from, "closed_to": closed_to,
        "updated_since": updated_since, "q": q, "reviewer_id": reviewer_id, "week": week, "deal_id": deal_id,
        "type": type or None, "after_seq": after_seq,
    }  # fmt: skip
    params = {k: v for k, v in given.items() if v is not None}
    out = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        with (
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
            Progress(SpinnerColumn(), TextColumn("export {task.completed:,.0f} " + what), console=_err_console()) as p,
        ):
            task = p.add_task(what, total=None)
            count = transfer.export(client, what, params, out, fmt, lambda n: p.update(task, advance=n))
    except (transfer.ApiError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        if output:
            out.close()
    typer.echo(json.dumps({"exported": count, "what": what}), err=True)


def _err_console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
