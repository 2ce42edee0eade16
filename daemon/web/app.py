"""The Flask application: configuration, the guards every request passes, the pages and the error pages.

Templates and the stylesheet are found through the package (`daemon/web/templates`, `daemon/web/static`), so
the console works from an installed wheel as from a clone.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, render_template
from werkzeug.exceptions import HTTPException

from ..service.runtime import Runtime
from . import acting, auth, files, metrics, pages
from .console import Console, sender_of
from .limits import LoginLimiter
from .security import csrf_token, guard, harden
from .words import template_words

COOKIE = "shenbao_session"
ERROR_TITLES = {
    400: "请求无效",
    401: "请先登录",
    403: "无权执行此操作",
    404: "没有找到",
    405: "不支持此请求",
    413: "上传的文件过大",
    429: "请求过于频繁",
    500: "服务器出错",
}


def create_app(
    runtime: Runtime, *, secret_key: bytes, metrics_token: str | None = None, limiter: LoginLimiter | None = None
) -> Flask:
    web = runtime.settings.web
    sender, unsent = sender_of(runtime)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        MAX_CONTENT_LENGTH=runtime.rules.max_message_bytes,
        PREFERRED_URL_SCHEME="https" if web.secure_cookies else "http",
    )
    app.extensions["shenbao"] = Console(runtime, sender, unsent, metrics_token, limiter or LoginLimiter())
    app.jinja_env.autoescape = True
    app.jinja_env.globals.update(template_words(runtime.rules))
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["office"] = runtime.settings.office.name or runtime.settings.campaign.name
    app.before_request(guard)
    app.after_request(harden)
    for blueprint in (auth.blueprint, pages.blueprint, acting.blueprint, files.blueprint, metrics.blueprint):
        app.register_blueprint(blueprint)

    @app.context_processor
    def _user() -> dict[str, object]:
        return {"user": g.get("user")}

    @app.errorhandler(HTTPException)
    def _error(error: HTTPException) -> tuple[str, int]:
        code = error.code or 500
        title = ERROR_TITLES.get(code, "出错了")
        text = error.description if error.description and not error.description.isascii() else ""
        return render_template("error.html", code=code, title=title, text=text), code

    return app
