"""Commands on the mailbox: run (the daemon), demo (the daemon on loopback servers), doctor."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable

from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from ..campaign import CallRules
from ..config import ConfigError, ImapSettings, SmtpSettings, load
from ..intake.archive import UNRAR_HELP, self_test
from ..mail.imap import Mailbox, MailboxError, UidValidityError
from ..mail.smtp import check_login
from ..service.daemon import FATAL, Daemon, DaemonFailed, MissingSecret, failure_text, secret
from ..service.health import summary
from ..service.lock import AlreadyRunning
from ..staff.roster import RosterError, read_roster
from ..storage import schema
from ..storage.db import DatabaseMissing, SchemaMismatch, open_database, roster_entries, sqlite_file
from .common import EXIT_ENVIRONMENT, EXIT_OK, EnvironmentProblem, UsageError, require_rar_tool, say, settings_from


def run_daemon(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    require_rar_tool(settings.call_rules())
    try:
        daemon = Daemon(settings, dry_run=args.dry_run)
    except MissingSecret as error:
        raise UsageError(str(error)) from error
    try:
        if not args.once:
            daemon.run_forever()
            return EXIT_OK
        result = daemon.run_once()
    except (AlreadyRunning, DaemonFailed, SchemaMismatch, DatabaseMissing) as error:
        raise EnvironmentProblem(str(error)) from error
    except FATAL as error:
        raise EnvironmentProblem(failure_text(error)) from error
    except SQLAlchemyError as error:
        raise EnvironmentProblem(f"无法使用数据库 {settings.storage.database}：{summary(error)}") from error
    except MailboxError as error:
        raise EnvironmentProblem(f"mailbox: {type(error).__name__}: {error}") from error
    for line in result.report.lines:
        print(line, flush=True)
    sent = result.sent
    print(
        f"{result.report.handled} messages handled; replies: {sent.sent} sent, {sent.deferred} deferred, "
        f"{sent.failed} failed",
        flush=True,
    )
    return EXIT_OK


def run_demo_command(args: argparse.Namespace) -> int:
    try:
        from ..demo import run_demo  # imports the loopback servers only when asked
    except ImportError as error:
        raise EnvironmentProblem(
            f"the demo needs the loopback mail servers of the shenbao[demo] extra ({error.name} is missing): "
            "pip install 'shenbao[demo]'"
        ) from error

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    require_rar_tool(CallRules())
    return run_demo(args.dir.resolve())


def run_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the database schema to this version's (a new database is created)."""
    settings = settings_from(args.config)
    database = sqlite_file(settings.database_url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(settings.database_url)
        before = schema.version_of(engine)
        if before.state is schema.SchemaState.AHEAD:
            raise EnvironmentProblem(f"数据库结构（{before.current}）比当前程序（{before.head}）新，未作改动")
        applied = schema.upgrade(engine)
    except SQLAlchemyError as error:
        raise EnvironmentProblem(f"cannot open the database {settings.storage.database}: {error}") from error
    text = (
        f"数据库结构已从 {before.current or '空库'} 升级到 {before.head}（{len(applied)} 步）"
        if applied
        else f"数据库结构已是最新（{before.head}）"
    )
    say(args, {"before": before.current, "after": before.head, "applied": applied}, text)
    return EXIT_OK


def run_doctor(args: argparse.Namespace) -> int:
    """One line per check (or one JSON list with --json); exit 0 only when everything works."""
    checks: list[dict[str, object]] = []

    def report(name: str, problem: str | None, fine: str) -> None:
        checks.append({"check": name, "ok": problem is None, "detail": problem or fine})
        if not args.json:
            print(f"{'FAIL' if problem else 'ok  '}  {name}: {problem or fine}", flush=True)

    try:
        _doctor_checks(args, report)
    finally:
        if args.json:
            print(json.dumps(checks, ensure_ascii=False))
    return EXIT_OK if all(check["ok"] for check in checks) else EXIT_ENVIRONMENT


def _doctor_checks(args: argparse.Namespace, report: Callable[[str, str | None, str], None]) -> None:
    try:
        settings = load(args.config)
    except ConfigError as error:
        for line in error.lines:
            report("config", line, "")
        return
    report("config", None, str(args.config))
    problem = self_test(settings.call_rules().limits)
    report("rar tool", problem and f"{problem}. {UNRAR_HELP}", "unrar reads the bundled RAR5 archive exactly")
    try:
        engine = open_database(settings.database_url, upgrade=False)
        with Session(engine) as session:
            count = len(roster_entries(session))
        report("database", None, f"{settings.storage.database} ({count} enterprises in the roster)")
        report("schema", None, f"current ({schema.version_of(engine).current})")
    except SchemaMismatch as error:
        report("database", None, settings.storage.database)
        report("schema", str(error), "")
    except SQLAlchemyError as error:
        report("database", f"{settings.storage.database}: {error}", "")
    if settings.roster_path is not None:
        try:
            report(
                "roster",
                None,
                f"{len(read_roster(settings.roster_path))} enterprises in {settings.roster_path}",
            )
        except (RosterError, OSError) as error:
            report("roster", str(error), "")
    if settings.imap is not None:
        report("imap", *_doctor_imap(settings.imap))
    if settings.smtp is not None:
        report("smtp", *_doctor_smtp(settings.smtp))


def _doctor_imap(imap: ImapSettings) -> tuple[str | None, str]:
    try:
        mailbox = Mailbox(imap, secret(imap.password_env), timeout=30)
        mailbox.connect()
    except MissingSecret as error:
        return str(error), ""
    except MailboxError as error:
        return f"{imap.host}:{imap.port}: {type(error).__name__}: {error}", ""
    try:
        counts = []
        for folder in imap.folders:
            mailbox.select(folder)
            counts.append(f"{folder} ({len(mailbox.uids())} messages)")
        idle = "IDLE" if mailbox.has("IDLE") else f"no IDLE: polling every {imap.poll_seconds:g} s"
        return None, f"logged in to {imap.host}:{imap.port} as {imap.username}; {idle}; " + ", ".join(counts)
    except (*MailboxError, UidValidityError) as error:
        return f"{imap.host}: {type(error).__name__}: {error}", ""
    finally:
        mailbox.close()


def _doctor_smtp(smtp: SmtpSettings) -> tuple[str | None, str]:
    try:
        problem = check_login(smtp, secret(smtp.password_env))
    except MissingSecret as error:
        return str(error), ""
    if problem:
        return f"{smtp.host}:{smtp.port}: {problem}", ""
    return None, f"logged in to {smtp.host}:{smtp.port}"
