"""Looking things up: `status` (where every enterprise stands) and `show` (one enterprise or message, all on
record). Read-only, and they load nothing that judges or sends mail, so they answer quickly.

Each renders the application layer's views (`daemon.app`): Chinese text for people, JSON Lines with codes
for scripts.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from sqlmodel import Session

from ..app.errors import NotFound
from ..app.queries import (
    bundle_views,
    copies,
    documents_of,
    enterprise_rows,
    find_message,
    message_id_of,
    message_views,
    messages_about,
)
from ..app.views import BundleView, CopyView, EnterpriseRow, MessageView, Standing
from ..campaign import CallRules
from ..explain import (
    OUTCOME_WORDS,
    REPLY_WORDS,
    SEAL_WORDS,
    STATE_WORDS,
    contents_text,
    copy_text,
    documents_text,
    human_size,
    reference,
    shanghai_time,
    title,
    titles,
)
from ..tables import print_table
from ..text import for_terminal
from .common import print_lines, staff_runtime
from .exits import EXIT_OK, UsageError


def _row_json(row: EnterpriseRow, rules: CallRules) -> dict[str, Any]:
    return {
        "city": row.city,
        "enterprise": row.name,
        "call": row.call,
        "status": row.standing.code,
        "standing": row.standing.value,
        "title": row.title,
        "messages": row.packages,
        "versions": row.versions,
        "last_received": row.last_received.isoformat() if row.last_received else None,
        "problems": [p.as_dict() for p in row.open_problems],
        "contact": row.contact,
        "phone": row.phone,
        "email": row.email,
        "latest": reference(row.latest_message) if row.latest_message else None,
        "form_title": row.form_title,
        "seal": row.seal.value if row.seal else None,
    }


def _copy_json(copy: CopyView) -> dict[str, Any]:
    return {
        "kind": copy.kind.value,
        "role": copy.role,
        "document": copy.document,
        "other": copy.other,
        "other_document": copy.other_document,
        "similarity": round(copy.similarity, 3),
    }


def _bundle_json(bundle: BundleView) -> dict[str, Any]:
    return {
        "bundle": f"{bundle.city}-{bundle.call}",
        "city": bundle.city,
        "call": bundle.call,
        "letter": bundle.letter is not None,
        "table": bundle.table is not None,
        "table_enterprises": list(bundle.listed),
        "enterprises_accepted": list(bundle.accepted),
        "missing": list(bundle.missing),
        "complete": bundle.complete,
        "late": bundle.late,
        "codes": list(bundle.codes),
        "messages": [reference(m) for m in bundle.messages],
    }


def run_status(args: argparse.Namespace) -> int:
    runtime = staff_runtime(args)
    rules = runtime.rules
    with Session(runtime.engine) as session:
        rows = enterprise_rows(session, call=args.call, city=args.city)
        bundles = bundle_views(session, rules, city=args.city, call=args.call) if args.city or args.bundles else []
    if args.json:
        print_lines(args, [_row_json(r, rules) for r in rows] + [_bundle_json(b) for b in bundles])
        return EXIT_OK
    for bundle in bundles:
        call = rules.call(bundle.call)
        print(f"{bundle.city} · {call.name if call else bundle.call}：")
        print(f"  推荐文件：{bundle.letter or '—'}{f'（{bundle.letter_pages} 页）' if bundle.letter_pages else ''}")
        print(f"  汇总表：{bundle.table or '—'}（{len(bundle.listed)} 家）")
        print(f"  已受理：{'、'.join(bundle.accepted) or '—'}")
        print(f"  尚缺：{'、'.join(bundle.missing) or '—'}{'；迟报' if bundle.late else ''}\n")
    multi = len(rules.calls) > 1
    table = [("市", "企业名称", *(("评选",) if multi else ()), "状态", "提交", "受理版本", "最近提交", "问题")]
    for r in rows:
        call = rules.call(r.call)
        table.append(
            (
                r.city,
                r.name,
                *((call.name if call else r.call,) if multi else ()),
                r.standing.value,
                str(r.packages),
                str(r.versions),
                shanghai_time(r.last_received) if r.last_received else "—",
                titles(r.open_problems, rules),
            )
        )
    print_table(table)
    counts = Counter(r.standing for r in rows)
    print(f"\n{'，'.join(f'{s.value} {counts[s]}' for s in Standing)}；共 {len(rows)} 家")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    """A message by its 登记编号, or an enterprise by (part of) its name: everything on record."""
    runtime = staff_runtime(args)
    rules = runtime.rules
    with Session(runtime.engine) as session:
        if message_id_of(args.name) is not None:
            try:
                record = find_message(session, args.name)
            except NotFound as error:
                raise UsageError(str(error)) from error
            assert record.id is not None
            views, header, shared = message_views(session, ids=[record.id]), None, []
        else:
            found = enterprise_rows(session, search=args.name, documents=True)
            names = {r.enterprise_id for r in found}
            if len(names) != 1:
                listed = "、".join(dict.fromkeys(for_terminal(r.name) for r in found)) or "没有"
                raise UsageError(f"与“{args.name}”相符的企业：{listed}。请给出更完整的名称或登记编号")
            header = found
            views = messages_about(session, found[0].enterprise_id)
            shared = [c.facing(found[0].enterprise_id) for c in copies(session, rules)]
            shared = [c for c in shared if c.enterprise_id == found[0].enterprise_id]
        documents = documents_of(session, [p.id for v in views for p in v.packages])
    history = [_history(v, documents, rules) for v in views]
    if args.json:
        head = [{**_row_json(r, rules), "copies": [_copy_json(c) for c in shared]} for r in header or []]
        print_lines(args, head + history)
        return EXIT_OK
    lines = []
    for row in header or []:
        call = rules.call(row.call)
        lines += [
            f"{row.name}（{row.city}，{call.name if call else row.call}）："
            f"{row.standing.value}，受理版本 {row.versions}",
            f"  质量标杆名称：{row.benchmark_title or '—'}；联系人 {row.contact or '—'} {row.phone} {row.email}",
        ]
        if row.documents:
            seal = f"；{SEAL_WORDS[row.seal]}" if row.seal else ""
            lines.append(f"  材料：{documents_text(((d.role, d.contents) for d in row.documents), rules)}{seal}")
    lines += [f"  ⚠ {copy_text(c.kind, c.role, c.other, c.similarity, rules)}（{c.document}）" for c in shared]
    for item in history:
        lines += [
            "",
            f"{item['reference']}  {item['received']}  {item['sender']}  {item['outcome_words']}",
            f"  主题：{item['subject']}",
            *(f"  {line}" for line in item["lines"]),
        ]
    print("\n".join(map(for_terminal, lines)))
    return EXIT_OK


def _history(view: MessageView, documents: dict[int, list[Any]], rules: CallRules) -> dict[str, Any]:
    lines = [f"✗ {title(p, rules)}{f'（{p.detail}）' if p.detail else ''}" for p in view.problems]
    for package in view.packages:
        version = f"（第 {package.version} 版）" if package.version else ""
        joined = "（分卷已并入后续邮件）" if package.joined else ""
        lines.append(f"▸ {package.enterprise or '未识别企业'}：{OUTCOME_WORDS[package.outcome]}{version}{joined}")
        lines += [f"   ✗ {title(p, rules)}{f'（{p.detail}）' if p.detail else ''}" for p in package.problems]
        if package.title:
            lines.append(f"   质量标杆名称：{package.title}")
        if package.seal:
            where = f"（{package.seal.document}）" if package.seal.document else ""
            lines.append(f"   申报书：{SEAL_WORDS[package.seal.status]}{where}")
        lines += [
            f"   · {d.name}（{human_size(d.size)}，{contents_text(d.contents)}，SHA-256 {d.sha256}）"
            for d in documents.get(package.id, [])
        ]
    lines += [
        f"⚑ 人工决定：{shanghai_time(d.at)} {OUTCOME_WORDS[d.outcome]}（{d.actor or '—'}）：{d.note}"
        for d in view.decisions
    ]
    lines += [
        f"✉ {REPLY_WORDS.get(r.kind, r.kind)} → {r.recipient}：{STATE_WORDS.get(r.state.value, r.state.value)}"
        + (f"（{shanghai_time(r.sent_at)}）" if r.sent_at else "")
        for r in view.replies
    ]
    return {
        "reference": view.reference,
        "received": shanghai_time(view.received_at),
        "sender": view.sender or "—",
        "subject": view.subject,
        "outcome": view.outcome.value,
        "outcome_words": OUTCOME_WORDS[view.outcome],
        "problems": [p.as_dict() for p in view.all_problems],
        "packages": [
            {
                "enterprise": p.enterprise,
                "call": p.call,
                "outcome": p.outcome.value,
                "version": p.version,
                "title": p.title,
                "seal": p.seal.as_dict() if p.seal else None,
            }
            for p in view.packages
        ],
        "decisions": [{"outcome": d.outcome.value, "note": d.note, "actor": d.actor} for d in view.decisions],
        "replies": [{"kind": r.kind, "to": r.recipient, "state": r.state.value} for r in view.replies],
        "lines": lines,
    }
