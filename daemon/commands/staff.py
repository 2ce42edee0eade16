"""Staff commands: export, digest, remind, decide, resend, recheck and attach.

Each renders the application layer's views and actions (`daemon.app`): Chinese text for people, JSON with
codes for scripts (one object per line for commands that list things).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from ..addresses import single_address
from ..app import actions, audit
from ..app.errors import ActionError
from ..app.queries import (
    message_id_of,
)
from ..explain import (
    OUTCOME_WORDS,
    REPLY_WORDS,
    STATE_WORDS,
    reference,
    shanghai_time,
)
from ..service.outbox import send_due
from ..service.runtime import Runtime
from ..staff import digest, export, reminders
from ..staff.jobs import reminders_if_due
from ..storage.models import OutboxItem, now
from ..text import for_terminal
from .common import (
    print_lines,
    progress,
    require_rar_tool,
    runtime_from,
    say,
    settings_from,
    smtp_sender_for,
    staff_runtime,
)
from .exits import EXIT_OK, UsageError


def run_digest(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    runtime = runtime_from(settings)
    if args.now and not args.output:
        raise UsageError("--now 只能与 --output 一起使用：发送的日报总是今天的")
    moment = args.now or now()
    renderer = runtime.renderer()
    with Session(runtime.engine) as session:
        built = digest.gather(session, runtime.rules, settings.campaign.name, moment)
    if args.output:
        recipient = (settings.digest.recipients or (single_address(runtime.sender()),))[0]
        written = digest.write(built, renderer, args.output, recipient, moment)
        say(args, {"written": [str(p) for p in written]}, "\n".join(f"已写入 {p}" for p in written))
        return EXIT_OK
    if not settings.digest.recipients:
        raise UsageError("digest.recipients 为空：没有日报收件人（可用 --output DIR 写到文件夹）")
    with Session(runtime.engine) as session:
        queued = digest.queue(session, renderer, settings.digest.recipients, built, moment)
        session.commit()
    sent = send_due(runtime.engine, smtp_sender_for(settings)) if queued else None
    text = (
        f"{built.day} 的日报已发往 {'、'.join(settings.digest.recipients)}（发出 {sent.sent if sent else 0} 封）"
        if queued
        else f"{built.day} 的日报此前已发送"
    )
    say(args, {"day": built.day.isoformat(), "queued": queued, "sent": sent.sent if sent else 0}, text)
    return EXIT_OK


def run_remind(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    runtime = runtime_from(settings)
    moment = args.now or now()
    if args.dry_run:
        with Session(runtime.engine) as session:
            found = reminders.candidates(session, runtime.rules, settings.reminders, moment)
        rows: list[dict[str, Any]] = [
            {"call": c.call.code, "to": c.name, "addresses": list(c.addresses), "remind": c.remind, "reason": c.reason}
            for c in found
        ]
        if args.json:
            print_lines(args, rows)
            return EXIT_OK
        if not rows:
            days = "、".join(str(d) for d in settings.reminders.days)
            print(
                f"{shanghai_time(moment)} 没有要发送的提醒：提醒在截止前 {days} 天的 "
                f"{settings.reminders.time:%H:%M} 发送"
            )
        for row in rows:
            print(
                for_terminal(
                    f"{'提醒' if row['remind'] else '不提醒'}  {row['to']} "
                    f"<{'、'.join(row['addresses']) or '—'}>：{row['reason']}"
                )
            )
        return EXIT_OK
    queued = reminders_if_due(runtime, moment)
    sent = send_due(runtime.engine, smtp_sender_for(settings), at=moment) if queued else None
    say(
        args,
        {"queued": queued, "sent": sent.sent if sent else 0},
        f"已安排 {queued} 份提醒，发出 {sent.sent if sent else 0} 封",
    )
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    folder: Path = args.folder
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} 不是空文件夹：请导出到新的文件夹")
    bar = progress(args, 0, "导出")

    def step(done: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(for_terminal(name[:20]), refresh=False)
        bar.update(done - bar.n)

    with Session(runtime.engine) as session:
        result = export.export(session, runtime.blobs, runtime.rules, folder, step)
    bar.close()
    say(
        args,
        {
            "folder": str(folder),
            "enterprises": result.enterprises,
            "files": result.files,
            "missing": result.missing,
            "without_documents": result.empty,
        },
        f"已导出 {result.enterprises} 家企业（{result.files} 个文件）到 {folder}；"
        f"校验：cd {folder} && sha256sum -c {export.MANIFEST}"
        + (
            f"\n尚未受理、未导出：{names_line(result.missing, whole=f'{folder / export.WORKBOOK} 的“状态”列')}"
            if result.missing
            else ""
        )
        + (f"\n人工受理但没有材料记录（请用 attach 添加压缩包）：{_names(result.empty)}" if result.empty else ""),
    )
    return EXIT_OK


SHOWN_NAMES = 20
"""Names one line of a command's summary lists before it counts the rest (a campaign of thousands has more)."""


def names_line(names: list[str], *, whole: str) -> str:
    """The names, or the first of them and how many there are, with `whole`: where to read them all."""
    if len(names) <= SHOWN_NAMES:
        return _names(names)
    return f"{_names(names[:SHOWN_NAMES])} 等 {len(names)} 家；完整名单见 {whole}"


def _names(names: list[str]) -> str:
    return "、".join(map(for_terminal, names))


def _actor() -> str:
    return getpass.getuser()


