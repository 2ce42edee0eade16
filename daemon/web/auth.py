"""Logging in and out. Wrong passwords are limited per account and per address (`limits`); every login and
every wrong password is in the audit log (attempts the limiter refuses only in the application's log, so
that a flood cannot fill the table)."""

from __future__ import annotations

import logging

from flask import Blueprint, make_response, redirect, render_template, request, session, url_for
from sqlmodel import Session
from werkzeug.wrappers import Response

from ..app import audit
from ..app.accounts import authenticate
from ..storage.models import now
from .console import console
from .security import csrf_token, local_target, user

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)


def _address() -> str:
    return request.remote_addr or ""


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    target = local_target(request.values.get("next"), url_for("pages.overview"))
    if request.method == "GET":
        csrf_token()
        return render_template("login.html", target=target, error=None)
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    limiter = console().limiter
    if limiter.refused(name, _address()):
        log.warning("login refused unchecked: too many wrong passwords for %r or from %s", name, _address())
        page = render_template("login.html", target=target, error="密码错误次数过多，请一分钟后再试。")
        return make_response(page, 429)
    with Session(console().runtime.engine) as db:
        found = authenticate(db, name, password)
        db.commit()
    if found is None:
        limiter.failed(name, _address())
        _note(name, "login_refused", "用户名或密码错误")
        page = render_template("login.html", target=target, error="用户名或密码错误。")
        return make_response(page, 401)
    session.clear()
    session.permanent = True
    session["user"] = found.name
    csrf_token()
    _note(found.name, "login", "")
    return redirect(target)


@blueprint.post("/logout")
def logout() -> Response:
    _note(user().name, "logout", "")
    session.clear()
    return redirect(url_for("auth.login"))


def _note(actor: str, action: str, detail: str) -> None:
    with Session(console().runtime.engine) as db:
        audit.record(db, actor[:64], action, now(), detail=detail, address=_address())
        db.commit()
