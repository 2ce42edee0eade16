"""Who may use the web console, and as what. Passwords are kept only as Argon2id hashes (argon2-cffi, with
its RFC 9106 defaults); a hash made with weaker parameters is replaced at the next successful login.

Managed from the command line (`shenbao user add|list|remove`); the console only checks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from ..storage.models import WebUser
from ..storage.states import UserRole

MIN_PASSWORD = 10
_NAME = re.compile(r"^[^\s/\\<>&\"']{1,64}$")
_HASHER = PasswordHasher()


class AccountError(Exception):
    """The account cannot be added or removed; the message says why, in Chinese."""


@dataclass(frozen=True)
class User:
    name: str
    role: UserRole
    created_at: datetime

    @property
    def can_act(self) -> bool:
        """Staff and admins decide, attach and resend; viewers only read."""
        return self.role in (UserRole.STAFF, UserRole.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN


def _user(row: WebUser) -> User:
    return User(row.name, row.role, row.created_at)


def add_user(session: Session, name: str, password: str, role: UserRole, moment: datetime) -> User:
    if not _NAME.match(name):
        raise AccountError("用户名须为 1 至 64 个字符，不含空格、斜杠、引号、<、> 和 &")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 个字符")
    if session.exec(select(WebUser).where(WebUser.name == name)).first() is not None:
        raise AccountError(f"用户 {name} 已存在（如需改密码或角色，请先删除再添加）")
    row = WebUser(name=name, role=role, password_hash=_HASHER.hash(password), created_at=moment)
    session.add(row)
    session.flush()
    return _user(row)


def remove_user(session: Session, name: str) -> None:
    row = session.exec(select(WebUser).where(WebUser.name == name)).first()
    if row is None:
        raise AccountError(f"没有用户 {name}")
    session.delete(row)


def users(session: Session) -> list[User]:
    return [_user(row) for row in session.exec(select(WebUser).order_by(col(WebUser.name)))]


def user_named(session: Session, name: str) -> User | None:
    """The account as it is now: a removed user's session ends, a changed role counts at once."""
    row = session.exec(select(WebUser).where(WebUser.name == name)).first()
    return _user(row) if row is not None else None


@cache
def _decoy() -> str:
    """A hash to check unknown names against, so that they take as long as known ones."""
    return _HASHER.hash("shenbao decoy password")


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when the password is right (the caller commits a rehash), else None."""
    row = session.exec(select(WebUser).where(WebUser.name == name)).first()
    try:
        _HASHER.verify(row.password_hash if row is not None else _decoy(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = _HASHER.hash(password)
        session.add(row)
    return _user(row)
