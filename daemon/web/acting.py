"""Staff's actions: decide (accept or reject, with a note; attributed to an enterprise; a bureau confirmed),
attach archives fetched from a 超大附件 link, resend a reply. Each goes through `daemon.app.actions` with the
logged-in user as the actor, is written to the audit log in the same transaction, and what it queued is
sent at once through the outbox (or left for `shenbao run` when this server cannot send)."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from flask import Blueprint, flash, redirect, request, url_for
from sqlmodel import Session
from werkzeug.wrappers import Response

from ..app import actions, audit
from ..app.errors import ActionError
from ..app.queries import message_views, reply_state
from ..explain import OUTCOME_WORDS, REPLY_WORDS, STATE_WORDS, reference
from ..intake.faults import EnvironmentFault
from ..service.outbox import send_due
from ..storage.models import now
from ..text import file_name
from .console import console
from .security import local_target, staff

blueprint = Blueprint("acting", __name__)


def _back(message_id: int) -> Response:
    return redirect(local_target(request.form.get("next"), url_for("pages.message", message_id=message_id)))


def _address() -> str:
    return request.remote_addr or ""


@blueprint.post("/messages/<int:message_id>/decide")
def decide(message_id: int) -> Response:
    person = staff()
    verdict = request.form.get("verdict")
    note = request.form.get("note", "").strip()
    if verdict not in ("accept", "reject"):
        flash("请选择受理或退回。", "error")
        return _back(message_id)
    if not note:
        flash("请填写审核意见（将写入回复，告知发件人）。", "error")
        return _back(message_id)
    runtime = console().runtime
    with console().acting, Session(runtime.engine, expire_on_commit=False) as session:
        try:
            done = actions.decide(
                session,
                runtime.planner(),
                runtime.recorder(),
                reference(message_id),
                accept=verdict == "accept",
                note=note,
                actor=person.name,
                moment=now(),
                enterprise=request.form.get("enterprise", "").strip() or None,
                call=request.form.get("call", "").strip() or None,
                city=request.form.get("city", "").strip() or None,
            )
        except ActionError as error:
            session.rollback()
            flash(str(error), "error")
            return _back(message_id)
        except EnvironmentFault as fault:  # a bureau confirmed is judged again: its archives are read
            session.rollback()
            flash(f"服务器无法读取压缩包（{fault}），请联系管理员后重试。", "error")
            return _back(message_id)
        audit.record(
            session,
            person.name,
            done.action,
            now(),
            message_id=message_id,
            enterprise=done.enterprise,
            detail=note,
            address=_address(),
        )
        session.commit()
        flash(done.text + _deliver(done.reply), "done")
    return _back(message_id)


@blueprint.post("/messages/<int:message_id>/resend")
def resend(message_id: int) -> Response:
    person = staff()
    runtime = console().runtime
    with console().acting, Session(runtime.engine, expire_on_commit=False) as session:
        try:
            done = actions.resend(session, runtime.planner(), reference(message_id), now())
        except ActionError as error:
            session.rollback()
            flash(str(error), "error")
            return _back(message_id)
        detail = f"{REPLY_WORDS.get(done.reply.kind, done.reply.kind)} → {done.reply.recipient}" if done.reply else ""
        audit.record(session, person.name, done.action, now(), message_id=message_id, detail=detail, address=_address())
        session.commit()
        flash(done.text + _deliver(done.reply), "done")
    return _back(message_id)


@blueprint.post("/messages/<int:message_id>/attach")
def attach(message_id: int) -> Response:
    """The archives staff downloaded from the message's links: the message is judged again with them, the
    sender told the new verdict, and the message's page shows it."""
    person = staff()
    uploads = [f for f in request.files.getlist("archives") if f.filename]
    names = [_upload_name(f.filename or "") for f in uploads]
    if not uploads:
        flash("请选择从下载链接下载的压缩包。", "error")
        return _back(message_id)
    if any(name is None for name in names) or len(set(names)) != len(names):
        flash("文件名不可用（为空、以“.”开头或重复）：请按原名上传压缩包。", "error")
        return _back(message_id)
    runtime = console().runtime
    with console().acting, tempfile.TemporaryDirectory(prefix="shenbao-upload-") as folder:
        paths = []
        for upload, name in zip(uploads, names, strict=True):
            assert name is not None
            path = Path(folder) / name
            upload.save(path)
            paths.append(path)
        try:
            done = actions.attach(
                runtime.recorder(), runtime.planner(), reference(message_id), paths, notify=True, moment=now()
            )
        except ActionError as error:
            flash(str(error), "error")
            return _back(message_id)
        except EnvironmentFault as fault:
            flash(f"服务器无法读取压缩包（{fault}），未作记录：请联系管理员。", "error")
            return _back(message_id)
    with Session(runtime.engine) as session:
        [view] = message_views(session, ids=[message_id])
        outcome = OUTCOME_WORDS[view.outcome]
        audit.record(
            session,
            person.name,
            done.action,
            now(),
            message_id=message_id,
            detail=f"{'、'.join(p.name for p in paths)}：{outcome}",
            address=_address(),
        )
        session.commit()
    added = "、".join(p.name for p in paths)
    flash(f"{done.reference}：已添加 {added} 并重新核验，结论：{outcome}{_deliver(None)}", "done")
    return redirect(url_for("pages.message", message_id=message_id))  # what the archive held, and the verdict


def _upload_name(filename: str) -> str | None:
    """The uploaded file's own name (its archive name is judged), never a path: folders dropped, characters
    a file name cannot hold replaced."""
    base = PureWindowsPath(PurePosixPath(filename).name).name.strip()
    if not base or base.startswith("."):
        return None
    return file_name(base)


def _deliver(reply: actions.Queued | None) -> str:
    """Send what is due now, and say what became of the action's reply."""
    runtime = console().runtime
    sender = console().sender
    if sender is None:
        return f"；{console().unsent}"
    sent = send_due(runtime.engine, sender)
    if reply is None:
        return f"；已发出 {sent.sent} 封邮件" if sent.sent else ""
    with Session(runtime.engine) as session:
        state = reply_state(session, reply.id)
    words = STATE_WORDS.get(state.value, state.value) if state else "—"
    return f"；{REPLY_WORDS.get(reply.kind, reply.kind)}发往 {reply.recipient}：{words}"
