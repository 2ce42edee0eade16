"""The mailbox loop: fetch -> store -> judge -> record + queue the reply -> act on the server.

The order loses nothing and answers nothing twice, whatever crashes where:
(a) the raw message goes to the content-addressed store, fsync'ed, and a MailboxItem (UIDVALIDITY+UID)
    records that it is there;
(b) one transaction records the verdict and queues the reply (the raw message's SHA-256 is the key, so a
    message recorded before a crash is found again, never judged twice);
(c) only then is the message moved (or flagged) on the server;
(d) the outbox sends separately: the server action never waits for SMTP.
Each message keeps that order; across messages, the next one is downloaded and judged ahead, in another
thread, while one is recorded and moved (foresight.py), so that two cores share the work.

Each message is handled on its own: one whose handling raises, or that is too large for the free space, is
set aside (setaside.py) and the rest of its folder goes on. Only a lost connection (or a failing disk) ends
the cycle.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from ..domain import Code, Outcome
from ..explain import OUTCOME_WORDS, REPLY_WORDS, STATE_WORDS, TITLES, reference
from ..intake.faults import EnvironmentFault
from ..mail.imap import Envelope, Mailbox, UidValidityError
from ..pipeline import Judgement
from ..storage.db import set_meta
from ..storage.models import Alert, FolderState, MailboxItem, MessageRecord, OutboxItem, ProblemRecord, now
from ..storage.states import ITEM_STEPS, OUTBOX_STEPS, ItemState, OutboxState, advance
from .crashpoints import fail_on_subject, reached
from .foresight import Foresight
from .recorder import Recorded, Recorder
from .replies import ReplyPlanner
from .runtime import Runtime
from .setaside import SetAside, new_item

log = logging.getLogger(__name__)

_MESSAGE_IDS = re.compile(rb"<[^<>\s]{1,250}@[^<>\s]{1,250}>")
_BOUNCE_SCAN_BYTES = 4 << 20
_UNFINISHED = (ItemState.PENDING, ItemState.NO_ROOM, ItemState.DOWNLOADED, ItemState.RECORDED)
_NOT_DOWNLOADED = (ItemState.PENDING, ItemState.NO_ROOM)


@dataclass(frozen=True)
class _Place:
    """The folder a message is in, as the server numbers it now."""

    folder: str
    uidvalidity: int
    junk: bool


@dataclass
class _Stored:
    """A message in the store, its item saved, waiting for its turn to be recorded and moved."""

    envelope: Envelope
    item: MailboxItem
    oversize: int | None
    """The size of a message too large to fetch (only its headers are stored)."""
    ahead: Future[Foresight] | None = None
    """Its judgement, made ahead in another thread (service/foresight.py)."""

    @property
    def judging(self) -> tuple[str, datetime | None, int | None]:
        """What `Recorder.foresee` needs: the stored message, its INTERNALDATE and its size when too large."""
        assert self.item.raw_sha256 is not None
        return self.item.raw_sha256, self.envelope.internaldate, self.oversize

    def foreseen(self) -> Foresight | None:
        """The judgement made ahead, once it is done."""
        return self.ahead.result() if self.ahead is not None else None


@dataclass
class SyncReport:
    handled: int = 0
    lines: list[str] = field(default_factory=list)


class Watcher:
    def __init__(
        self,
        runtime: Runtime,
        mailbox: Mailbox,
        *,
        dry_run: bool = False,
        stop: threading.Event | None = None,
        on_queued: Callable[[], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        """`guard` runs before each message is handled and raises when nothing may be written any more."""
        self.runtime = runtime
        self.mailbox = mailbox
        self.dry_run = dry_run
        self.stop = stop or threading.Event()
        self.on_queued = on_queued or (lambda: None)
        self.heartbeat = heartbeat or (lambda: None)
        """Called before each message: the systemd watchdog, fed while the watcher makes progress."""
        self.guard = guard or runtime.watch.check
        settings = runtime.settings
        assert settings.imap is not None
        self.imap = settings.imap
        self.opens = settings.campaign.opens
        self.aside = SetAside(runtime, mailbox, dry_run=dry_run)

    def sync(self) -> SyncReport:
        """One pass over every watched folder; UID SEARCH is the source of truth, whatever IDLE said."""
        log.debug("sync started")
        report = SyncReport()
        recorder = self.runtime.recorder()
        planner = self.runtime.planner()
        for folder in self.imap.folders:
            if self.stop.is_set():
                break
            self._sync_folder(folder, recorder, planner, report)
        with Session(self.runtime.engine) as session:
            set_meta(session, "imap_last_ok", now().isoformat())
            session.commit()
        return report

    def _sync_folder(self, folder: str, recorder: Recorder, planner: ReplyPlanner, report: SyncReport) -> None:
        try:
            uidvalidity = self.mailbox.select(folder)
        except UidValidityError as error:
            self._alert(f"文件夹“{folder}”暂停收信：邮箱服务器没有给出可用的 UIDVALIDITY（{error}），请联系邮箱服务商")
            log.error("ingestion of %s stopped: %s", folder, error)
            return
        self._note_uidvalidity(folder, uidvalidity)
        junk = self.mailbox.is_junk(folder)
        on_server = self.mailbox.uids()
        with Session(self.runtime.engine) as session:
            items = {
                item.uid: item
                for item in session.exec(
                    select(MailboxItem).where(MailboxItem.folder == folder, MailboxItem.uidvalidity == uidvalidity)
                )
            }
        present = set(on_server)
        for uid, item in items.items():  # moved by us just before a crash, or by a person
            if item.state is ItemState.RECORDED and uid not in present:
                self._set_state(item, ItemState.DONE)
        unfinished = [uid for uid in on_server if uid not in items or items[uid].state in _UNFINISHED]
        envelopes = self.mailbox.envelopes(unfinished)
        self._work_through(_Place(folder, uidvalidity, junk), envelopes, items, recorder, planner, report)

    def _work_through(
        self,
        place: _Place,
        envelopes: Iterable[Envelope],
        items: dict[int, MailboxItem],
        recorder: Recorder,
        planner: ReplyPlanner,
        report: SyncReport,
    ) -> None:
        """Each message stored, recorded and moved, in the server's order. A message is judged ahead, in
        another thread, while the one before it is recorded (service/foresight.py): one message waits in the
        store at most, and one judgement runs at a time."""

        def finish(stored: _Stored) -> None:
            with self._alone(place, stored.envelope, report):
                self._finish(place, stored, recorder, planner, report)

        waiting: _Stored | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-ahead") as pool:
            for envelope in envelopes:
                if self.stop.is_set():
                    break
                self.heartbeat()
                stored = None
                with self._alone(place, envelope, report):
                    stored = self._store(place, envelope, items.get(envelope.uid), report)
                if stored is not None and stored.item.state is ItemState.DOWNLOADED:
                    self._foresee(stored, pool, recorder)
                previous, waiting = waiting, stored
                if previous is not None:
                    finish(previous)
            if waiting is not None:  # the one in hand is finished, even when stopping
                finish(waiting)

    @staticmethod
    def _foresee(stored: _Stored, pool: ThreadPoolExecutor, recorder: Recorder) -> None:
        """Judge the stored message ahead, if what judging knows can be read now; else it is judged in its
        turn, where an error counts."""
        try:
            stored.ahead = pool.submit(recorder.foresee(*stored.judging))
        except EnvironmentFault:
            raise
        except Exception as error:
            log.debug("UID %s is not judged ahead", stored.envelope.uid, exc_info=error)

    @contextlib.contextmanager
    def _alone(self, place: _Place, envelope: Envelope, report: SyncReport) -> Iterator[None]:
        """One message's trouble sets that message aside and the rest of the folder goes on; only ours (an
        EnvironmentFault: nothing is recorded, the cycle stops and is tried again) or a lost connection ends it."""
        try:
            yield
        except EnvironmentFault:
            raise
        except Exception as error:
            if self.mailbox.lost(error):
                raise
            report.lines.append(self.aside.failed(place.folder, place.uidvalidity, envelope, error))

    def _store(self, place: _Place, envelope: Envelope, item: MailboxItem | None, report: SyncReport) -> _Stored | None:
        """The message downloaded into the store with its item saved (or found there); None when it is not
        handled now: it came before the mailbox opened, or waits for room."""
        self.guard()
        rules = self.runtime.rules
        oversize = envelope.size if envelope.size > rules.max_message_bytes else None
        if item is None and self.opens and envelope.internaldate and envelope.internaldate < self.opens:
            self._insert(new_item(place.folder, place.uidvalidity, envelope, ItemState.SKIPPED))
            return None
        if item is None or item.state in _NOT_DOWNLOADED:
            if oversize is None and (short := self.aside.short_of_room(envelope.size)) is not None:
                report.lines += self.aside.wait_for_room(place.folder, place.uidvalidity, envelope, item, short)
                return None
            sha256 = self._download(envelope, oversize)
            reached("downloaded")
            if item is None:
                item = self._insert(new_item(place.folder, place.uidvalidity, envelope, ItemState.DOWNLOADED, sha256))
            else:
                item.raw_sha256 = sha256
                self._set_state(item, ItemState.DOWNLOADED)
            reached("item_saved")
        return _Stored(envelope, item, oversize)

    def _finish(
        self, place: _Place, stored: _Stored, recorder: Recorder, planner: ReplyPlanner, report: SyncReport
    ) -> None:
        """A stored message recorded with its reply queued, then moved to its folder."""
        self.guard()
        envelope, item = stored.envelope, stored.item
        queued = False
        if item.state is ItemState.DOWNLOADED:
            assert item.raw_sha256 is not None
            fail_on_subject(envelope.subject)

            downloaded = item

            def on_record(session: Session, row: MessageRecord, judgement: Judgement) -> None:
                """In the recording's transaction: the reply queued and the item recorded, all or nothing."""
                self._mark_bounced(session, row, judgement)
                answerable = self._answerable(place.junk, judgement.verdict.enterprise, recorder)
                if answerable:
                    planner.queue(session, row, now(), hold=self.dry_run)
                saved = session.get(MailboxItem, downloaded.id)
                assert saved is not None and row.id is not None
                self._file(saved, row.id, judgement.verdict.outcome, keep=not answerable)
                session.add(saved)

            recorded = recorder.record_stored(
                item.raw_sha256,
                f"imap:{place.folder}:{place.uidvalidity}:{envelope.uid}",
                envelope.internaldate,
                oversize=stored.oversize,
                on_record=on_record,
                ahead=stored.foreseen(),
            )
            reached("recorded")
            # the same whether recorded now or before
            keep = not self._answerable(place.junk, recorded.enterprise, recorder)
            self._file(item, recorded.record_id, recorded.outcome, keep=keep)
            if not recorded.created:  # recorded before a crash or by another process: the item is filed now
                self._save(item)
            report.handled += 1
            report.lines.append(self._describe(place.folder, envelope, recorded, item.target))
            queued = recorded.created and not keep
        if item.state is ItemState.RECORDED and not self.dry_run:
            if item.target is None:
                self._set_state(item, ItemState.KEPT)
            else:
                self.mailbox.move(envelope.uid, item.target)
                reached("moved")
                self._set_state(item, ItemState.DONE)
        if queued:  # once the message is filed: a power cut in between finds no reply half sent
            self.on_queued()

    def save_sent_copies(self) -> int:
        """Append a copy of each sent reply to the mailbox's Sent folder, so staff see it in their client."""
        with Session(self.runtime.engine) as session:
            pending = session.exec(
                select(OutboxItem.id).where(OutboxItem.state == OutboxState.SENT, OutboxItem.copy_saved == False)  # noqa: E712
            ).all()
        for item_id in pending:
            with Session(self.runtime.engine) as session:
                item = session.get(OutboxItem, item_id)
                assert item is not None
                reached("sent")
                self.mailbox.save_sent(item.raw, item.sent_at or now())
                item.copy_saved = True
                session.add(item)
                session.commit()
        return len(pending)

    @staticmethod
    def _answerable(junk: bool, enterprise: str | None, recorder: Recorder) -> bool:
        """Junk-folder mail is answered (and moved) only when it names a listed enterprise."""
        if not junk:
            return True
        listed = recorder.context().everyone
        return enterprise is not None and listed is not None and listed.find(enterprise) is not None

    def _target(self, outcome: Outcome) -> str:
        return str(getattr(self.imap.targets, outcome.value))

    def _download(self, envelope: Envelope, oversize: int | None) -> str:
        """The raw message into the content-addressed store (only its headers when too large to fetch)."""
        blobs = self.runtime.blobs
        if oversize is not None:
            return blobs.put_bytes(self.mailbox.headers(envelope.uid))
        workroot = blobs.root / ".work"
        workroot.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix="fetch-", dir=workroot)
        try:
            with os.fdopen(descriptor, "wb") as sink:
                sha256 = self.mailbox.download(envelope.uid, envelope.size, sink)
            return blobs.put_file(Path(name), sha256)
        finally:
            Path(name).unlink(missing_ok=True)

    def _mark_bounced(self, session: Session, row: MessageRecord, judgement: Judgement) -> None:
        """A bounce carrying one of our replies marks that reply bounced: staff learn it never arrived."""
        if Code.BOUNCE not in judgement.verdict.codes:
            return
        with self.runtime.blobs.path(row.raw_sha256).open("rb") as stream:
            found = {m.decode("ascii", "replace") for m in _MESSAGE_IDS.findall(stream.read(_BOUNCE_SCAN_BYTES))}
        if not found:
            return
        for reply in session.exec(select(OutboxItem).where(col(OutboxItem.header_message_id).in_(found))):
            advance(reply, OutboxState.BOUNCED, OUTBOX_STEPS)
            session.add(reply)
            text = f"发往 {reply.recipient} 的{REPLY_WORDS.get(reply.kind, reply.kind)}被退信（对方邮箱未收到）"
            session.add(Alert(at=now(), source="bounce", text=text))
            log.warning("%s %s to %s bounced", reply.kind, reply.header_message_id, reply.recipient)

    def _describe(self, folder: str, envelope: Envelope, recorded: Recorded, target: str | None) -> str:
        """What happened to one message: a line in the log (English), and one for staff (returned, Chinese)."""
        with Session(self.runtime.engine) as session:
            replies = session.exec(select(OutboxItem).where(OutboxItem.message_id == recorded.record_id)).all()
            codes = session.exec(
                select(ProblemRecord.code)
                .where(ProblemRecord.message_id == recorded.record_id)
                .order_by(col(ProblemRecord.position))
            ).all()
        log.info(
            "%s UID %s: %s %s (%s) -> %s; replies: %s%s",
            folder,
            envelope.uid,
            reference(recorded.record_id),
            recorded.outcome.value,
            " ".join(codes) or "no problem",
            target or "left in place",
            ", ".join(f"{r.kind} to {r.recipient} ({r.state.value})" for r in replies) or "none",
            " (dry run)" if self.dry_run else "",
        )
        problems = "；".join(dict.fromkeys(TITLES[Code(code)] for code in codes))
        action = f"移至“{target}”" if target else "留在原处"
        answer = "；".join(
            f"{REPLY_WORDS.get(r.kind, r.kind)} → {r.recipient}（{STATE_WORDS.get(r.state.value, r.state.value)}）"
            for r in replies
        )
        rehearsal = "（演练：不移动、不发送）" if self.dry_run else ""
        return (
            f"{folder} UID {envelope.uid}：{OUTCOME_WORDS[recorded.outcome]} {recorded.enterprise or ''}"
            f"（{reference(recorded.record_id)}）{'：' + problems if problems else ''}；{action}；"
            f"{answer or '不回复'}{rehearsal}"
        )

    # -- small database helpers ------------------------------------------------------------------------------

    def _note_uidvalidity(self, folder: str, uidvalidity: int) -> None:
        with Session(self.runtime.engine) as session:
            state = session.get(FolderState, folder)
            if state is None:
                session.add(FolderState(folder=folder, uidvalidity=uidvalidity))
            elif state.uidvalidity != uidvalidity:
                log.warning("UIDVALIDITY of %s changed (%s -> %s): re-syncing", folder, state.uidvalidity, uidvalidity)
                text = f"邮箱服务器重建了文件夹“{folder}”的编号（UIDVALIDITY），系统已重新核对其中的邮件，不会重复回复"
                session.add(Alert(at=now(), source="imap", text=text))
                state.uidvalidity = uidvalidity
                session.add(state)
            session.commit()

    def _insert(self, item: MailboxItem) -> MailboxItem:
        with Session(self.runtime.engine, expire_on_commit=False) as session:
            session.add(item)
            session.commit()
        return item

    def _set_state(self, item: MailboxItem, state: ItemState) -> None:
        advance(item, state, ITEM_STEPS)
        self._save(item)

    def _save(self, item: MailboxItem) -> None:
        """The item's changes written: it is detached, and remembers what changed since it was last saved."""
        with Session(self.runtime.engine, expire_on_commit=False) as session:
            session.add(item)
            session.commit()

    def _file(self, item: MailboxItem, record_id: int, outcome: Outcome, *, keep: bool) -> None:
        """Recorded as message `record_id`, to be moved to the outcome's folder or kept where it is."""
        item.message_id = record_id
        item.target = None if keep else self._target(outcome)
        advance(item, ItemState.RECORDED, ITEM_STEPS)

    def _alert(self, text: str) -> None:
        with Session(self.runtime.engine) as session:
            session.add(Alert(at=now(), source="imap", text=text))
            session.commit()
