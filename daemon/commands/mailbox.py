"""Commands on the mailbox: run (the daemon), demo (the daemon on loopback servers), requeue, doctor."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from typing import Protocol

from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from ..app import quarantine
from ..app.errors import ActionError
from ..campaign import MIB, CallRules
from ..config import ConfigError, ImapSettings, MissingSecret, Settings, SmtpSettings, load, secret
from ..explain import human_size
from ..intake.archive import UNRAR_HELP, self_test
from ..intake.roster import RosterError, read_roster
from ..mail.imap import Mailbox, MailboxError, UidValidityError
from ..mail.smtp import check_login
from ..runner import FATAL, Daemon, DaemonFailed, failure_text
from ..service.health import summary
from ..service.lock import AlreadyRunning
from ..service.roster_sync import listed
from ..storage import schema
from ..storage.db import DatabaseMissing, SchemaMismatch, open_database, sqlite_file
from .common import require_rar_tool, runtime_from, say, settings_from
from .exits import EXIT_ENVIRONMENT, EXIT_OK, EnvironmentProblem, UsageError


def run_daemon(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    require_rar_tool(settings.call_rules())
    try:
        daemon = Daemon(settings, dry_run=args.dry_run)
    except MissingSecret as error:
        raise UsageError(str(error)) from error
    try:
        if args.now is not None and not args.once:
            raise UsageError("--now 只能与 --once 一起使用")
        if not args.once:
            daemon.run_forever()
            return EXIT_OK
        result = daemon.run_once(args.now)
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
        f"处理 {result.report.handled} 封邮件；回复：发出 {sent.sent} 封，稍后重试 {sent.deferred} 封，"
        f"失败 {sent.failed} 封，不确定是否送达 {sent.uncertain} 封",
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

    require_rar_tool(CallRules())
    return run_demo(args.dir.resolve())


CHECK_WORDS = {
    "config": "配置文件",
    "rar tool": "RAR 解压工具",
    "database": "数据库",
    "schema": "数据库结构",
    "set aside": "搁置的邮件",
    "files": "文件目录",
    "roster": "名单",
    "imap": "收信（IMAP）",
    "smtp": "发信（SMTP）",
}
"""The checks' names as staff read them (the codes stay in --json)."""


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


def run_requeue(args: argparse.Namespace) -> int:
    """Take a quarantined message back after a fix: the daemon handles it again on its next cycle."""
    runtime = runtime_from(settings_from(args.config), load_roster=False)
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            item = quarantine.find_item(session, args.message)
            error = item.last_error
            quarantine.requeue(item)
        except ActionError as problem:
            raise UsageError(str(problem)) from problem
        session.add(item)
        session.commit()
    name = f"{item.folder}:{item.uid}"
    say(
        args,
        {"message": name, "subject": item.subject, "state": item.state.value, "last_error": error},
        f"已重新排队：{name}「{item.subject}」（上次出错：{error}）。守护进程下一轮收信时重新处理。",
    )
    return EXIT_OK


class _Report(Protocol):
    def __call__(self, name: str, problem: str | None, fine: str, *, warning: bool = False) -> None: ...


def run_doctor(args: argparse.Namespace) -> int:
    """One line per check (or one JSON list with --json); exit 0 unless a check failed (warnings do not).

    `--offline` checks only what is on this machine, for systemd's ExecStartPre: a mail provider's outage
    at boot must not fail the unit (the daemon reconnects by itself).
    """
    checks: list[dict[str, object]] = []

    def report(name: str, problem: str | None, fine: str, *, warning: bool = False) -> None:
        warned = warning and problem is not None
        checks.append({"check": name, "ok": problem is None or warned, "warning": warned, "detail": problem or fine})
        if not args.json:
            mark = "正常" if problem is None else "注意" if warned else "失败"
            print(f"{mark}  {CHECK_WORDS.get(name, name)}：{problem or fine}", flush=True)

    try:
        _doctor_checks(args, report)
    finally:
        if args.json:
            print(json.dumps(checks, ensure_ascii=False))
    return EXIT_OK if all(check["ok"] for check in checks) else EXIT_ENVIRONMENT


def _doctor_checks(args: argparse.Namespace, report: _Report) -> None:
    try:
        settings = load(args.config)
    except ConfigError as error:
        for line in error.lines:
            report("config", line, "")
        return
    report("config", None, str(args.config))
    problem = self_test(settings.call_rules().limits)
    report("rar tool", problem and f"{problem}。{UNRAR_HELP}", "unrar 能正确解压内置的 RAR5 样本")
    try:
        engine = open_database(settings.database_url, upgrade=False)
        with Session(engine) as session:
            count = len(list(listed(session)))
            aside = quarantine.set_aside(session)
        report("database", None, f"{settings.storage.database}（名单中 {count} 家企业）")
        report("schema", None, f"已是最新（{schema.version_of(engine).current}）")
        report(
            "set aside",
            f"{len(aside)} 封邮件被搁置：" + "；".join(entry.line() for entry in aside) if aside else None,
            "没有被隔离或等待磁盘空间的邮件",
            warning=True,
        )
    except SchemaMismatch as error:
        report("database", None, settings.storage.database)
        behind = schema.version_of(create_engine(settings.database_url)).state is schema.SchemaState.BEHIND
        report("schema", f"{error}（shenbao run 启动时也会自动升级）" if behind else str(error), "", warning=behind)
    except SQLAlchemyError as error:
        report("database", f"{settings.storage.database}: {error}", "")
    report("files", *_doctor_files(settings), warning=True)
    if settings.roster_path is not None:
        try:
            report(
                "roster",
                None,
                f"{settings.roster_path} 中有 {len(read_roster(settings.roster_path))} 家企业",
            )
        except (RosterError, OSError) as error:
            report("roster", str(error), "")
    if args.offline:
        return
    if settings.imap is not None:
        report("imap", *_doctor_imap(settings.imap))
    if settings.smtp is not None:
        report("smtp", *_doctor_smtp(settings.smtp))


def _doctor_files(settings: Settings) -> tuple[str | None, str]:
    """Whether the files folder (or the folder that will hold it) is writable, and has room beyond the reserve."""
    root = settings.files_dir
    existing = next(folder for folder in (root, *root.parents) if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{root}：不能写入（{existing} 不可写）", ""
    free = shutil.disk_usage(existing).free
    reserve = int(settings.storage.reserve_mb * MIB)
    if free < reserve:
        return f"{root}：可用空间 {human_size(free)}，低于保留的 {human_size(reserve)}：新邮件将等待，直到腾出空间", ""
    return None, f"{root}（可用 {human_size(free)}，保留 {human_size(reserve)}）"


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
            counts.append(f"{folder}（{len(mailbox.uids())} 封）")
        idle = "支持 IDLE" if mailbox.has("IDLE") else f"不支持 IDLE：每 {imap.poll_seconds:g} 秒查看一次"
        return None, f"已以 {imap.username} 登录 {imap.host}:{imap.port}；{idle}；" + "，".join(counts)
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
    return None, f"已登录 {smtp.host}:{smtp.port}"
