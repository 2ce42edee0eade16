"""`shenbao run`: the mailbox watcher and the outbox sender, once (for cron and tests) or for ever.

For ever, they are APScheduler jobs: the watcher's job syncs, saves Sent copies, then waits on IDLE (or
sleeps) before returning, so it runs back to back; the outbox job runs every few seconds and is woken at
once when a reply is queued. Network errors reconnect with capped exponential backoff; SIGTERM lets the
message in hand finish, then stops.

The database is watched: a guard job, each cycle and each message check that the SQLite file is still the
one opened and that the run lock is still held; if not, or when database errors persist, the daemon logs
at CRITICAL and stops with DaemonFailed (exit 3), for systemd to restart it. A database that cannot be
written at start is waited for, and used as soon as it can be.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session

from ..config import Settings
from ..explain import SHANGHAI
from ..mail.imap import Mailbox, MailboxError
from ..storage.blobs import BlobStore
from ..storage.db import DatabaseMissing, set_meta
from ..storage.models import Alert, now
from ..storage.watch import DatabaseGone
from .health import DatabaseFailing, DatabaseHealth, summary
from .jobs import digest_if_due, reminders_if_due
from .lock import LockLost, run_lock
from .outbox import Sender, Sent, recover_interrupted, release_held, send_due, smtp_sender
from .runtime import Runtime
from .watcher import SyncReport, Watcher

log = logging.getLogger(__name__)

_BACKOFF_START = 1.0
_BACKOFF_CAP = 300.0
_OUTBOX_SECONDS = 10.0
_GUARD_SECONDS = 5.0
_ONCE_RETRIES = 3
FATAL = (DatabaseGone, LockLost, DatabaseFailing)
"""Errors after which the daemon must not write any more: it stops."""


class MissingSecret(Exception):
    pass


class DaemonFailed(Exception):
    """The daemon stopped because it could not go on safely; the message (Chinese, for staff) says why."""


def failure_text(error: BaseException) -> str:
    """What staff read when the daemon stops on one of the FATAL errors."""
    if isinstance(error, DatabaseGone):
        return f"数据库文件被删除或替换，shenbao 已停止，以免记录写进丢失的文件（{error}）：请从备份恢复数据库后再启动"
    if isinstance(error, LockLost):
        return f"运行锁已失去，shenbao 已停止：共用这个数据库的另一个 shenbao 可能已经接手（{error}）"
    return f"数据库持续出错，shenbao 已停止，等待 systemd 重新启动（{error}）"


def secret(variable: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise MissingSecret(f"the environment variable {variable} (named by password_env) is not set")
    return value


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
        self.lock = run_lock(settings)
        self.health = DatabaseHealth(settings.storage.give_up_seconds)
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.runtime: Runtime | None = None
        self.mailbox: Mailbox | None = None
        self.backoff = _BACKOFF_START
        self.scheduler: BackgroundScheduler | None = None
        self.failure: str | None = None

    def start(self) -> Runtime:
        """Take the run lock, open the database and tidy the outbox (SQLAlchemyError if that cannot be done)."""
        self.lock.acquire()
        try:
            self.runtime = self._open()
        except BaseException:
            self.lock.release()
            raise
        return self.runtime

    def _open(self) -> Runtime:
        # A database that vanished while files remain is restored from a backup, never silently made anew.
        files = BlobStore(self.settings.files_dir)
        try:
            runtime = Runtime.open(self.settings, upgrade=True, create=not files.holds_files())
        except DatabaseMissing as error:
            raise DatabaseMissing(
                f"{error}，而 {files.root} 中已有存档：请从备份恢复数据库；"
                "确要从空数据库开始，先运行 shenbao db upgrade"
            ) from error
        try:
            with Session(runtime.engine) as session:  # proves it can be written, not only read
                set_meta(session, "run_started", now().isoformat())
                session.commit()
            interrupted = recover_interrupted(runtime.engine)
            if interrupted:
                log.warning("%d replies were interrupted while sending; marked uncertain", interrupted)
            if not self.dry_run:
                release_held(runtime.engine)
        except BaseException:
            runtime.engine.dispose()
            raise
        return runtime

    def _start_when_writable(self) -> bool:
        """start(), trying again while the database cannot be opened or written (a read-only file, a server
        not up yet), at most a minute apart; False if stopped meanwhile."""
        self.lock.acquire()
        while not self.stop.is_set():
            try:
                self.runtime = self._open()
            except DBAPIError as error:  # unreachable, read-only, not yet granted: all may be mended
                self.health.failed(error)  # no giving up: a restart would find the same database
                delay = self.health.backoff()
                log.critical("the database cannot be used: %s; trying again in %.0f s", summary(error), delay)
                self.stop.wait(delay)
                continue
            self._database_works()
            return True
        return False

    def close(self) -> None:
        if self.mailbox is not None:
            self.mailbox.close()
            self.mailbox = None
        if self.runtime is not None:
            self.runtime.engine.dispose()
        self.lock.release()

    def guard(self) -> None:
        """Raise (one of FATAL) when this daemon must not write any more: its database file was deleted or
        replaced, or its run lock is lost."""
        assert self.runtime is not None
        self.runtime.watch.check()
        self.lock.verify()

    def _watcher(self) -> Watcher:
        assert self.runtime is not None and self.settings.imap is not None
        if self.mailbox is None or self.mailbox.client is None:
            mailbox = Mailbox(self.settings.imap, self.imap_password, self.settings.imap.timeout_seconds)
            mailbox.connect()
            self.mailbox = mailbox
        return Watcher(
            self.runtime,
            self.mailbox,
            dry_run=self.dry_run,
            stop=self.stop,
            on_queued=self.wake_outbox,
            guard=self.guard,
        )

    # -- once ------------------------------------------------------------------------------------------------

    def run_once(self) -> OnceResult:
        """Everything waiting: judge and move it, send what is queued (4xx retried a few times), then stop."""
        self.start()
        try:
            self.guard()
            watcher = self._watcher()
            result = OnceResult(watcher.sync())
            if not self.dry_run:
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
        return smtp_sender(self.settings.smtp, self.smtp_password)

    # -- for ever --------------------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Until SIGTERM (returns), or until the database or the run lock fails (DaemonFailed)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self._start_when_writable():
                self._serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()
        if self.failure is not None:
            raise DaemonFailed(self.failure)

    def _serve(self) -> None:
        self.scheduler = BackgroundScheduler(timezone=SHANGHAI)
        self.scheduler.add_job(
            self.guard_cycle, "interval", seconds=_GUARD_SECONDS, id="guard", max_instances=1, coalesce=True
        )
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
        self.scheduler.start()
        log.info("shenbao running: watching %s", ", ".join(self.settings.imap.folders if self.settings.imap else []))
        try:
            self.stop.wait()
        finally:
            log.info("stopping: finishing the message in hand")
            self.wake.set()
            self.scheduler.shutdown(wait=True)
            log.info("stopped")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self.stop.set()
        self.wake.set()

    def wake_outbox(self) -> None:
        if self.scheduler is not None and self.scheduler.running and not self.dry_run:
            self.scheduler.modify_job("outbox", next_run_time=datetime.now(SHANGHAI))

    def _fail(self, error: BaseException) -> None:
        """Stop for good: nothing more is written; run_forever raises DaemonFailed."""
        if self.failure is None:
            log.critical("stopping: %s", error)
            self.failure = failure_text(error)
        self.stop.set()
        self.wake.set()

    def _database_failed(self, error: SQLAlchemyError) -> float:
        """Note a database error; the seconds to wait before trying again (stops once errors persist)."""
        failing = self.health.failed(error)
        if failing is not None:
            self._fail(failing)
            return 0.0
        delay = self.health.backoff()
        log.error("database error: %s; trying again in %.0f s", summary(error), delay)
        return delay

    def _database_works(self) -> None:
        """The database was written (only the watcher's cycle and the start say so: other cycles may only
        read); after an outage, the alert that it happened, now that it can be written."""
        outage = self.health.succeeded()
        if outage is None or self.runtime is None:
            return
        log.info("the database works again after %d errors", outage.failures)
        with Session(self.runtime.engine) as session:
            session.add(Alert(at=outage.ended, source="database", text=outage.alert_text()))
            session.commit()

    def guard_cycle(self) -> None:
        """Every few seconds, even while the watcher waits on IDLE: the file and the lock are still ours."""
        try:
            self.guard()
        except FATAL as error:
            self._fail(error)

    def watch_cycle(self) -> None:
        """Sync, save Sent copies, then wait for news; on any network error reconnect later, with backoff."""
        if self.stop.is_set():
            return
        self.wake.clear()  # before the sync: a signal or a sent reply during it must still cut the wait short
        try:
            self.guard()
            watcher = self._watcher()
            report = watcher.sync()
            for line in report.lines:
                log.info(line)
            if not self.dry_run:
                watcher.save_sent_copies()
            self._database_works()
            self.backoff = _BACKOFF_START
            assert self.mailbox is not None and self.settings.imap is not None
            seconds = self.settings.imap.idle_seconds if self.mailbox.has("IDLE") else self.settings.imap.poll_seconds
            if not self.stop.is_set():
                self.mailbox.wait(seconds, self.wake)
        except FATAL as error:
            self._fail(error)
        except SQLAlchemyError as error:
            self.stop.wait(self._database_failed(error))
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
            self.guard()
            queued = digest_if_due(self.runtime, moment) + reminders_if_due(self.runtime, moment)
        except FATAL as error:
            self._fail(error)
            return
        except SQLAlchemyError as error:
            self._database_failed(error)
            return
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the digest or reminders")
            return
        if queued:
            self.wake_outbox()

    def outbox_cycle(self) -> None:
        assert self.runtime is not None
        try:
            self.guard()
            tally = send_due(self.runtime.engine, self._sender())
        except FATAL as error:
            self._fail(error)
            return
        except SQLAlchemyError as error:
            self._database_failed(error)
            return
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the outbox")
            return
        if tally.sent:
            self.wake.set()  # let the watcher save the Sent copies now
