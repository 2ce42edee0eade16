"""What the console's requests share: the runtime, how replies are sent, the login limiter."""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field

from flask import current_app

from ..config import MissingSecret, secret
from ..service.outbox import Sender
from ..service.runtime import Runtime
from .limits import LoginLimiter


@dataclass(frozen=True)
class Console:
    runtime: Runtime
    sender: Sender | None
    """None: replies that actions queue stay queued for `shenbao run` (`unsent` says why)."""
    unsent: str
    metrics_token: str | None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    acting: threading.Lock = field(default_factory=threading.Lock)
    """One action at a time: actions write, and SQLite has one writer."""

    @property
    def loopback(self) -> bool:
        """Whether the console listens on loopback only (so only this machine reaches it directly)."""
        return is_loopback(self.runtime.settings.web.host)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sender_of(runtime: Runtime) -> tuple[Sender | None, str]:
    """How the console sends what actions queue, or why it cannot (in Chinese, for the page)."""
    smtp = runtime.settings.smtp
    if smtp is None:
        return None, "配置中没有 [smtp]，回复已排队，由 shenbao run 发送"
    try:
        return Sender(smtp, secret(smtp.password_env)), ""
    except MissingSecret:
        return None, f"未设置发信密码（环境变量 {smtp.password_env}），回复已排队，由 shenbao run 发送"


def console() -> Console:
    found = current_app.extensions["shenbao"]
    assert isinstance(found, Console)
    return found
