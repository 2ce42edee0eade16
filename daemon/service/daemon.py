"""`shenbao run`: the mailbox watcher and the outbox sender, once (for cron and tests) or for ever.

For ever, they are APScheduler jobs: the watcher's job syncs, saves Sent copies, then waits on IDLE (or
sleeps) before returning, so it runs back to back; the outbox job runs every few seconds and is woken at
once when a reply is queued. Network errors reconnect with capped exponential backoff; SIGTERM lets the
message in hand finish, then stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import make_url

from ..config import Settings
from ..explain import SHANGHAI
from ..mail.imap import Mailbox, MailboxError
from ..storage.models import now
from .jobs import digest_if_due, expire_volumes, reminders_if_due
from .lock import RunLock
from .outbox import Sender, Sent, recover_interrupted, release_held, send_due
from .runtime import Runtime
from .watcher import SyncReport, Watcher

log = logging.getLogger(__name__)

_BACKOFF_START = 1.0
_BACKOFF_CAP = 300.0
_OUTBOX_SECONDS = 10.0
_ONCE_RETRIES = 3


class MissingSecret(Exception):
    pass


def secret(variable: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise MissingSecret(f"the environment variable {variable} (named by password_env) is not set")
    return value


def lock_path(settings: Settings) -> Path:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".lock")
    return settings.files_dir / ".shenbao-run.lock"


@dataclass
class OnceResult:
    report: SyncReport
    sent: Sent = field(default_factory=Sent)


class Daemon:
    def __init__(self, settings: Settings, *, dry_run: bool = False) -> None:
        if settings.imap is None:
            raise MissingSecret("the configuration has no [imap] section")
        if settings.smtp is None and not dry_run:
            raise MissingSecret("the configuration has no [smtp] section")
        self.settings = settings
        self.dry_run = dry_run
        self.imap_password = secret(settings.imap.password_env)
        self.smtp_password = secret(settings.smtp.password_env) if settings.smtp and not dry_run else None
        self.lock = RunLock(lock_path(settings))
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.runtime: Runtime | None = None
        self.mailbox: Mailbox | None = None
        self.backoff = _BACKOFF_START
        self.scheduler: BackgroundScheduler | None = None

    def start(self) -> Runtime:
        self.lock.acquire()
        runtime = Runtime.open(self.settings, upgrade=True)
        interrupted = recover_interrupted(runtime.engine)
        if interrupted:
            log.warning("%d replies were interrupted while sending; marked uncertain", interrupted)
        if not self.dry_run:
            release_held(runtime.engine)
        self.runtime = runtime
        return runtime

    def close(self) -> None:
        if self.mailbox is not None:
            self.mailbox.close()
            self.mailbox = None
        self.lock.release()

    def _watcher(self) -> Watcher:
        assert self.runtime is not None and self.settings.imap is not None
        if self.mailbox is None or self.mailbox.client is None:
            mailbox = Mailbox(self.settings.imap, self.imap_password, self.settings.imap.timeout_seconds)
            mailbox.connect()
            self.mailbox = mailbox
        return Watcher(self.runtime, self.mailbox, dry_run=self.dry_run, stop=self.stop, on_queued=self.wake_outbox)

    # -- once ------------------------------------------------------------------------------------------------

    def run_once(self) -> OnceResult:
        """Everything waiting: judge and move it, send what is queued (4xx retried a few times), then stop."""
        self.start()
        try:
            watcher = self._watcher()
            result = OnceResult(watcher.sync())
            if not self.dry_run:
                assert self.runtime is not None
                expire_volumes(self.runtime, now())
                assert self.runtime is not None
                result.sent = send_due(
                    self.runtime.engine, self._sender(), immediate_retries=_ONCE_RETRIES, everything=True
                )
                watcher.save_sent_copies()
            return result
        finally:
            self.close()

    def _sender(self) -> Sender:
        assert self.settings.smtp is not None
        return Sender(self.settings.smtp, self.smtp_password)

    # -- for ever --------------------------------------------------------------------------------------------

    def run_forever(self) -> None:
        self.start()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.scheduler = BackgroundScheduler(timezone=SHANGHAI)
        self.scheduler.add_job(self.watch_cycle, "interval", seconds=1, id="mailbox", max_instances=1, coalesce=True)
        if not self.dry_run:
            self.scheduler.add_job(
                self.outbox_cycle, "interval", seconds=_OUTBOX_SECONDS, id="outbox", max_instances=1, coalesce=True
            )
            settings = self.settings
            grace = {"misfire_grace_time": 12 * 3600, "coalesce": True, "max_instances": 1}
            self.scheduler.add_job(
                self.staff_cycle,
                "cron",
                hour=settings.digest.time.hour,
                minute=settings.digest.time.minute,
                id="digest",
                **grace,
            )
            self.scheduler.add_job(
                self.staff_cycle,
                "cron",
                hour=settings.reminders.time.hour,
                minute=settings.reminders.time.minute,
                id="reminders",
                **grace,
            )
            self.scheduler.add_job(self.staff_cycle, id="catch-up")  # whatever was missed while down, once
            self.scheduler.add_job(self.staff_cycle, "interval", minutes=15, id="volumes", **grace)
        self.scheduler.start()
        log.info("shenbao running: watching %s", ", ".join(self.settings.imap.folders if self.settings.imap else []))
        try:
            self.stop.wait()
        finally:
            log.info("stopping: finishing the message in hand")
            self.wake.set()
            self.scheduler.shutdown(wait=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()
            log.info("stopped")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self.stop.set()
        self.wake.set()

    def wake_outbox(self) -> None:
        if self.scheduler is not None and self.scheduler.running and not self.dry_run:
            self.scheduler.modify_job("outbox", next_run_time=datetime.now(SHANGHAI))

    def watch_cycle(self) -> None:
        """Sync, save Sent copies, then wait for news; on any network error reconnect later, with backoff."""
        if self.stop.is_set():
            return
        self.wake.clear()  # before the sync: a signal or a sent reply during it must still cut the wait short
        try:
            watcher = self._watcher()
            report = watcher.sync()
            for line in report.lines:
                log.info(line)
            if not self.dry_run:
                watcher.save_sent_copies()
            self.backoff = _BACKOFF_START
            assert self.mailbox is not None and self.settings.imap is not None
            seconds = self.settings.imap.idle_seconds if self.mailbox.has("IDLE") else self.settings.imap.poll_seconds
            if not self.stop.is_set():
                self.mailbox.wait(seconds, self.wake)
        except MailboxError as error:
            log.warning("mailbox error: %s: %s; reconnecting in %.0f s", type(error).__name__, error, self.backoff)
            self._drop_connection()
            self.stop.wait(self.backoff)
            self.backoff = min(self.backoff * 2, _BACKOFF_CAP)
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the mailbox cycle; reconnecting in %.0f s", self.backoff)
            self._drop_connection()
            self.stop.wait(self.backoff)
            self.backoff = min(self.backoff * 2, _BACKOFF_CAP)

    def _drop_connection(self) -> None:
        mailbox, self.mailbox = self.mailbox, None
        if mailbox is not None and mailbox.client is not None:
            with contextlib.suppress(*MailboxError):
                mailbox.client.shutdown()

    def staff_cycle(self) -> None:
        """The digest and the reminders, each when due and not yet queued today."""
        assert self.runtime is not None
        moment = now()
        try:
            queued = (
                digest_if_due(self.runtime, moment)
                + reminders_if_due(self.runtime, moment)
                + expire_volumes(self.runtime, moment)
            )
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the digest or reminders")
            return
        if queued:
            self.wake_outbox()

    def outbox_cycle(self) -> None:
        assert self.runtime is not None
        try:
            tally = send_due(self.runtime.engine, self._sender())
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the outbox")
            return
        if tally.sent:
            self.wake.set()  # let the watcher save the Sent copies now
