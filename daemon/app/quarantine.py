"""Messages the daemon set aside: quarantined after failing too often, or waiting for room on the disk.

Staff see them in `doctor` and in the digest. Once the cause of a quarantine is fixed, `shenbao requeue`
takes the message back: its failed attempts start again from nought and the next cycle handles it from where
its handling had got to (download, verdict, or the move on the server).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from ..explain import human_size
from ..storage.models import FolderState, MailboxItem
from ..storage.states import ITEM_STEPS, ItemState, advance
from .errors import ActionError
from .queries import find_message

_WHY = {ItemState.QUARANTINED: "已隔离", ItemState.NO_ROOM: "等待磁盘空间"}


@dataclass(frozen=True)
class AsideMessage:
    folder: str
    uid: int
    subject: str
    state: ItemState
    size: int
    attempts: int
    last_error: str | None

    @property
    def name(self) -> str:
        """How `shenbao requeue` names it."""
        return f"{self.folder}:{self.uid}"

    def line(self) -> str:
        """One line for staff, in Chinese."""
        if self.state is ItemState.NO_ROOM:
            return f"{self.name}「{self.subject}」{_WHY[self.state]}（大小 {human_size(self.size)}）"
        return (
            f"{self.name}「{self.subject}」{_WHY[self.state]}：{self.attempts} 次处理出错，"
            f"最后一次：{self.last_error}；修复后运行 shenbao requeue {self.name}"
        )

    def context(self) -> dict[str, str]:
        """For the digest's templates."""
        return {"name": self.name, "subject": self.subject, "why": _WHY[self.state], "line": self.line()}


def set_aside(session: Session) -> list[AsideMessage]:
    """Every message quarantined or waiting for room, oldest first."""
    query = (
        select(MailboxItem)
        .where(col(MailboxItem.state).in_((ItemState.QUARANTINED, ItemState.NO_ROOM)))
        .order_by(col(MailboxItem.id))
    )
    return [
        AsideMessage(item.folder, item.uid, item.subject, item.state, item.size, item.attempts, item.last_error)
        for item in session.exec(query)
    ]


def find_item(session: Session, name: str) -> MailboxItem:
    """A mailbox item by `FOLDER:UID` (under the folder's current UIDVALIDITY), or by the receipt number of
    the message recorded from it (SB-000012)."""
    folder, colon, uid = name.strip().rpartition(":")
    if colon:
        if not uid.isdigit():
            raise ActionError(f"{name!r}: UID 应为数字，例如 INBOX:17")
        query = select(MailboxItem).where(MailboxItem.folder == folder, MailboxItem.uid == int(uid))
        current = session.get(FolderState, folder)
        if current is not None:
            query = query.where(MailboxItem.uidvalidity == current.uidvalidity)
    else:
        record = find_message(session, name)
        query = select(MailboxItem).where(MailboxItem.message_id == record.id)
    item = session.exec(query.order_by(col(MailboxItem.id).desc())).first()
    if item is None:
        raise ActionError(f"邮箱中没有这封邮件：{name}（用 文件夹:UID，例如 INBOX:17，或回执编号，例如 SB-000012）")
    return item


def requeue(item: MailboxItem) -> None:
    """Take a quarantined message back: attempts reset, handled again from where it had got to."""
    if item.state is not ItemState.QUARANTINED:
        raise ActionError(f"{item.folder}:{item.uid} 没有被隔离（状态：{item.state.value}），无需重新处理")
    if item.message_id is not None:
        back = ItemState.RECORDED
    elif item.raw_sha256 is not None:
        back = ItemState.DOWNLOADED
    else:
        back = ItemState.PENDING
    advance(item, back, ITEM_STEPS)
    item.attempts = 0
    item.last_error = None
