"""The `shenbao` command: the one entry point, and the only place that chooses exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from .campaign import MIB, CallRules
from .config import ConfigError, ImapSettings, Settings, SmtpSettings, load
from .domain import Verdict
from .explain import OUTCOME_WORDS, title
from .intake.archive import UNRAR_HELP, self_test
from .intake.match import Roster
from .mail.imap import Mailbox, MailboxError, UidValidityError
from .mail.smtp import check_login
from .pipeline import judge
from .render import Renderer, single_address
from .service.daemon import Daemon, MissingSecret, secret
from .service.jobs import reminders_if_due
from .service.lock import AlreadyRunning
from .service.outbox import Sender, send_due, smtp_sender
from .service.recorder import Recorder
from .service.roster_sync import database_roster, import_roster, refresh_roster
from .service.runtime import Runtime
from .staff import digest, reminders
from .staff.roster import RosterError, read_roster
from .storage.blobs import BlobStore
from .storage.db import open_database, roster_entries
from .storage.models import now

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with the message."""


class EnvironmentProblem(Exception):
    """Something outside shenbao is missing (the RAR tool, the database): exit 3 with the message."""


def _deadline(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from error
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError(f"the deadline needs a UTC offset, e.g. {stamp.isoformat()}+08:00")
    return stamp


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from error
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shenbao", description="申报 mailbox: judge, file and answer submissions.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="judge saved messages (.eml) and print the verdicts; stores nothing")
    check.add_argument("messages", nargs="+", metavar="MSG.eml")
    check.add_argument("--json", action="store_true", help="one JSON object per message, one per line")
    check.add_argument("--roster", type=Path, metavar="FILE.xlsx", help="the summary table (汇总表) to match against")
    check.add_argument("--deadline", type=_deadline, metavar="ISO", help="e.g. 2022-07-05T23:59:59+08:00")
    check.add_argument("--max-archive-mb", type=_megabytes, metavar="N", help="archive size limit in MiB (default 200)")
    check.add_argument("--config", type=Path, metavar="F", help="take the campaign's rules from this file")
    check.set_defaults(run=run_check)

    process = commands.add_parser("process", help="judge saved messages and record them in the database")
    process.add_argument("paths", nargs="+", type=Path, metavar="FILE.eml|DIR")
    process.add_argument("--config", type=Path, required=True, metavar="F")
    process.add_argument("--json", action="store_true")
    process.set_defaults(run=run_process)

    roster = commands.add_parser("roster", help="the summary table of invited enterprises")
    roster_commands = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    roster_import = roster_commands.add_parser("import", help="load a summary table (.xlsx) into the database")
    roster_import.add_argument("file", type=Path, metavar="FILE.xlsx")
    roster_import.add_argument("--config", type=Path, required=True, metavar="F")
    roster_import.add_argument("--json", action="store_true")
    roster_import.set_defaults(run=run_roster_import)

    run = commands.add_parser("run", help="watch the mailbox: judge, file and answer every message")
    run.add_argument("--config", type=Path, required=True, metavar="F")
    run.add_argument("--once", action="store_true", help="process what is waiting, send what is queued, then exit")
    run.add_argument("--dry-run", action="store_true", help="judge and record, but send and move nothing")
    run.set_defaults(run=run_daemon)

    digest = commands.add_parser("digest", help="the daily digest for staff: send it now, or write it to a folder")
    digest.add_argument("--config", type=Path, required=True, metavar="F")
    digest.add_argument("--output", type=Path, metavar="DIR", help="write the .eml and workbook here; send nothing")
    digest.add_argument("--json", action="store_true")
    digest.set_defaults(run=run_digest)

    remind = commands.add_parser("remind", help="deadline reminders to enterprises that have not been accepted")
    remind.add_argument("--config", type=Path, required=True, metavar="F")
    remind.add_argument("--dry-run", action="store_true", help="list who would be reminded and why; send nothing")
    remind.add_argument("--now", type=_deadline, metavar="ISO", help="pretend it is this time (with offset)")
    remind.add_argument("--json", action="store_true")
    remind.set_defaults(run=run_remind)

    demo = commands.add_parser("demo", help="run shenbao on sample submissions with loopback mail servers")
    demo.add_argument("--dir", type=Path, default=Path("shenbao-demo"), help="where to put its files (replaced)")
    demo.set_defaults(run=run_demo_command)

    doctor = commands.add_parser("doctor", help="check the configuration, the RAR tool and the database")
    doctor.add_argument("--config", type=Path, required=True, metavar="F")
    doctor.set_defaults(run=run_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except UsageError as error:
        print(f"shenbao: {error}", file=sys.stderr)
        return EXIT_USAGE
    except EnvironmentProblem as error:
        print(f"shenbao: {error}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    return code


# -- helpers shared by the commands ----------------------------------------------------------------------


def settings_from(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    try:
        return load(path)
    except ConfigError as error:
        raise UsageError("configuration is not usable:\n" + str(error)) from error


def require_rar_tool(rules: CallRules) -> None:
    problem = self_test(rules.limits)
    if problem:
        raise EnvironmentProblem(f"{problem}.\n{UNRAR_HELP}")


def roster_from_file(path: Path) -> Roster:
    try:
        return Roster(read_roster(path))
    except RosterError as error:
        raise UsageError(str(error)) from error


def verdict_json(verdict: Verdict) -> dict[str, object]:
    return {
        "verdict": verdict.outcome.value,
        "enterprise": verdict.enterprise,
        "problems": [p.as_dict() for p in verdict.problems],
        "documents": [d.as_dict() for d in verdict.documents],
    }


def verdict_text(label: str, verdict: Verdict, rules: CallRules) -> str:
    lines = [f"{label}: {OUTCOME_WORDS[verdict.outcome]} ({verdict.outcome}) — {verdict.enterprise or '企业未识别'}"]
    for problem in verdict.problems:
        extra = "".join(f"; {key}: {value}" for key, value in problem.as_dict().items() if key not in ("code", "role"))
        lines.append(f"  ✗ {title(problem, rules)} [{problem.code}{extra}]")
    for document in verdict.documents:
        lines.append(f"  · {document.role}: {document.name} ({document.size:,} bytes, sha256 {document.sha256[:12]}…)")
    return "\n".join(lines)


# -- commands -------------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    rules = settings.call_rules()
    if args.deadline is not None:
        rules = replace(rules, deadline=args.deadline)
    if args.max_archive_mb is not None:
        rules = replace(rules, max_archive_bytes=int(args.max_archive_mb * MIB))
    missing = [name for name in args.messages if not Path(name).is_file()]
    if missing:
        raise UsageError("no such file: " + ", ".join(missing))
    roster_path = args.roster or settings.roster_path
    roster = roster_from_file(roster_path) if roster_path else None
    require_rar_tool(rules)
    for name in args.messages:
        with tempfile.TemporaryDirectory(prefix="shenbao-check-") as workdir:
            verdict = judge(Path(name), roster=roster, rules=rules, workdir=Path(workdir)).verdict
        if args.json:
            print(json.dumps({"file": name, **verdict_json(verdict)}, ensure_ascii=False), flush=True)
        else:
            print(verdict_text(name, verdict, rules), flush=True)
    return EXIT_OK


def _eml_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return files


def open_database_from(settings: Settings) -> Engine:
    try:
        return open_database(settings.database_url)
    except SQLAlchemyError as error:
        raise EnvironmentProblem(f"cannot open the database {settings.storage.database}: {error}") from error


def run_process(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    rules = settings.call_rules()
    files = _eml_files(args.paths)
    require_rar_tool(rules)
    engine = open_database_from(settings)
    try:
        refresh_roster(engine, settings.roster_path)
    except (RosterError, OSError) as error:
        raise UsageError(f"campaign.roster: {error}") from error
    recorder = Recorder(engine, BlobStore(settings.files_dir), rules, database_roster(engine))
    for path in files:
        result = recorder.record(path.read_bytes(), source=str(path.resolve()))
        if args.json:
            print(
                json.dumps(
                    {
                        "file": str(path),
                        "id": result.record_id,
                        "verdict": result.outcome.value,
                        "enterprise": result.enterprise,
                        "new": result.created,
                    },
                    ensure_ascii=False,
                ),
                flush=True,
            )
        else:
            state = "recorded" if result.created else "already recorded"
            print(
                f"{path}: {OUTCOME_WORDS[result.outcome]} ({result.outcome}) — "
                f"{result.enterprise or '企业未识别'} [#{result.record_id}, {state}]",
                flush=True,
            )
    return EXIT_OK


def run_roster_import(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    try:
        entries = read_roster(args.file)
    except RosterError as error:
        raise UsageError(str(error)) from error
    engine = open_database_from(settings)
    with Session(engine) as session:
        change = import_roster(session, entries)
        session.commit()
    if args.json:
        print(json.dumps({"enterprises": len(entries), **asdict(change)}))
    else:
        print(
            f"{len(entries)} enterprises in {args.file}: {change.added} added, {change.updated} updated, "
            f"{change.withdrawn} no longer in the table"
        )
    return EXIT_OK


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
    except AlreadyRunning as error:
        raise EnvironmentProblem(str(error)) from error
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


def run_digest(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    runtime = Runtime.open(settings)
    runtime.roster()  # load the configured roster if it changed
    moment = now()
    renderer = Renderer(runtime.sender())
    with Session(runtime.engine) as session:
        built = digest.gather(session, runtime.rules, settings.campaign.name, moment)
    if args.output:
        recipient = (settings.digest.recipients or (single_address(runtime.sender()),))[0]
        written = digest.write(built, renderer, args.output, recipient, moment)
        _say(args, {"written": [str(p) for p in written]}, "\n".join(f"wrote {p}" for p in written))
        return EXIT_OK
    if not settings.digest.recipients:
        raise UsageError("digest.recipients is empty: nobody to send the digest to (use --output DIR to write it)")
    with Session(runtime.engine) as session:
        queued = digest.queue(session, renderer, settings.digest.recipients, built, moment)
        session.commit()
    sent = send_due(runtime.engine, _sender(settings)) if queued else None
    text = (
        f"digest for {built.day} queued to {', '.join(settings.digest.recipients)}; {sent.sent if sent else 0} sent"
        if queued
        else f"the digest for {built.day} was already sent"
    )
    _say(args, {"day": built.day.isoformat(), "queued": queued, "sent": sent.sent if sent else 0}, text)
    return EXIT_OK


def run_remind(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    runtime = Runtime.open(settings)
    runtime.roster()
    moment = args.now or now()
    if args.dry_run:
        with Session(runtime.engine) as session:
            found = reminders.candidates(session, runtime.rules, settings.reminders, moment)
        rows = [
            {
                "enterprise": c.status.enterprise.name,
                "email": c.status.enterprise.email,
                "remind": c.remind,
                "reason": c.reason,
            }
            for c in found
        ]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        elif not rows:
            days = "、".join(str(d) for d in settings.reminders.days)
            print(
                f"no reminders at {moment.isoformat()}: reminders go {days} days before the deadline, "
                f"at {settings.reminders.time:%H:%M}"
            )
        for row in rows if not args.json else []:
            print(
                f"{'remind' if row['remind'] else 'skip  '}  {row['enterprise']} <{row['email'] or '—'}>: "
                f"{row['reason']}"
            )
        return EXIT_OK
    queued = reminders_if_due(runtime, moment)
    sent = send_due(runtime.engine, _sender(settings)) if queued else None
    _say(
        args,
        {"queued": queued, "sent": sent.sent if sent else 0},
        f"{queued} reminders queued, {sent.sent if sent else 0} sent",
    )
    return EXIT_OK


def _sender(settings: Settings) -> Sender:
    if settings.smtp is None:
        raise UsageError("the configuration has no [smtp] section: nothing can be sent")
    try:
        return smtp_sender(settings.smtp, secret(settings.smtp.password_env))
    except MissingSecret as error:
        raise UsageError(str(error)) from error


def _say(args: argparse.Namespace, data: dict[str, object], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if getattr(args, "json", False) else text, flush=True)


def run_demo_command(args: argparse.Namespace) -> int:
    from .demo import run_demo  # imports the loopback servers only when asked

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    require_rar_tool(CallRules())
    return run_demo(args.dir.resolve())


def run_doctor(args: argparse.Namespace) -> int:
    """One line per check; exit 0 only when everything works."""
    failures = 0

    def report(name: str, problem: str | None, fine: str) -> None:
        nonlocal failures
        failures += problem is not None
        print(f"{'FAIL' if problem else 'ok  '}  {name}: {problem or fine}")

    try:
        settings = load(args.config)
    except ConfigError as error:
        for line in error.lines:
            report("config", line, "")
        return EXIT_ENVIRONMENT
    report("config", None, str(args.config))
    problem = self_test(settings.call_rules().limits)
    report("rar tool", problem and f"{problem}. {UNRAR_HELP}", "unrar reads the bundled RAR5 archive exactly")
    try:
        engine = open_database(settings.database_url)
        with Session(engine) as session:
            count = len(roster_entries(session))
        report("database", None, f"{settings.storage.database} ({count} enterprises in the roster)")
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
    return EXIT_OK if failures == 0 else EXIT_ENVIRONMENT


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


if __name__ == "__main__":
    sys.exit(main())
