"""`shenbao run`: the mailbox watcher and the outbox sender, once (for cron and tests) or for ever.

For ever, each runs a plain loop in its own thread. The watcher syncs, saves the Sent copies, then waits on
IDLE (or polls) and syncs again the moment the server reports news: no scheduler stands between the news
and the work. The outbox sends what is due, then sleeps until a reply is queued or its next turn comes.
APScheduler runs only the timed jobs: the daily digest and the deadline reminders (staff/jobs.py), each
caught up once at start, and the closing of the windows of sets of volumes. Network errors reconnect with
capped exponential backoff; SIGTERM lets the message in hand finish, then stops. Under systemd the daemon
reports its state and the watcher feeds the watchdog (service/notify.py). This module sits above `staff`,
whose jobs it runs, and nothing in the layers below imports it.

The database is watched: a guard thread, each cycle and each message check that the SQLite file is still the
one opened and that the run lock is still held; if not, or when database errors persist, the daemon logs at
CRITICAL and stops with DaemonFailed (exit 3), for systemd to restart it. A database that cannot be written
at start is waited for, and used as soon as it can be.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session, select

from .campaign import MIB
from .config import MissingSecret, Settings, secret
from .explain import SHANGHAI, human_size, today
from .intake.archive import self_test
from .intake.faults import EnvironmentFault
from .mail.imap import Mailbox, MailboxError, imap_trouble
from .pipeline import start_readers
from .service.alerts import AlertBook
from .service.health import DatabaseFailing, DatabaseHealth, summary
from .service.lock import LockLost, run_lock
from .service.notify import Notifier
from .service.outbox import Sender, SendingMeanwhile, Sent, oldest_deferred, recover_interrupted, release_held, send_due
from .service.runtime import Runtime
from .service.stop_signals import StopSignals
from .service.volumes import expire_volumes
from .service.watcher import SyncReport, Watcher
from .staff.jobs import digest_if_due, reminders_if_due
from .storage.blobs import BlobStore
from .storage.db import DatabaseMissing, get_meta, set_meta
from .storage.models import Alert, DigestRecord, now
from .storage.watch import DatabaseGone

log = logging.getLogger(__name__)

_BACKOFF_START = 1.0
_OUTBOX_SECONDS = 10.0
_PAUSE_STEP = 2.0
"""How often a backoff pause feeds the watchdog and looks at the stop event."""
_GUARD_SECONDS = 5.0
_MAIN_TICK = 0.5
"""How soon the main thread sees a stop that another thread asked for (a signal wakes it at once)."""
_ONCE_RETRIES = 3
FATAL = (DatabaseGone, LockLost, DatabaseFailing)
"""Errors after which the daemon must not write any more: it stops."""


class DaemonFailed(Exception):
    """The daemon stopped because it could not go on safely; the message (Chinese, for staff) says why."""


def failure_text(error: BaseException) -> str:
    """What staff read when the daemon stops on one of the FATAL errors."""
    if isinstance(error, DatabaseGone):
        return f"数据库文件被删除或替换，shenbao 已停止，以免记录写进丢失的文件（{error}）：请从备份恢复数据库后再启动"
    if isinstance(error, LockLost):
        return f"运行锁已失去，shenbao 已停止：共用这个数据库的另一个 shenbao 可能已经接手（{error}）"
    return f"数据库持续出错，shenbao 已停止，等待 systemd 重新启动（{error}）"


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
        """Cuts the watcher's wait short: a stop, or a sent reply whose copy goes to the Sent folder."""
        self.outbox_wake = threading.Event()
        """Cuts the outbox's sleep short: a reply was queued."""
        self.notifier = Notifier()
        self.runtime: Runtime | None = None
        self.mailbox: Mailbox | None = None
        self.backoff = _BACKOFF_START
        self.scheduler: BackgroundScheduler | None = None
        self.alerts: AlertBook | None = None
        self.failure: str | None = None
        self.signals: StopSignals | None = None
        """SIGTERM and SIGINT, caught while `run_forever` runs."""

    def start(self) -> Runtime:
        """Take the run lock, open the database and tidy the outbox (SQLAlchemyError if that cannot be done)."""
        self._take_lock()
        try:
            self._opened(self._open())
        except BaseException:
            self.lock.release()
            raise
        assert self.runtime is not None
        return self.runtime

    def _take_lock(self) -> None:
        """The run lock; then the readers' servers start, while the daemon opens its database and mailbox.
        Failing to start them only delays them: the first message starts them again, and reports why not."""
        self.lock.acquire()
        try:
            start_readers()
        except EnvironmentFault as error:
            log.warning("the readers were not started ahead: %s", error)

    def _opened(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.alerts = AlertBook(runtime.engine, self.settings.alerts, runtime.renderer(), self.outbox_wake.set)

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
        self._take_lock()
        while not self.stop.is_set():
            try:
                runtime = self._open()
            except DBAPIError as error:  # unreachable, read-only, not yet granted: all may be mended
                self.health.failed(error)  # no giving up: a restart would find the same database
                delay = self.health.backoff()
                log.critical("the database cannot be used: %s; trying again in %.0f s", summary(error), delay)
                self._pause(delay, self._main_sleep)
                continue
            self._opened(runtime)
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
            heartbeat=self.notifier.watchdog,
            guard=self.guard,
        )

    # -- once ------------------------------------------------------------------------------------------------

    def run_once(self, clock: datetime | None = None) -> OnceResult:
        """Everything waiting: judge and move it, send what is queued (4xx retried a few times), then stop.
        Replies go out as they are queued, while the rest is judged.

        `clock`: the time it is for the jobs that depend on it (a volume window that has closed since)."""
        self.start()
        try:
            self.guard()
            watcher = self._watcher()
            if self.dry_run:
                return OnceResult(watcher.sync())
            assert self.runtime is not None
            with SendingMeanwhile(self.runtime.engine, self._sender(), self.outbox_wake) as sending:
                report = watcher.sync()
                expire_volumes(self.runtime, clock or now())
                result = OnceResult(report, sending.finish(immediate_retries=_ONCE_RETRIES))
            watcher.save_sent_copies()
            return result
        finally:
            self.close()

    def _sender(self) -> Sender:
        assert self.settings.smtp is not None
        return Sender(self.settings.smtp, self.smtp_password)

    # -- for ever --------------------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Until SIGTERM (returns), or until the database or the run lock fails (DaemonFailed)."""
        with StopSignals() as self.signals:
            try:
                if self._start_when_writable():
                    self._serve()
            finally:
                self.close()
                self.notifier.close()
        if self.failure is not None:
            raise DaemonFailed(self.failure)

    def _serve(self) -> None:
        threads = [
            threading.Thread(target=self.watch_loop, name="watcher"),
            threading.Thread(target=self.guard_loop, name="guard"),
        ]
        if not self.dry_run:
            threads.append(threading.Thread(target=self.outbox_loop, name="outbox"))
            self.scheduler = self._timed_jobs()
            self.scheduler.start()
        for thread in threads:
            thread.start()
        folders = ", ".join(self.settings.imap.folders if self.settings.imap else [])
        log.info("shenbao running: watching %s", folders)
        self.notifier.ready(f"正在监视 {folders}")
        try:
            while not self._main_sleep(_MAIN_TICK):
                pass
        finally:
            log.info("stopping: finishing the message in hand")
            self.notifier.stopping()
            self.wake.set()
            self.outbox_wake.set()
            for thread in threads:
                thread.join()
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
            log.info("stopped")

    def _timed_jobs(self) -> BackgroundScheduler:
        """The digest and the reminders at their times, and once now: whatever was missed while down."""
        scheduler = BackgroundScheduler(timezone=SHANGHAI)
        grace = {"misfire_grace_time": 12 * 3600, "coalesce": True, "max_instances": 1}
        for name, job, at in (
            ("digest", self.digest_job, self.settings.digest.time),
            ("reminders", self.reminders_job, self.settings.reminders.time),
        ):
            scheduler.add_job(job, "cron", hour=at.hour, minute=at.minute, id=name, **grace)
            scheduler.add_job(job, id=f"{name}-catch-up")
        scheduler.add_job(self.volumes_job, "interval", minutes=15, id="volumes", next_run_time=now(), **grace)
        scheduler.add_job(self.health_job, "interval", minutes=5, id="health", **grace)
        return scheduler

    def _main_sleep(self, seconds: float) -> bool:
        """The main thread's sleep, which a signal cuts short whichever thread took it, and stops the daemon
        (service/stop_signals.py); whether the daemon is stopping."""
        assert self.signals is not None
        received = self.signals.wait(seconds)
        if received is not None and not self.stop.is_set():
            log.info("received %s", received.name)
            self.stop.set()
            self.wake.set()
        return self.stop.is_set()

    def wake_outbox(self) -> None:
        self.outbox_wake.set()

    # -- the database and the run lock -----------------------------------------------------------------------

    def guard_loop(self) -> None:
        """Every few seconds, even while the watcher waits on IDLE: the file and the lock are still ours."""
        while not self.stop.wait(_GUARD_SECONDS):
            try:
                self.guard()
            except FATAL as error:
                self._fail(error)

    def _fail(self, error: BaseException) -> None:
        """Stop for good: nothing more is written; run_forever raises DaemonFailed."""
        if self.failure is None:
            log.critical("stopping: %s", error)
            self.failure = failure_text(error)
        self.stop.set()
        self.wake.set()
        self.outbox_wake.set()

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

    # -- the watcher thread ----------------------------------------------------------------------------------

    def watch_loop(self) -> None:
        """Sync, save the Sent copies, wait for news; again at once when it comes, until stopped."""
        while not self.stop.is_set():
            self.watch_cycle()

    def watch_cycle(self) -> None:
        """One turn of the watcher; on any network error reconnect later, with backoff."""
        self.wake.clear()  # before the sync: a signal or a sent reply during it must still cut the wait short
        try:
            self.guard()
            watcher = self._watcher()
            watcher.sync()
            self._alerts().recovered("imap")
            self._check_room()
            if not self.dry_run:
                watcher.save_sent_copies()
            self._database_works()
            self.backoff = _BACKOFF_START
            assert self.mailbox is not None and self.settings.imap is not None
            idle = self.mailbox.has("IDLE")
            seconds = self.settings.imap.idle_seconds if idle else self.settings.imap.poll_seconds
            how = "IDLE" if idle else f"每 {seconds:g} 秒查看一次"
            self.notifier.status(f"{datetime.now(SHANGHAI):%H:%M:%S} 收信完毕，等待新邮件（{how}）")
            self.notifier.watchdog()
            if not self.stop.is_set():
                self.mailbox.wait(seconds, self.wake, self.notifier.watchdog)
        except FATAL as error:
            self._fail(error)
        except SQLAlchemyError as error:
            self._pause(self._database_failed(error))
        except MailboxError as error:
            log.warning("mailbox error: %s: %s; reconnecting in %.0f s", type(error).__name__, error, self.backoff)
            self._alerts().failing("imap", "imap", f"收信失败：{imap_trouble(error)}；邮件暂未处理，恢复后自动继续")
            self._reconnect_later(type(error).__name__)
        except EnvironmentFault as error:
            log.error("cannot judge mail here now: %s; trying again in %.0f s", error, self.backoff)
            self._environment_alert(error)
            self._reconnect_later("本机环境出错")
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the mailbox cycle; reconnecting in %.0f s", self.backoff)
            self._reconnect_later("程序错误")

    def _environment_alert(self, error: EnvironmentFault) -> None:
        """Staff hear once (per cause and hour) that mail waits because of our machine, not the senders."""
        assert self.runtime is not None
        text = f"本机环境出错，邮件暂不处理，恢复后自动继续：{error}"
        with Session(self.runtime.engine) as session:
            recent = session.exec(
                select(Alert).where(Alert.source == "environment", Alert.at > now() - timedelta(hours=1))
            ).all()
            if all(alert.text != text for alert in recent):
                session.add(Alert(at=now(), source="environment", text=text))
                session.commit()

    def _reconnect_later(self, why: str) -> None:
        assert self.settings.imap is not None
        self._drop_connection()
        self.notifier.status(f"邮箱连接出错（{why}），{self.backoff:.0f} 秒后重连")
        self._pause(self.backoff)
        self.backoff = min(self.backoff * 2, self.settings.imap.reconnect_max_seconds)

    def _pause(self, seconds: float, sleep: Callable[[float], bool] | None = None) -> None:
        """Wait `seconds` or until stopped, feeding the watchdog meanwhile: a backoff is not a hang. `sleep`:
        how the calling thread sleeps, if not on the stop event (the main thread's `_main_sleep`)."""
        sleep = sleep or self.stop.wait
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not sleep(min(left, _PAUSE_STEP)):
            self.notifier.watchdog()

    def _drop_connection(self) -> None:
        mailbox, self.mailbox = self.mailbox, None
        if mailbox is not None and mailbox.client is not None:
            with contextlib.suppress(*MailboxError):
                mailbox.client.shutdown()

    # -- the outbox thread and the timed jobs ----------------------------------------------------------------

    def outbox_loop(self) -> None:
        """Send what is due, then sleep until a reply is queued or the next turn; until stopped."""
        while not self.stop.is_set():
            self.outbox_wake.clear()
            self.outbox_cycle()
            self.outbox_wake.wait(_OUTBOX_SECONDS)

    def outbox_cycle(self) -> None:
        """Send what is due and tell staff how sending goes; a failure anywhere in it (the alerts read and
        write the database too) ends this turn, never the outbox thread."""
        assert self.runtime is not None
        try:
            self.guard()
            tally = send_due(self.runtime.engine, self._sender())
            if tally.sent:
                self.wake.set()  # let the watcher save the Sent copies now
            self._check_sending(tally)
        except FATAL as error:
            self._fail(error)
        except SQLAlchemyError as error:
            self._database_failed(error)
        except Exception:  # the daemon never exits on one bad cycle
            log.exception("unexpected error in the outbox")

    def _check_sending(self, tally: Sent) -> None:
        """SMTP refusing a reply (5xx) is told at once; replies failing to go out for long enough, then."""
        assert self.runtime is not None
        alerts = self._alerts()
        if tally.failed:
            text = "发信服务器拒收了回复（5xx），请查看日报中的未送达回复"
            alerts.failing("smtp-refused", "smtp", text, at_once=True)
        elif tally.sent:
            alerts.recovered("smtp-refused")
        stuck = oldest_deferred(self.runtime.engine)
        if stuck is not None and not tally.sent:
            alerts.failing("smtp", "smtp", "发信失败：连不上发信服务器或服务器暂时拒收，回复在排队重试", since=stuck)
        else:
            alerts.recovered("smtp")

    def _alerts(self) -> AlertBook:
        assert self.alerts is not None
        return self.alerts

    def _check_room(self) -> None:
        """Staff hear at once when the files folder is nearly full: soon no message could be stored."""
        folder = self.settings.files_dir
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if free < self.settings.alerts.min_free_mb * MIB:
            text = f"文件目录 {folder} 的可用空间只剩 {human_size(free)}，请尽快清理或扩容"
            self._alerts().failing("disk", "storage", text, at_once=True)
        else:
            self._alerts().recovered("disk")

    def health_job(self) -> None:
        """What no single cycle sees: no sync for a long time, a digest not sent, the RAR tool broken."""
        assert self.runtime is not None
        try:
            self._health(now())
        except Exception:  # the daemon never exits on one bad job
            log.exception("unexpected error in the health check")

    def _health(self, moment: datetime) -> None:
        assert self.runtime is not None
        alerts = self._alerts()
        with Session(self.runtime.engine) as session:
            last = get_meta(session, "imap_last_ok")
            sent_today = session.get(DigestRecord, today(moment).isoformat()) is not None
        if last is not None and moment - datetime.fromisoformat(last) > alerts.after:
            alerts.failing("sync", "imap", f"已超过 {alerts.settings.after_minutes:g} 分钟没有成功收信", at_once=True)
        else:
            alerts.recovered("sync")
        digest = self.settings.digest
        due = datetime.combine(today(moment), digest.time, tzinfo=SHANGHAI) + alerts.after
        if digest.recipients and not sent_today and moment > due:
            alerts.failing("digest", "digest", "今天的申报日报没有按时生成", at_once=True)
        else:
            alerts.recovered("digest")
        problem = self_test(self.runtime.rules.limits)
        if problem:
            alerts.failing("rar", "intake", f"RAR 解压工具自检失败：{problem}；压缩包暂不核验", at_once=True)
        else:
            alerts.recovered("rar")

    def digest_job(self) -> None:
        self._timed_job("digest", digest_if_due)

    def reminders_job(self) -> None:
        self._timed_job("reminders", reminders_if_due)

    def volumes_job(self) -> None:
        """Sets of volumes whose window closed: rejected, naming the volumes that never came."""
        self._timed_job("volume windows", expire_volumes)

    def _timed_job(self, name: str, job: Callable[[Runtime, datetime], object]) -> None:
        """Run a staff job (queueing is idempotent per day); wake the outbox when it queued something."""
        assert self.runtime is not None
        try:
            self.guard()
            queued = job(self.runtime, now())
        except FATAL as error:
            self._fail(error)
            return
        except SQLAlchemyError as error:
            self._database_failed(error)
            return
        except Exception:  # the daemon never exits on one bad job
            log.exception("unexpected error in the %s", name)
            return
        if queued:
            self.wake_outbox()
