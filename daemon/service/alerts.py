"""Alerts that reach staff when the mailbox breaks: once when a condition opens, once when it clears (恢复).

A condition (IMAP login failing, SMTP down, the disk nearly full, no sync for a while, no digest sent) opens an
alert when it has lasted `[alerts] after_minutes` (some at once: a full disk, a 5xx, a broken RAR tool). The
alert is a row of the `alert` table, kept open until the condition clears; nothing is repeated while it lasts,
whatever the daemon restarts in between. Each opening and clearing goes out by mail to `[alerts] recipients`
and, through a second channel that does not depend on the mailbox, to `[alerts] webhook` (the JSON of
企业微信 and 钉钉 group robots: {"msgtype": "text", "text": {"content": ...}}).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..config import AlertsSettings
from ..render import Renderer
from ..storage.models import Alert, now
from .outbox import enqueue

log = logging.getLogger(__name__)

_WEBHOOK_TIMEOUT = 10.0


class AlertBook:
    """The open conditions of one running daemon, and the alerts they raise."""

    def __init__(
        self, engine: Engine, settings: AlertsSettings, renderer: Renderer, queued: Callable[[], None]
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.renderer = renderer
        self.queued = queued
        """Called when an alert's mail is in the outbox: the daemon's outbox sends it now, not at its next turn."""
        self.after = timedelta(minutes=settings.after_minutes)
        self._since: dict[str, datetime] = {}

    def failing(
        self, key: str, source: str, text: str, *, at_once: bool = False, since: datetime | None = None
    ) -> None:
        """The condition `key` holds now: open its alert once it has lasted long enough (or `at_once`)."""
        moment = now()
        first = self._since.setdefault(key, since or moment)
        if not at_once and moment - first < self.after:
            return
        with Session(self.engine) as session:
            if self._open(session, key) is not None:
                return
            alert = Alert(at=moment, source=source, text=text, key=key)
            session.add(alert)
            self._notify(session, f"【系统告警】{text}", moment)
            session.commit()
        self.queued()
        log.warning("alert opened (%s): %s", key, text)

    def recovered(self, key: str) -> None:
        """The condition `key` no longer holds: close its alert, saying so (恢复)."""
        self._since.pop(key, None)
        with Session(self.engine) as session:
            alert = self._open(session, key)
            if alert is None:
                return
            moment = now()
            alert.cleared_at = moment
            session.add(alert)
            self._notify(session, f"【恢复】{alert.text}（已于 {moment:%Y-%m-%d %H:%M} UTC 恢复）", moment)
            session.commit()
        self.queued()
        log.info("alert cleared (%s)", key)

    @staticmethod
    def _open(session: Session, key: str) -> Alert | None:
        return session.exec(
            select(Alert).where(Alert.key == key, col(Alert.cleared_at).is_(None)).order_by(col(Alert.id).desc())
        ).first()

    def _notify(self, session: Session, text: str, moment: datetime) -> None:
        """By mail (queued with the change, all or nothing) and by the webhook (in the background)."""
        for recipient in self.settings.recipients:
            email = self.renderer.email("alert", {"text": text}, to=recipient, now=moment, auto_reply=False)
            enqueue(session, email, "alert", moment)
        if self.settings.webhook:
            threading.Thread(target=post_webhook, args=(self.settings.webhook, text), daemon=True).start()


def post_webhook(url: str, text: str) -> None:
    """POST the text as a group robot's message; a failure is logged, never raised."""
    body = json.dumps({"msgtype": "text", "text": {"content": text}}, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=_WEBHOOK_TIMEOUT) as response:
            response.read()
    except OSError as error:
        log.error("alert webhook %s failed: %s", url, error)
