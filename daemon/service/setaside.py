"""Messages the watcher sets aside rather than let them hold up the rest of their folder.

A message whose handling raises is tried again on the next cycles (one try per cycle), its attempts and last
error on its MailboxItem; after QUARANTINE_AFTER failures it is quarantined: left on the server, flagged, and
an alert tells staff, until `shenbao requeue` takes it back. A message too large for the free space of the
files folder is not downloaded: it waits, staff are told once, and it is handled on the first cycle with
room. Either way the messages after it go on.
"""

from __future__ import annotations

import logging
import shutil

from sqlmodel import Session, select

from ..campaign import MIB
from ..explain import human_size
from ..mail.imap import Envelope, Mailbox
from ..storage.models import Alert, MailboxItem, now
from ..storage.states import ITEM_STEPS, ItemState, advance
from .runtime import Runtime

log = logging.getLogger(__name__)

QUARANTINE_AFTER = 3
"""Failed handlings, one per cycle at most, before a message is quarantined."""
ROOM_FACTOR = 3
"""Room a download needs per byte of the message: the raw message, its decoded attachments and the unpacked
documents (plus the reserve)."""
_ERROR_CHARS = 500


def new_item(
    folder: str, uidvalidity: int, envelope: Envelope, state: ItemState, raw_sha256: str | None = None
) -> MailboxItem:
    return MailboxItem(
        folder=folder,
        uidvalidity=uidvalidity,
        uid=envelope.uid,
        size=envelope.size,
        internaldate=envelope.internaldate,
        subject=envelope.subject,
        raw_sha256=raw_sha256,
        state=state,
    )


class SetAside:
    def __init__(self, runtime: Runtime, mailbox: Mailbox, *, dry_run: bool) -> None:
        self.runtime = runtime
        self.mailbox = mailbox
        self.dry_run = dry_run
        self.reserve = int(runtime.settings.storage.reserve_mb * MIB)

    # -- failures --------------------------------------------------------------------------------------------

    def failed(self, folder: str, uidvalidity: int, envelope: Envelope, error: Exception) -> str:
        """Count a failed handling (the last one allowed quarantines the message); the line for the report."""
        detail = f"{type(error).__name__}: {error}"[:_ERROR_CHARS]
        where = f"{folder} UID {envelope.uid}"
        with Session(self.runtime.engine) as session:
            item = session.exec(
                select(MailboxItem).where(
                    MailboxItem.folder == folder,
                    MailboxItem.uidvalidity == uidvalidity,
                    MailboxItem.uid == envelope.uid,
                )
            ).first() or new_item(folder, uidvalidity, envelope, ItemState.PENDING)
            item.attempts += 1
            item.last_error = detail
            item.subject = envelope.subject
            attempts = item.attempts
            if attempts >= QUARANTINE_AFTER:
                advance(item, ItemState.QUARANTINED, ITEM_STEPS)
                session.add(Alert(at=now(), source="quarantine", text=_quarantine_alert(folder, envelope, attempts)))
            session.add(item)
            session.commit()
        if attempts < QUARANTINE_AFTER:
            log.error(
                "%s failed (attempt %d of %d), tried again next cycle",
                where,
                attempts,
                QUARANTINE_AFTER,
                exc_info=error,
            )
            return f"{where}：处理失败（第 {attempts} 次，满 {QUARANTINE_AFTER} 次将隔离），下次再试：{detail}"
        if not self.dry_run:
            self._flag(envelope.uid)
        log.error("%s quarantined after %d failed attempts", where, attempts, exc_info=error)
        return f"{where}：连续 {attempts} 次处理失败，已隔离：{detail}"

    def _flag(self, uid: int) -> None:
        """Flag a quarantined message for staff; a server refusing to is not worth stopping for."""
        try:
            self.mailbox.flag(uid)
        except Exception as error:
            if self.mailbox.lost(error):
                raise
            log.warning("could not flag quarantined UID %d: %s", uid, error)

    # -- room ------------------------------------------------------------------------------------------------

    def short_of_room(self, size: int) -> tuple[int, int] | None:
        """(free, needed) bytes in the files folder when a message of `size` cannot fit now, else None."""
        root = self.runtime.blobs.root
        root.mkdir(parents=True, exist_ok=True)
        free, needed = shutil.disk_usage(root).free, size * ROOM_FACTOR + self.reserve
        return (free, needed) if free < needed else None

    def wait_for_room(
        self, folder: str, uidvalidity: int, envelope: Envelope, item: MailboxItem | None, short: tuple[int, int]
    ) -> list[str]:
        """Leave the message undownloaded; staff hear of it once. The lines for the report."""
        where = f"{folder} UID {envelope.uid}"
        free, needed = short
        if item is not None and item.state is ItemState.NO_ROOM:
            log.debug("%s still waits for room: %d bytes free, %d needed", where, free, needed)
            return []
        root = self.runtime.blobs.root
        text = (
            f"磁盘空间不足，暂不下载：{folder} UID {envelope.uid}「{envelope.subject}」"
            f"大小 {human_size(envelope.size)}，文件目录 {root} "
            f"仅剩 {human_size(free)}（需要约 {human_size(needed)}，含保留的 {human_size(self.reserve)}）。"
            "腾出空间后会自动处理；其余邮件照常处理。"
        )
        with Session(self.runtime.engine) as session:
            if item is None:
                session.add(new_item(folder, uidvalidity, envelope, ItemState.NO_ROOM))
            else:
                advance(item, ItemState.NO_ROOM, ITEM_STEPS)
                session.add(session.merge(item))
            session.add(Alert(at=now(), source="storage", text=text))
            session.commit()
        log.warning(
            "%s (%d bytes) waits for room: %d bytes free in %s, %d needed", where, envelope.size, free, root, needed
        )
        return [f"{where}: waits for room ({envelope.size} bytes; {free} free, {needed} needed)"]


def _quarantine_alert(folder: str, envelope: Envelope, attempts: int) -> str:
    return (
        f"邮件已隔离：{folder} UID {envelope.uid}「{envelope.subject}」连续 {attempts} 次处理出错，"
        f"已留在服务器上并加星标，其余邮件照常处理。查明原因后运行 shenbao requeue {folder}:{envelope.uid} 重新处理。"
    )