def _audit(session: Session, done: actions.Done, detail: str) -> None:
    """The action in the audit log the web console shows, by the system user, from the command line."""
    audit.record(
        session,
        _actor(),
        done.action,
        now(),
        message_id=message_id_of(done.reference),
        enterprise=done.enterprise,
        detail=detail,
        address=audit.COMMAND_LINE,
    )


def run_decide(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    sender = smtp_sender_for(runtime.settings)
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            done = actions.decide(
                session,
                runtime.planner(),
                runtime.recorder(),
                args.reference,
                accept=args.accept,
                note=args.note,
                actor=_actor(),
                moment=now(),
                enterprise=args.enterprise,
                call=args.call,
                city=args.city,
            )
        except ActionError as error:
            raise UsageError(str(error)) from error
        _audit(session, done, args.note)
        session.commit()
    return _deliver(args, runtime, sender, done)


def run_resend(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    sender = smtp_sender_for(runtime.settings)
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            done = actions.resend(session, runtime.planner(), args.reference, now())
        except ActionError as error:
            raise UsageError(str(error)) from error
        _audit(
            session,
            done,
            f"{REPLY_WORDS.get(done.reply.kind, done.reply.kind)} → {done.reply.recipient}" if done.reply else "",
        )
        session.commit()
    return _deliver(args, runtime, sender, done)


def _deliver(args: argparse.Namespace, runtime: Runtime, sender: Any, done: actions.Done) -> int:
    """Send what the action queued, now, and say what happened."""
    sent = send_due(runtime.engine, sender)
    state = None
    if done.reply is not None:
        with Session(runtime.engine) as session:
            item = session.get(OutboxItem, done.reply.id)
            state = item.state.value if item else None
    reply = (
        f"；{REPLY_WORDS.get(done.reply.kind, done.reply.kind)}发往 {done.reply.recipient}："
        f"{STATE_WORDS.get(state or '', state)}"
        if done.reply
        else ""
    )
    say(
        args,
        {
            "reference": done.reference,
            "done": done.action,
            "enterprise": done.enterprise,
            "reply": done.reply.kind if done.reply else None,
            "to": done.reply.recipient if done.reply else None,
            "state": state,
            "sent": sent.sent,
        },
        done.text + reply,
    )
    return EXIT_OK


def run_recheck(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    require_rar_tool(runtime.rules)
    sender = smtp_sender_for(runtime.settings) if args.notify else None
    with progress(args, 0, "重新核验") as bar:

        def step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        checked, changes = actions.recheck(
            runtime.recorder(),
            runtime.planner() if args.notify else None,
            since=args.since,
            dry_run=args.dry_run,
            progress=step,
        )
    if sender is not None:
        send_due(runtime.engine, sender)
    if args.json:
        print_lines(
            args,
            [
                {
                    "reference": c.reference,
                    "enterprise": c.enterprise,
                    "before": c.before.value,
                    "before_codes": c.before_codes,
                    "after": c.after.value,
                    "after_codes": c.after_codes,
                }
                for c in changes
            ]
            + [{"checked": checked, "changed": len(changes), "recorded": not args.dry_run}],
        )
        return EXIT_OK
    for c in changes:
        print(f"{c.reference} {c.enterprise or '—'}：{OUTCOME_WORDS[c.before]} → {OUTCOME_WORDS[c.after]}")
    if args.dry_run:
        after = "未作记录（去掉 --dry-run 才会记录新的结论）"
    elif args.notify:
        after = "已通知发件人" if changes else "无需通知"
    else:
        after = "已记录，未通知发件人（可用 shenbao resend 答复）" if changes else "无需通知"
    print(f"重新核验 {checked} 封邮件，{len(changes)} 封结论有变化；{after}")
    return EXIT_OK


def run_attach(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    require_rar_tool(runtime.rules)
    if args.dir is not None:
        files = sorted(p for p in args.dir.iterdir() if p.is_file())
        with Session(runtime.engine) as session:
            matched = actions.match_downloads(session, files)
        targets = [(reference(record_id), paths) for record_id, paths in matched.items()]
        unmatched = [p for p in files if all(p not in paths for _, paths in targets)]
    else:
        if args.reference is None or not args.archives:
            raise UsageError("用法：shenbao attach 登记编号 文件.rar…，或 shenbao attach --dir 下载文件夹")
        missing = [p for p in args.archives if not p.is_file()]
        if missing:
            raise UsageError("没有这个文件：" + "、".join(map(str, missing)))
        targets, unmatched = [(args.reference, list(args.archives))], []
    sender = None if args.no_notify else smtp_sender_for(runtime.settings)
    results = []
    for text, paths in targets:
        try:
            done = actions.attach(
                runtime.recorder(), runtime.planner(), text, paths, notify=not args.no_notify, moment=now()
            )
        except ActionError as error:
            raise UsageError(str(error)) from error
        results.append(done)
        with Session(runtime.engine) as session:
            _audit(session, done, "、".join(p.name for p in paths))
            session.commit()
    if sender is not None:
        send_due(runtime.engine, sender)
    if args.json:
        print_lines(
            args,
            [
                {
                    "reference": r.reference,
                    "done": r.action,
                    "enterprise": r.enterprise,
                    "before": r.before.value if r.before else None,
                    "after": r.after.value if r.after else None,
                }
                for r in results
            ]
            + [{"unmatched": [str(p) for p in unmatched]}],
        )
        return EXIT_OK
    for result in results:
        print(result.text)
    for path in unmatched:
        print(f"未能对应到待下载的邮件：{path}")
    return EXIT_OK
