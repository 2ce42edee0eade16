"""The pieces a running shenbao shares, built once from its settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr

from sqlalchemy.engine import Engine

from ..campaign import CallRules
from ..config import Settings
from ..intake.match import Roster
from ..render import Renderer
from ..storage.blobs import BlobStore
from ..storage.db import open_database
from ..storage.watch import DatabaseWatch, watch_database
from .recorder import Recorder
from .replies import ReplyPlanner
from .roster_sync import database_roster, refresh_roster

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    rules: CallRules
    watch: DatabaseWatch
    """Whether the SQLite file is still the one opened (checked before every transaction, and each cycle)."""
    _roster: Roster | None = field(default=None, init=False)
    _roster_loaded: bool = field(default=False, init=False)

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

    def roster(self) -> Roster | None:
        """The roster to match against, reloaded from the configured file when it changed."""
        change = refresh_roster(self.engine, self.settings.roster_path)
        if change is not None or not self._roster_loaded:
            if change is not None:
                log.info("roster reloaded: %s", change)
            self._roster = database_roster(self.engine)
            self._roster_loaded = True
        return self._roster

    def recorder(self) -> Recorder:
        return Recorder(self.engine, self.blobs, self.rules, self.roster())

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

    def planner(self) -> ReplyPlanner:
        return ReplyPlanner(
            Renderer(self.sender()),
            self.rules,
            self.settings.campaign.name,
            self.settings.replies.max_per_address_per_hour,
        )
