"""No page without login, a CSRF token on every form, roles, and the headers every answer carries.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure when `[web] secure_cookies`), holding
the user's name and the session's CSRF token; the account is read again on every request, so a removed user
is out at once and a changed role counts at once.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, g, redirect, request, session, url_for
from sqlmodel import Session
from werkzeug.wrappers import Response

from ..app.accounts import User, user_named
from .console import console

PUBLIC = frozenset({"auth.login", "static", "metrics.metrics"})
"""Endpoints reached without a login (/metrics checks its own access)."""
CSRF_FIELD = "csrf"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token() -> str:
    """The session's token, made on first use; every form carries it."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def guard() -> Response | None:
    """Before every request: who is asking, whether they may, and the CSRF token of a form."""
    g.user = None
    if request.endpoint == "static":
        return None
    name = session.get("user")
    if isinstance(name, str):
        with Session(console().runtime.engine) as db:
            g.user = user_named(db, name)
        if g.user is None:
            session.clear()
    if request.endpoint in PUBLIC and request.endpoint != "auth.login":
        return None
    if g.user is None and request.endpoint != "auth.login":
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401)
    if request.method in _UNSAFE_METHODS:
        sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
        expected = session.get(CSRF_FIELD)
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(400, description="页面已过期或请求来源不明（缺少有效的表单令牌）。请刷新页面后重试。")
    return None


def user() -> User:
    """The logged-in user (every page but the login page has one)."""
    found = g.user
    assert isinstance(found, User)
    return found


def staff() -> User:
    """The logged-in user, who must be allowed to act (staff or admin)."""
    found = user()
    if not found.can_act:
        abort(403, description="您的账号为只读（查看者），不能执行此操作。")
    return found


def admin() -> User:
    found = user()
    if not found.is_admin:
        abort(403, description="只有管理员可以查看此页面。")
    return found


def local_target(target: str | None, default: str) -> str:
    """A redirect target from a form or the query string, only when it stays on this site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def harden(response: Response) -> Response:
    """Headers on every answer: no framing, no sniffing, no inline script, no caching of staff pages."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response
