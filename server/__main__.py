"""The `envcase` command (also `python -m server`).

Subcommands: run, worker, migrate, create-user, seed-demo, sweep-media, escalate, prune-outbox, retention,
export, schema, register-documents, rebuild-statistics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from tortoise import Tortoise

from kernel.logs import configure as configure_logging
from kernel.logs import logging_config
from server.city import install_city, refresh_city
from server.db import apply_migrations, tortoise_config
from server.settings import Settings


def _level() -> str:
    return os.environ.get("LOG_LEVEL", "INFO").upper()


async def _with_db(settings: Settings, work: Callable[[], Awaitable[object]]) -> None:
    await Tortoise.init(config=tortoise_config(settings.database_url))
    install_city(settings)
    try:
        await work()
    finally:
        await Tortoise.close_connections()


def _migrate(settings: Settings) -> None:
    """Bring the schema up to date, then build what a migration left to the city's configuration: the
    statistics' roll-ups of an existing log are counted by the city's local days."""
    from reports.rollups import build_if_missing

    async def build() -> None:
        read = await build_if_missing()
        if read is not None:
            logging.getLogger("envcase").info("statistics roll-ups built from %d case events", read)

    asyncio.run(apply_migrations(settings.database_url))
    asyncio.run(_with_db(settings, build))


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    _migrate(settings)
    print("migrations applied")


def cmd_run(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from server.channels import ConfigurationError, refuse_unsafe_production
    from server.storage import check_media_storage, media_storage

    async def check_storage() -> None:
        storage = media_storage(settings)
        try:
            await check_media_storage(settings, storage)
        finally:
            await storage.close()

    try:
        refuse_unsafe_production(settings)
        asyncio.run(check_storage())
    except ConfigurationError as exc:
        sys.exit(f"error: {exc}")
    _migrate(settings)
    if args.seed_demo:
        cmd_seed_demo(settings, args)
    uvicorn.run(
        "server.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # the app writes its own structured access log
        timeout_graceful_shutdown=20,
        # The same configuration in each worker process: uvicorn's loggers through our formatter
        # (request ids, and in production no personal data); see kernel.logs.
        log_config=logging_config(_level(), production=settings.environment == "production"),
        log_level=_level().lower(),
    )


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> None:
    from identity.models import Role
    from identity.service import create_user
    from kernel.errors import DomainError
    from reports.models import Department

    password = args.password or os.environ.get("NEW_USER_PASSWORD") or getpass.getpass("Password: ")

    async def work() -> None:
        department_id = None
        if args.department:
            department = await Department.get_or_none(code=args.department)
            if department is None:
                sys.exit(f"error: no department with code {args.department!r}")
            department_id = department.id
        try:
            user = await create_user(
                role=Role(args.role),
                username=args.username,
                password=password,
                display_name=args.display_name or args.username or "",
                phone=args.phone,
                department_id=department_id,
            )
        except DomainError as exc:
            sys.exit(f"error: {exc.message}")
        print(f"created {user.role} {user.username or user.phone} (id {user.id})")

    _migrate(settings)
    asyncio.run(_with_db(settings, work))


def cmd_seed_demo(settings: Settings, _: argparse.Namespace) -> None:
    from server.seed import seed_demo

    _migrate(settings)
    asyncio.run(_with_db(settings, seed_demo))


def cmd_sweep_media(settings: Settings, _: argparse.Namespace) -> None:
    from media.service import sweep_expired
    from server.app import photo_intake

    async def work() -> None:
        intake = photo_intake(settings)
        try:
            result = await sweep_expired(intake)
        finally:
            intake.close()
            await intake.storage.close()
        print(
            f"removed {result.uploads} expired uploads, {result.photos} unattached photos, "
            f"{result.files} stored files, {result.temp_files} stale temporary files"
        )

    asyncio.run(_with_db(settings, work))


def cmd_escalate(settings: Settings, _: argparse.Namespace) -> None:
    from datetime import timedelta

    from kernel import clock
    from reports.deadlines import sweep_deadlines

    async def work() -> None:
        # The changes go to the outbox; running servers relay them to their live subscribers.
        quiet = timedelta(days=settings.feedback_quiet_days)
        await refresh_city()  # deadlines count the holidays admins stored too
        print(await sweep_deadlines(clock.now(), quiet))

    asyncio.run(_with_db(settings, work))


def cmd_rebuild_statistics(settings: Settings, _: argparse.Namespace) -> None:
    from reports.rollups import rebuild

    async def work() -> None:
        # The roll-ups' days are the city's: its timezone comes from the settings (install_city).
        print(f"statistics roll-ups rebuilt from {await rebuild()} case events")

    asyncio.run(_with_db(settings, work))


def cmd_worker(settings: Settings, _: argparse.Namespace) -> None:
    import signal

    from exports.jobs import ExportRunner
    from server.deliveries import close_channels, delivery_worker
    from server.exports_http import export_config

    async def work() -> None:
        worker = delivery_worker(settings)
        exporter = ExportRunner(export_config(settings))
        running = asyncio.create_task(worker.run())
        exporting = asyncio.create_task(exporter.run())
        loop = asyncio.get_running_loop()

        def stop() -> None:  # the first signal finishes the pass in flight; a second one cuts it short
            if worker.stopping:
                running.cancel()
                exporting.cancel()  # the job in flight is taken over by another runner after its lease
            worker.stop()
            exporter.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        log = logging.getLogger("server")
        log.info("delivery worker started (channels: %s)", ", ".join(worker.channels) or "none")
        # Cut short, what the pass had claimed and not recorded comes back after its lease and is sent
        # again with the same delivery id (at least once).
        with contextlib.suppress(asyncio.CancelledError):
            await running
        with contextlib.suppress(asyncio.CancelledError):
            await exporting
        await close_channels(worker)
        log.info("delivery worker stopped")

    _migrate(settings)  # as `run` does: either may start first
    asyncio.run(_with_db(settings, work))


def cmd_prune_outbox(settings: Settings, _: argparse.Namespace) -> None:
    from delivery.pruning import prune
    from server.deliveries import delivery_config

    async def work() -> None:
        print(f"removed {await prune(delivery_config(settings))}")

    asyncio.run(_with_db(settings, work))


def cmd_retention(settings: Settings, args: argparse.Namespace) -> None:
    from kernel.retention import RetentionPolicyError, load_policy
    from server.retention import run_retention
    from server.storage import media_storage

    try:
        policy = load_policy(settings.retention_policy_path)
    except (RetentionPolicyError, OSError) as exc:
        sys.exit(f"error: {exc}")

    async def work() -> None:
        storage = media_storage(settings)
        try:
            print(await run_retention(policy, storage, max_batches=args.max_batches))
        finally:
            await storage.close()

    asyncio.run(_with_db(settings, work))


def cmd_register_documents(settings: Settings, args: argparse.Namespace) -> None:
    import json

    from kernel.errors import DomainError, DomainErrors
    from trusted.service import register

    # The persisted-documents file of an app build: {"<sha256 hex or sha256:hex>": "<document>", ...}
    # (GraphQL Codegen's client preset, Relay's and Apollo's persisted-query manifests).
    try:
        documents = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        sys.exit(f"error: cannot read {args.file}: {exc}")
    if not isinstance(documents, dict) or not all(isinstance(text, str) for text in documents.values()):
        sys.exit(f"error: {args.file} is not a JSON object of document ids to documents")

    async def work() -> None:
        try:
            registration = await register(list(documents.items()))
        except DomainError as exc:
            problems = exc.errors if isinstance(exc, DomainErrors) else [exc]
            # The position in the file (field: input, documents, <index>, ...): the mutation's own paths.
            lines = [f"  {'/'.join(p.field or [])}: {p.message}" for p in problems]
            sys.exit("error: nothing registered:\n" + "\n".join(lines))
        print(f"registered {registration.added} new, {registration.already_registered} already registered")

    _migrate(settings)
    asyncio.run(_with_db(settings, work))


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    import shutil
    import uuid

    from exports.jobs import ExportRequest, claim, run_job, start_export
    from exports.models import ExportFormat, ExportJob, ExportKind, ExportStatus
    from identity.models import User
    from identity.service import Principal
    from kernel.errors import DomainError
    from reports.models import Department
    from server.exports_http import export_config

    config = export_config(settings)
    parameters: dict[str, object] = {}
    if args.kind == "cases":
        parameters = {"statuses": args.status or None, "category_code": args.category, "text": args.text,
                      "created_from": args.created_from, "created_to": args.created_to}  # fmt: skip
    else:
        parameters = {"from": args.period_from, "to": args.period_to}

    async def bar(done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(share * 30)
        print(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:6.1%} {done}/{total} rows",
            end="",
            file=sys.stderr,
        )

    async def work() -> None:
        user = await User.get_or_none(username=args.user, is_active=True)
        if user is None:
            sys.exit(f"error: no active account {args.user!r}")
        if args.department:
            department = await Department.get_or_none(code=args.department)
            if department is None:
                sys.exit(f"error: no department with code {args.department!r}")
            parameters["department_id"] = department.id
        given = {k: v for k, v in parameters.items() if v is not None}
        request = ExportRequest(
            uuid.uuid4().hex, ExportKind(args.kind.upper()), ExportFormat(args.format.upper()), given
        )
        try:
            job = await start_export(Principal(user, 0), request)
        except DomainError as exc:
            sys.exit(f"error: {exc.message}")
        except ValueError as exc:  # a status or time the command line could not read
            sys.exit(f"error: {exc}")
        claimed = await claim(config, job.id)  # run here, now, with a progress bar (no runner needed)
        status = await run_job(config, claimed, bar) if claimed else ExportStatus.CANCELLED
        print(file=sys.stderr)
        job = await ExportJob.get(id=job.id)
        if status is not ExportStatus.DONE or job.file_name is None:
            sys.exit(f"error: export {status.value.lower()}: {job.error or ''}")
        shutil.copyfile(config.root / job.file_name, args.out)
        print(f"wrote {job.rows} rows to {args.out}")

    asyncio.run(_with_db(settings, work))


def cmd_schema(settings: Settings, args: argparse.Namespace) -> None:
    from schema import build_schema
    from schema.contract import compare

    # The contract the phone apps generate their clients from (committed as schema.graphql).
    served = build_schema(production=False).as_str()
    if not args.check:
        print(served)
        return
    try:
        released = args.released.read_text(encoding="utf-8")
    except OSError as exc:
        sys.exit(f"error: cannot read the released schema: {exc}")
    changes = compare(released, served)
    for line in changes.lines():
        print(line)
    if changes.breaking:
        sys.exit(
            f"error: {len(changes.breaking)} breaking change(s) against {args.released}: "
            "deprecate instead of removing (docs/api.md, The schema contract)"
        )
    print(f"no breaking changes against {args.released} ({len(changes.dangerous)} dangerous)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="envcase", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="apply migrations and serve the API")
    run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    run.add_argument("--seed-demo", action="store_true", help="load the demo city first (idempotent)")
    sub.add_parser(
        "worker", help="run the delivery worker (webhooks, push, SMS); several may run on several machines"
    )
    sub.add_parser("migrate", help="apply database migrations")
    create = sub.add_parser("create-user", help="create a staff, dispatcher, chief or admin account")
    create.add_argument(
        "--role", required=True, choices=["ADMIN", "DISPATCHER", "STAFF", "CHIEF", "VOLUNTEER"]
    )
    create.add_argument("--username")
    create.add_argument("--phone")
    create.add_argument("--display-name")
    create.add_argument("--department", help="department code (staff only)")
    create.add_argument("--password", help="prompted for when omitted (or NEW_USER_PASSWORD)")
    sub.add_parser("seed-demo", help="load the demo city (idempotent)")
    sub.add_parser(
        "sweep-media", help="remove expired uploads and unattached photos with their files (cron-safe)"
    )
    sub.add_parser(
        "escalate",
        help="one deadline pass: remind, escalate, close quiet resolved cases (cron-safe, several at once)",
    )
    sub.add_parser(
        "prune-outbox",
        help="delete old relayed and planned outbox rows and old finished deliveries (cron-safe)",
    )
    retention = sub.add_parser(
        "retention",
        help="anonymize or delete personal data past its retention period (cron-safe, several at once)",
    )
    retention.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    sub.add_parser(
        "rebuild-statistics",
        help="recompute the statistics' per-day roll-ups from the case event log (after migration 0029 or a"
        " change of the city's timezone; with the API stopped)",
    )
    documents = sub.add_parser(
        "register-documents",
        help="register an app build's trusted documents (a JSON object: sha256 id -> document); idempotent",
    )
    documents.add_argument("file", type=Path)
    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL) that schema.graphql must match")
    schema.add_argument(
        "--check",
        action="store_true",
        help="instead, list the changes against the released schema and fail on a breaking one",
    )
    schema.add_argument("--released", type=Path, default=Path("schema.released.graphql"))
    export = sub.add_parser(
        "export", help="export cases, statistics or patrol compliance to a file, with progress"
    )
    export.add_argument("kind", choices=["cases", "statistics", "compliance"])
    export.add_argument("--user", required=True, help="export as this account (its access rules apply)")
    export.add_argument("--format", choices=["csv", "xlsx", "geojson"], default="csv")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--department", help="department code")
    export.add_argument("--status", action="append", help="case status (repeatable)")
    export.add_argument("--category", help="case category code")
    export.add_argument("--text", help="cases whose summary or reference contains this")
    export.add_argument("--created-from", help="cases created at or after (ISO 8601 with offset)")
    export.add_argument("--created-to", help="cases created before (ISO 8601 with offset)")
    export.add_argument("--from", dest="period_from", help="first day of the period (statistics, compliance)")
    export.add_argument("--to", dest="period_to", help="the day after the period (statistics, compliance)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(_level(), production=settings.environment == "production")
    commands = {
        "run": cmd_run,
        "worker": cmd_worker,
        "prune-outbox": cmd_prune_outbox,
        "migrate": cmd_migrate,
        "create-user": cmd_create_user,
        "seed-demo": cmd_seed_demo,
        "sweep-media": cmd_sweep_media,
        "escalate": cmd_escalate,
        "retention": cmd_retention,
        "export": cmd_export,
        "schema": cmd_schema,
        "register-documents": cmd_register_documents,
        "rebuild-statistics": cmd_rebuild_statistics,
    }
    commands[args.command](settings, args)


if __name__ == "__main__":
    main()
