"""Serving the console with waitress, a production WSGI server: pure Python, threaded, nothing to build.

Behind nginx on the same machine (`[web] behind_proxy`), waitress takes the client's address and scheme from
the proxy's X-Forwarded-For and X-Forwarded-Proto, and only from a proxy on loopback.
"""

from __future__ import annotations

import logging
import os
import secrets

from waitress import serve as waitress_serve

from ..service.runtime import Runtime
from .app import create_app

log = logging.getLogger(__name__)
THREADS = 8


def secret_key(variable: str) -> bytes:
    """The key that signs session cookies: from the environment, else a new one (logins end at restart)."""
    value = os.environ.get(variable, "")
    if value:
        return value.encode()
    log.warning("%s is not set: a new session key was made, everyone logs in again after a restart", variable)
    return secrets.token_bytes(32)


def serve(runtime: Runtime) -> None:
    web = runtime.settings.web
    token = os.environ.get(web.metrics_token_env, "") if web.metrics_token_env else ""
    app = create_app(runtime, secret_key=secret_key(web.secret_env), metrics_token=token or None)
    proxy: dict[str, object] = {}
    if web.behind_proxy:
        proxy = {
            "trusted_proxy": "127.0.0.1",
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "clear_untrusted_proxy_headers": True,
        }
    waitress_serve(
        app,
        host=web.host,
        port=web.port,
        threads=THREADS,
        ident="shenbao",
        max_request_body_size=runtime.rules.max_message_bytes,
        **proxy,
    )
