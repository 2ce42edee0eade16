"""The pieces a running shenbao shares, built once from its settings."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from ..campaign import CallRules
from ..config import Settings
from ..storage.blobs import BlobStore
from ..storage.db import open_database
from ..storage.watch import DatabaseWatch, watch_database
from .roster_sync import refresh_rosters

if TYPE_CHECKING:  # what judges and answers mail is loaded when asked for: staff views start without it
    from ..render import Renderer
    from .recorder import Recorder
    from .replies import ReplyPlanner

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    rules: CallRules
    watch: DatabaseWatch
    """Whether the SQLite file is still the one opened (checked before every transaction, and each cycle)."""
    _recorder: Recorder | None = field(default=None, init=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, init=False)
    """The watcher and the timed jobs both ask for the recorder: one of them loads a changed roster."""

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = False, create: bool = True) -> Runtime:
        """`upgrade`: bring an older database schema up to date (else SchemaMismatch); `create`: make a new
        database if there is none (else DatabaseMissing)."""
        engine = open_database(settings.database_url, upgrade=upgrade, create=create)
        try:
            watched = watch_database(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(settings, engine, BlobStore(settings.files_dir), settings.call_rules(), watched)

    def refresh_rosters(self) -> None:
        """Load each call's configured roster file into the database when it changed."""
        with self._loading:
            changes = refresh_rosters(self.engine, self.settings.roster_paths())
        for call, change in changes.items():
            log.info("roster of %s reloaded: %s", call, change)

    def recorder(self) -> Recorder:
        """The recorder, with its rosters up to date with the configured files."""
        from .recorder import Recorder

        self.refresh_rosters()
        if self._recorder is None:
            self._recorder = Recorder(self.engine, self.blobs, self.rules)
        return self._recorder

    def sender(self) -> str:
        """The From: of replies: the SMTP `sender`, else the mailbox's own address."""
        if self.settings.smtp is not None:
            return self.settings.smtp.sender
        if self.settings.imap is not None:
            return formataddr((self.settings.campaign.name, self.settings.imap.username))
        return formataddr((self.settings.campaign.name or "shenbao", "shenbao@localhost"))

    def mailbox(self) -> str:
        """The submission address enterprises write to."""
        if self.settings.imap is not None:
            return self.settings.imap.username
        return parseaddr(self.sender())[1]

    def renderer(self) -> Renderer:
        from ..render import Renderer

        return Renderer(self.sender(), self.settings.office)

    def planner(self) -> ReplyPlanner:
        from .replies import ReplyPlanner

        return ReplyPlanner(
            self.renderer(),
            self.rules,
            self.settings.campaign.name,
            self.settings.replies.max_per_address_per_hour,
        )
