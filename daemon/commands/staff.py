"""Staff commands: status, show, export, digest, remind, decide, resend, recheck and attach."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from ..campaign import CallRules
from ..domain import Outcome
from ..explain import OUTCOME_WORDS, shanghai_time, title, titles
from ..intake.match import normalise
from ..pipeline import Judgement
from ..render import Renderer, single_address
from ..service.jobs import reminders_if_due
from ..service.outbox import Sender, send_due
from ..service.recorder import OnRecord
from ..service.replies import human_size, reference
from ..service.runtime import Runtime
from ..staff import decisions, digest, export, reminders
from ..staff.status import MessageView, Standing, enterprise_statuses
from ..storage.models import Decision, DocumentRecord, MessageRecord, OutboxItem, Submission, now
from ..tables import print_table
from ..text import for_terminal
from .common import (
    EXIT_OK,
    UsageError,
    require_rar_tool,
    runtime_from,
    say,
    settings_from,
    smtp_sender_for,
    staff_runtime,
)


def run_digest(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    runtime = runtime_from(settings)
    if args.now and not args.output:
        raise UsageError("--now only goes with --output: a digest that is sent is today's")
    moment = args.now or now()
    renderer = Renderer(runtime.sender())
    with Session(runtime.engine) as session:
        built = digest.gather(session, runtime.rules, settings.campaign.name, moment)
    if args.output:
        recipient = (settings.digest.recipients or (single_address(runtime.sender()),))[0]
        written = digest.write(built, renderer, args.output, recipient, moment)
        say(args, {"written": [str(p) for p in written]}, "\n".join(f"wrote {p}" for p in written))
        return EXIT_OK
    if not settings.digest.recipients:
        raise UsageError("digest.recipients is empty: nobody to send the digest to (use --output DIR to write it)")
    with Session(runtime.engine) as session:
        queued = digest.queue(session, renderer, settings.digest.recipients, built, moment)
        session.commit()
    sent = send_due(runtime.engine, smtp_sender_for(settings)) if queued else None
    text = (
        f"digest for {built.day} queued to {', '.join(settings.digest.recipients)}; {sent.sent if sent else 0} sent"
        if queued
        else f"the digest for {built.day} was already sent"
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
                for_terminal(
                    f"{'remind' if row['remind'] else 'skip  '}  {row['enterprise']} <{row['email'] or '—'}>: "
                    f"{row['reason']}"
                )
            )
        return EXIT_OK
    queued = reminders_if_due(runtime, moment)
    sent = send_due(runtime.engine, smtp_sender_for(settings), at=moment) if queued else None
    say(
        args,
        {"queued": queued, "sent": sent.sent if sent else 0},
        f"{queued} reminders queued, {sent.sent if sent else 0} sent",
    )
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    with Session(runtime.engine) as session:
        found = enterprise_statuses(session, args.city)
    if args.json:
        rows = [
            {
                "city": s.enterprise.city,
                "enterprise": s.enterprise.name,
                "status": s.standing.value,
                "messages": len(s.messages),
                "versions": s.versions,
                "last_received": s.last_received.isoformat() if s.last_received else None,
                "problems": titles(s.open_problems, runtime.rules),
                "contact": s.enterprise.contact,
                "email": s.enterprise.email,
            }
            for s in found
        ]
        print(json.dumps(rows, ensure_ascii=False))
        return EXIT_OK
    table = [("所属市", "企业名称", "状态", "提交", "受理版本", "最近提交", "问题")]
    for s in found:
        when = shanghai_time(s.last_received) if s.last_received else "—"
        problems = titles(s.open_problems, runtime.rules)
        table.append(
            (
                s.enterprise.city,
                s.enterprise.name,
                s.standing.value,
                str(len(s.messages)),
                str(s.versions),
                when,
                problems,
            )
        )
    print_table(table)
    counts = Counter(s.standing for s in found)
    summary = "，".join(f"{standing.value} {counts[standing]}" for standing in Standing)
    print(f"\n{summary}；共 {len(found)} 家")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    with Session(runtime.engine) as session:
        matches = [s for s in enterprise_statuses(session) if normalise(args.name) in normalise(s.enterprise.name)]
        if len(matches) != 1:
            names = "、".join(for_terminal(s.enterprise.name) for s in matches) or "none"
            raise UsageError(f"{args.name!r} matches {len(matches)} enterprises: {names}")
        status = matches[0]
        history = [_history(session, view, runtime.rules) for view in status.messages]
        versions = {
            sub.message_id: sub.version
            for sub in session.exec(select(Submission).where(Submission.enterprise_id == status.enterprise.id))
        }
    enterprise = status.enterprise
    if args.json:
        print(
            json.dumps(
                {
                    "enterprise": enterprise.name,
                    "city": enterprise.city,
                    "status": status.standing.value,
                    "contact": enterprise.contact,
                    "email": enterprise.email,
                    "phone": enterprise.phone,
                    "messages": history,
                },
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    lines = [
        f"{enterprise.name}（{enterprise.city}）：{status.standing.value}，受理版本 {status.versions}",
        f"联系人 {enterprise.contact or '—'} {enterprise.phone} {enterprise.email}",
    ]
    for item in history:
        version = versions.get(int(item["id"]))
        lines += [
            "",
            f"{item['reference']}  {item['received']}  {item['sender']}  {item['outcome']}"
            + (f"（第 {version} 版）" if version else ""),
            f"  主题：{item['subject']}",
            *(f"  ✗ {problem}" for problem in item["problems"]),
            *(f"  · {document}" for document in item["documents"]),
            *(f"  ⚑ 人工决定：{decision}" for decision in item["decisions"]),
            *(f"  ✉ {reply}" for reply in item["replies"]),
        ]
    print("\n".join(map(for_terminal, lines)))
    return EXIT_OK


def _history(session: Session, view: MessageView, rules: CallRules) -> dict[str, Any]:
    record = view.record
    assert record.id is not None
    documents = session.exec(select(DocumentRecord).where(DocumentRecord.message_id == record.id)).all()
    replies = session.exec(select(OutboxItem).where(OutboxItem.message_id == record.id)).all()
    decisions = session.exec(select(Decision).where(Decision.message_id == record.id)).all()
    return {
        "id": record.id,
        "reference": reference(record.id),
        "received": shanghai_time(record.received_at),
        "sender": record.sender or "—",
        "subject": record.subject,
        "outcome": OUTCOME_WORDS[view.outcome],
        "problems": [title(p, rules) + (f"（{p.detail}）" if p.detail else "") for p in view.found],
        "documents": [f"{d.name}（{human_size(d.size)}，SHA-256 {d.sha256}）" for d in documents],
        "decisions": [
            f"{shanghai_time(d.decided_at)} {OUTCOME_WORDS[Outcome(d.outcome)]}：{d.note}" for d in decisions
        ],
        "replies": [
            f"{r.kind} → {r.recipient}：{r.state}" + (f"（{shanghai_time(r.sent_at)}）" if r.sent_at else "")
            for r in replies
        ],
    }


def run_export(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    folder: Path = args.folder
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty: export into a new folder")
    interactive = sys.stderr.isatty()

    def progress(done: int, total: int, name: str) -> None:
        if interactive:
            bar = "█" * (20 * done // max(total, 1))
            shown = for_terminal(name[:20])
            print(f"\r导出 [{bar:<20}] {done}/{total} {shown}", end="", file=sys.stderr, flush=True)

    with Session(runtime.engine) as session:
        result = export.export(session, runtime.blobs, runtime.rules, folder, progress)
    if interactive:
        print(file=sys.stderr)
    say(
        args,
        {
            "folder": str(folder),
            "enterprises": result.enterprises,
            "files": result.files,
            "missing": result.missing,
            "without_documents": result.empty,
        },
        f"exported {result.enterprises} enterprises ({result.files} files) into {folder}; "
        f"check with: cd {folder} && sha256sum -c {export.MANIFEST}"
        + (f"\nnot accepted, so not exported: {'、'.join(map(for_terminal, result.missing))}" if result.missing else "")
        + (
            "\naccepted by hand but no documents on record (attach the archive): "
            + "、".join(map(for_terminal, result.empty))
            if result.empty
            else ""
        ),
    )
    return EXIT_OK


def run_resend(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    sender = smtp_sender_for(runtime.settings)
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            row = decisions.find_message(session, args.reference)
            item = decisions.resend(session, runtime.planner(), row, now())
        except decisions.ActionError as error:
            raise UsageError(str(error)) from error
        session.commit()
    return _deliver(args, runtime, sender, item, "resent")


def run_decide(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    sender = smtp_sender_for(runtime.settings)
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            row = decisions.find_message(session, args.reference)
            item = decisions.decide(session, runtime.planner(), row, args.accept, args.note, now())
        except decisions.ActionError as error:
            raise UsageError(str(error)) from error
        session.commit()
    return _deliver(args, runtime, sender, item, "accepted" if args.accept else "rejected")


def _deliver(args: argparse.Namespace, runtime: Runtime, sender: Sender, item: OutboxItem | None, what: str) -> int:
    """Send the notice just queued, now, and say what happened."""
    if item is None:
        say(args, {"done": what, "reply": None}, f"{what}; the sender cannot be answered (no single From address)")
        return EXIT_OK
    sent = send_due(runtime.engine, sender)
    with Session(runtime.engine) as session:
        state = session.get(OutboxItem, item.id)
        final = state.state if state else "unknown"
    say(
        args,
        {"done": what, "reply": item.kind, "to": item.recipient, "state": final, "sent": sent.sent},
        f"{what}; {item.kind} to {item.recipient}: {final}",
    )
    return EXIT_OK


def run_recheck(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    require_rar_tool(runtime.rules)
    recorder = runtime.recorder()
    with Session(runtime.engine) as session:
        query = select(MessageRecord.id).order_by(col(MessageRecord.id))
        if args.since:
            query = query.where(MessageRecord.received_at >= args.since)
        ids = [i for i in session.exec(query).all() if i is not None]
    sender = smtp_sender_for(runtime.settings) if args.notify else None
    on_record = _notifier(runtime) if args.notify else None
    changes = []
    for record_id in ids:
        revision = recorder.revise(record_id, "recheck", on_record=on_record, dry_run=args.dry_run)
        if revision.changed:
            changes.append(
                {
                    "reference": reference(record_id),
                    "before": revision.old_outcome,
                    "before_codes": revision.old_codes,
                    "after": revision.new_outcome,
                    "after_codes": revision.new_codes,
                }
            )
    if sender is not None:
        send_due(runtime.engine, sender)
    if args.json:
        print(json.dumps({"checked": len(ids), "changed": changes, "recorded": not args.dry_run}, ensure_ascii=False))
        return EXIT_OK
    for change in changes:
        print(
            f"{change['reference']}: {change['before']} ({change['before_codes'] or '—'}) -> "
            f"{change['after']} ({change['after_codes'] or '—'})"
        )
    if args.dry_run:
        after = "nothing recorded (without --dry-run the new verdicts are recorded)"
    elif args.notify:
        after = "senders told" if changes else "nobody to tell"
    else:
        after = "recorded; nobody told (answer them with `shenbao resend`)" if changes else "nothing to tell"
    print(f"{len(ids)} messages judged again, {len(changes)} changed; {after}")
    return EXIT_OK


def run_attach(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    if not args.archive.is_file():
        raise UsageError(f"no such file: {args.archive}")
    require_rar_tool(runtime.rules)
    sender = None if args.no_notify else smtp_sender_for(runtime.settings)
    with Session(runtime.engine) as session:
        try:
            row = decisions.find_message(session, args.reference)
        except decisions.ActionError as error:
            raise UsageError(str(error)) from error
        assert row.id is not None
        record_id = row.id
    revision = runtime.recorder().revise(
        record_id, "attach", extra=args.archive, on_record=None if args.no_notify else _notifier(runtime, always=True)
    )
    if sender is not None:
        send_due(runtime.engine, sender)
    say(
        args,
        {
            "reference": reference(record_id),
            "before": revision.old_outcome,
            "after": revision.new_outcome,
            "codes": revision.new_codes,
        },
        f"{reference(record_id)}: {revision.old_outcome} -> {revision.new_outcome} "
        f"({revision.new_codes or 'no problem'})",
    )
    return EXIT_OK


def _notifier(runtime: Runtime, always: bool = False) -> OnRecord:
    """Answers a revised message with its new verdict (unless a person already decided it)."""
    planner = runtime.planner()

    def notify(session: Session, row: MessageRecord, _judgement: Judgement) -> None:
        decided = session.exec(select(Decision).where(Decision.message_id == row.id)).first()
        if always or decided is None:
            planner.queue(session, row, now(), guard=False)

    return notify
