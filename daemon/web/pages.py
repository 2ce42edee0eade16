"""The pages people read: 总览, 企业 (a list and one page each), one message, 待人工, 下载, and for admins the
whole audit log. Each renders views from `daemon.app.queries`."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

from flask import Blueprint, abort, render_template, request
from sqlmodel import Session

from ..app.accounts import users
from ..app.queries import (
    audit_entries,
    bundle_views,
    bureau_files_of,
    documents_of,
    enterprise_names,
    enterprise_rows,
    health,
    message_views,
    messages_about,
    review_count,
    review_queue,
)
from ..app.views import EnterpriseRow, MessageView, Standing
from ..storage.models import now
from .console import console
from .security import admin, user
from .words import countdown

blueprint = Blueprint("pages", __name__)

ALERT_DAYS = 7
AUDIT_PAGE = 500
LIST_PAGE = 200
"""Enterprises per page of the list: a whole call of 5,000 in one page took a second to build and to show."""


def _counts(rows: list[EnterpriseRow]) -> dict[str, Counter[Standing]]:
    """Standings per city, in the order the cities first appear."""
    found: dict[str, Counter[Standing]] = {}
    for row in rows:
        found.setdefault(row.city or "未注明", Counter())[row.standing] += 1
    return found


@blueprint.get("/")
def overview() -> str:
    runtime = console().runtime
    rules = runtime.rules
    moment = now()
    with Session(runtime.engine) as session:
        rows = enterprise_rows(session)
        bundles = bundle_views(session, rules)
        state = health(session, alerts_since=moment - timedelta(days=ALERT_DAYS))
        waiting = review_count(session)
    calls = [
        {
            "call": call,
            "cities": _counts([r for r in rows if r.call == call.code]),
            "total": Counter(r.standing for r in rows if r.call == call.code),
            "deadline": countdown(call.deadline, moment) if call.own_emails else "",
            "bureau_deadline": countdown(call.bureau_deadline, moment) if call.bureau_deadline else "",
        }
        for call in rules.calls
    ]
    return render_template(
        "overview.html",
        section="overview",
        calls=calls,
        total=Counter(r.standing for r in rows),
        listed=len(rows),
        bundles=bundles,
        health=state,
        alert_days=ALERT_DAYS,
        waiting=waiting,
    )


@blueprint.get("/enterprises")
def enterprises() -> str:
    runtime = console().runtime
    city = request.args.get("city", "").strip() or None
    call = request.args.get("call", "").strip() or None
    search = request.args.get("q", "").strip() or None
    wanted = request.args.get("standing", "").strip()
    standing = next((s for s in Standing if s.code == wanted), None)
    with Session(runtime.engine) as session:
        rows = enterprise_rows(session, call=call, city=city, standing=standing, search=search)
    pages = max(1, math.ceil(len(rows) / LIST_PAGE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    first = (page - 1) * LIST_PAGE
    filters = {"city": city or "", "call": call or "", "q": search or "", "standing": wanted}
    return render_template(
        "enterprises.html",
        section="enterprises",
        rows=rows[first : first + LIST_PAGE],
        listed=len(rows),
        page=page,
        pages=pages,
        first=first,
        filters=filters,
        given={key: value for key, value in filters.items() if value},
        counts=Counter(r.standing for r in rows),
    )


@blueprint.get("/enterprises/<int:enterprise_id>")
def enterprise(enterprise_id: int) -> str:
    runtime = console().runtime
    with Session(runtime.engine) as session:
        rows = enterprise_rows(session, enterprise_id=enterprise_id)
        if not rows:
            abort(404, description="名单中没有这家企业。")
        views = list(reversed(messages_about(session, enterprise_id)))
        ids = [v.id for v in views]
        context = _message_context(session, views)
        entries = audit_entries(session, message_ids=ids, enterprise_id=enterprise_id)
    return render_template(
        "enterprise.html", section="enterprises", rows=rows, name=rows[0].name, audit=entries, **context
    )


@blueprint.get("/messages/<int:message_id>")
def message(message_id: int) -> str:
    runtime = console().runtime
    with Session(runtime.engine) as session:
        views = message_views(session, ids=[message_id])
        if not views:
            abort(404, description="没有这个登记编号的邮件。")
        context = _message_context(session, views)
        entries = audit_entries(session, message_ids=[message_id])
    return render_template("message.html", section="review", view=views[0], audit=entries, **context)


@blueprint.get("/review")
def review() -> str:
    runtime = console().runtime
    with Session(runtime.engine) as session:
        views = review_queue(session)
        context = _message_context(session, views)
    return render_template("review.html", section="review", **context)


def _message_context(session: Session, views: list[MessageView]) -> dict[str, object]:
    """What a message card shows besides the view: documents, a bureau's files, names to attribute to."""
    documents = documents_of(session, [p.id for v in views for p in v.packages])
    files = bureau_files_of(session, [v.id for v in views])
    names = enterprise_names(session) if user().can_act and views else []
    return {"views": views, "documents": documents, "files": files, "names": names}


@blueprint.get("/downloads")
def downloads() -> str:
    return render_template("downloads.html", section="downloads", today=now())


@blueprint.get("/audit")
def audit_log() -> str:
    admin()
    with Session(console().runtime.engine) as session:
        entries = audit_entries(session, limit=AUDIT_PAGE)
        people = users(session)
    return render_template("audit.html", section="audit", audit=entries, people=people, limit=AUDIT_PAGE)
