"""The audit log: what a person did, in the web console or with a command, written in the same transaction as
the deed where the action allows.

Read back with `queries.audit_entries` (an enterprise's page shows the entries about it).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from ..intake.match import normalise
from ..storage.models import AuditEntry, Enterprise, PackageRecord

COMMAND_LINE = "命令行"
"""The address of an action taken with a `shenbao` command rather than in the web console."""


def record(
    session: Session,
    actor: str,
    action: str,
    moment: datetime,
    *,
    message_id: int | None = None,
    enterprise_id: int | None = None,
    enterprise: str | None = None,
    detail: str = "",
    address: str = "",
) -> None:
    """One entry. Without `enterprise_id`, the enterprise is the one named, else the message's only one."""
    if enterprise_id is None and enterprise:
        enterprise_id = session.exec(select(Enterprise.id).where(Enterprise.key == normalise(enterprise))).first()
    if enterprise_id is None and message_id is not None:
        found = set(
            session.exec(
                select(PackageRecord.enterprise_id).where(
                    PackageRecord.message_id == message_id, col(PackageRecord.enterprise_id).is_not(None)
                )
            ).all()
        )
        enterprise_id = found.pop() if len(found) == 1 else None
    session.add(
        AuditEntry(
            at=moment,
            actor=actor,
            action=action,
            message_id=message_id,
            enterprise_id=enterprise_id,
            detail=detail,
            address=address,
        )
    )
