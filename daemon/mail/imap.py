"""The mailbox over IMAP: the only importer of imapclient.

Thin on purpose: connect (TLS, STARTTLS or plain), identify (NetEase and Coremail refuse SELECT without
the ID command), list UIDs, fetch sizes, download in chunks straight to disk, move or flag, append to Sent,
and wait for news with IDLE or by sleeping. A socket timeout guards every read: imapclient would otherwise
hang for ever on a silently dropped connection.
"""

from __future__ import annotations

import hashlib
import logging
import re
import select
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import JUNK, SENT

from ..config import ImapSettings, Security
from ..intake.charsets import decode_header_value

log = logging.getLogger(__name__)

CHUNK = 2 << 20
"""A download's slice: imaplib holds about twice a slice at once, so the daemon's peak grows with it (8 MiB:
+17 MB, 2 MiB: +4 MB). On Dovecot a 200 MB message takes 1.0 s in 2 MiB slices against 0.5 s in 8 MiB ones
(bench/README.md, memory)."""
_SUBJECT = "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"
_SUBJECT_CHARS = 200
_WAIT_STEP = 2.0
"""How often a wait looks at its wake event and calls its heartbeat."""
CLIENT_ID = {"name": "shenbao", "version": "0.1", "vendor": "shenbao", "support-email": "kejichu2019@shandong.cn"}

_SENT_NAMES = ("已发送", "Sent", "Sent Messages", "Sent Items")
_JUNK_NAMES = frozenset({"垃圾邮件", "垃圾箱", "junk", "spam", "junk e-mail", "junk email", "bulk mail"})

MailboxError = (IMAPClientError, OSError, EOFError)
"""Errors after which the connection is dropped and made again."""


def imap_trouble(error: BaseException) -> str:
    """What went wrong with the mailbox, in words for staff."""
    if isinstance(error, LoginError):
        return "邮箱登录被拒绝（授权码或密码可能已更改或过期，请更新后重启）"
    if isinstance(error, OSError | EOFError):
        return f"连不上收信服务器（{error}）"
    return f"收信服务器出错（{error}）"


class UidValidityError(Exception):
    """The server gave no usable UIDVALIDITY: without it UIDs mean nothing, so ingestion stops."""


@dataclass(frozen=True)
class Envelope:
    """What is known of a message before downloading it."""

    uid: int
    size: int
    internaldate: datetime | None
    subject: str
    """Decoded, at most 200 characters: for staff to tell which message is meant."""


class Mailbox:
    def __init__(self, settings: ImapSettings, password: str, timeout: float = 120.0) -> None:
        self.settings = settings
        self.password = password
        self.timeout = timeout
        self.client: Any = None
        self._described = False
        self._size: int | None = None
        """How many messages the selected folder held at the last select or search."""
        self._folders: set[str] = set()
        """Folders this connection has seen exist: a move or an append does not LIST its folder each time."""
        self._sent: str | None = None
        """The Sent folder, once this connection has found it."""

    # -- connection ------------------------------------------------------------------------------------------

    def connect(self) -> None:
        settings = self.settings
        context = ssl.create_default_context()
        client = imapclient.IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security is Security.TLS,
            ssl_context=context if settings.security is Security.TLS else None,
            timeout=self.timeout,
        )
        client.normalise_times = False
        # imapclient turns on imaplib's debug output and routes it to a logger, so imaplib formats a printable
        # copy of every 8 MiB chunk it reads, even with logging off: 25 MB more at peak (bench/README.md).
        client._imap.debug = 0
        if settings.security is Security.STARTTLS:
            client.starttls(context)
        before = client.capabilities()
        client.login(settings.username, self.password)
        after = client.capabilities()
        identity = client.id_(CLIENT_ID) if client.has_capability("ID") else None
        if not self._described:  # once per process, not on every reconnect
            log.info("IMAP %s:%s greeting: %s", settings.host, settings.port, _text(client.welcome))
            log.info("IMAP capabilities before login: %s", _text(b" ".join(before)))
            log.info("IMAP capabilities after login: %s", _text(b" ".join(after)))
            log.info("IMAP ID reply: %s", identity)
            self._described = True
        self.client = client
        self._folders, self._sent = set(), None

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except MailboxError:
            client.shutdown()

    def has(self, capability: str) -> bool:
        return bool(self.client.has_capability(capability))

    def lost(self, error: BaseException) -> bool:
        """Whether `error` means the connection is gone (or the local disk failed): the cycle ends there.

        A server's NO or BAD about one message leaves the connection usable (it still answers NOOP): that
        message's handling failed, not the mailbox.
        """
        if isinstance(error, (OSError, EOFError, IMAPClientAbortError)):
            return True
        if not isinstance(error, IMAPClientError):
            return False
        try:
            self.client.noop()
        except MailboxError:
            return True
        return False

    # -- reading ---------------------------------------------------------------------------------------------

    def select(self, folder: str) -> int:
        """Select `folder` for writing; its UIDVALIDITY."""
        status = self.client.select_folder(folder)
        self._forget_news()
        size = status.get(b"EXISTS")
        self._size = size if isinstance(size, int) else None
        value = status.get(b"UIDVALIDITY")
        try:
            uidvalidity = int(value)
        except (TypeError, ValueError) as error:
            raise UidValidityError(f"{folder}: UIDVALIDITY {value!r}") from error
        if uidvalidity <= 0:
            raise UidValidityError(f"{folder}: UIDVALIDITY {value!r}")
        return uidvalidity

    def uids(self) -> list[int]:
        self._forget_news()  # what the search finds, it need not be told of again
        found = sorted(int(uid) for uid in self.client.search(["ALL"]))
        self._size = len(found)
        return found

    def envelopes(self, uids: list[int]) -> list[Envelope]:
        if not uids:
            return []
        found = self.client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE", _SUBJECT])
        envelopes = []
        for uid, data in found.items():
            stamp = data.get(b"INTERNALDATE")
            if isinstance(stamp, datetime) and stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            header = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER.FIELDS")), b"")
            envelopes.append(Envelope(int(uid), int(data.get(b"RFC822.SIZE", 0)), stamp, decode_subject(header)))
        return sorted(envelopes, key=lambda e: e.uid)

    def download(self, uid: int, size: int, sink: BinaryIO) -> str:
        """Write the whole message to `sink` in chunks, never holding it in memory; its SHA-256."""
        digest = hashlib.sha256()
        offset = 0
        while True:
            data = self._section(uid, f"BODY.PEEK[]<{offset}.{CHUNK}>")
            sink.write(data)
            digest.update(data)
            offset += len(data)
            if len(data) < CHUNK:
                break
        return digest.hexdigest()

    def headers(self, uid: int) -> bytes:
        return self._section(uid, "BODY.PEEK[HEADER]")

    def _section(self, uid: int, item: str) -> bytes:
        found = self.client.fetch([uid], [item])
        data = found.get(uid, {})
        for key, value in data.items():
            if isinstance(key, bytes) and key.startswith(b"BODY[") and isinstance(value, bytes):
                return value
        if uid not in found:
            raise LookupError(f"message UID {uid} is gone")
        return b""

    # -- acting ----------------------------------------------------------------------------------------------

    def ensure_folder(self, folder: str) -> None:
        if folder in self._folders:
            return
        if not self.client.folder_exists(folder):
            self.client.create_folder(folder)
        self._folders.add(folder)

    def move(self, uid: int, folder: str) -> None:
        """MOVE where the server has it; otherwise mark the message handled where it is."""
        if self.has("MOVE"):
            self._into(folder, lambda: self.client.move([uid], folder))
        else:
            self.client.add_flags([uid], [imapclient.SEEN, imapclient.FLAGGED])

    def _into(self, folder: str, action: Callable[[], object]) -> None:
        """`action` on `folder`, which is created first when missing, and again when a person deleted it
        since this connection saw it."""
        self.ensure_folder(folder)
        try:
            action()
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            self._folders.discard(folder)
            if self.client.folder_exists(folder):
                raise
            self.ensure_folder(folder)
            action()

    def flag(self, uid: int) -> None:
        """Mark a message for staff's attention where it is (quarantined)."""
        self.client.add_flags([uid], [imapclient.FLAGGED])

    def is_junk(self, folder: str) -> bool:
        """Whether `folder` is where the server's spam filter files mail (special-use \\Junk, or its name)."""
        if folder.lower() in _JUNK_NAMES:
            return True
        found = self.client.find_special_folder(JUNK)
        return bool(found) and str(found) == folder

    def sent_folder(self) -> str:
        if self._sent is None:
            self._sent = self._find_sent()
        return self._sent

    def _find_sent(self) -> str:
        """The special-use Sent folder, else the first usual name that exists, else 已发送 (the first copy
        makes it)."""
        found = self.client.find_special_folder(SENT)
        name = str(found) if found else next((n for n in _SENT_NAMES if self.client.folder_exists(n)), None)
        if name is None:
            return _SENT_NAMES[0]
        self._folders.add(name)
        return name

    def save_sent(self, raw: bytes, when: datetime) -> None:
        folder = self.sent_folder()
        self._into(folder, lambda: self.client.append(folder, raw, flags=[imapclient.SEEN], msg_time=when))

    # -- waiting ---------------------------------------------------------------------------------------------

    def wait(self, seconds: float, wake: threading.Event, heartbeat: Callable[[], None]) -> bool:
        """Until the server reports news, `seconds` pass, or `wake` is set; IDLE where the server has it.
        True when the server reported news.

        IDLE is only a wake-up call: the caller searches the folder afterwards whatever it said.
        `heartbeat` is called every few seconds meanwhile (the systemd watchdog).
        """
        deadline = time.monotonic() + seconds
        if not self.has("IDLE"):
            while (left := deadline - time.monotonic()) > 0 and not wake.wait(min(left, _WAIT_STEP)):
                heartbeat()
            return False
        if self._arrived():
            return True
        self.client.idle()
        log.debug("IDLE started")
        news = self._news(0.0)  # what came with IDLE's continuation: mail after the last search
        try:
            while not news and not wake.is_set() and (left := deadline - time.monotonic()) > 0:
                news = self._news(min(left, _WAIT_STEP))
                heartbeat()
        finally:
            self.client.idle_done()
        if news:
            log.debug("IDLE ended: the server reported %s", news)
        return bool(news)

    def _arrived(self) -> bool:
        """Whether mail came since the last select or search, asked just before IDLE.

        A server announces the folder's new size (EXISTS) with its answer to whatever command it answers, and
        a search may not include what is announced with it (pymap searches first, then announces); imaplib
        keeps those announcements aside. A NOOP asks for the rest: some servers (pymap again) report only what
        changes once IDLE has begun, so mail that came in between waited for the next IDLE to end. Mail came
        when the folder is now larger than the search found it less what was removed since (our moves): a
        server that repeats the size it already gave does not make the daemon sync again and again.
        """
        self.client.noop()
        untagged = self.client._imap.untagged_responses
        sizes = untagged.pop("EXISTS", [])
        removed = len(untagged.pop("EXPUNGE", []))
        if not sizes:
            return False
        arrived = self._size is None or int(sizes[-1]) > self._size - removed
        if arrived:
            log.debug(
                "mail came before IDLE: %s messages, %s searched, %s removed since", sizes[-1], self._size, removed
            )
        return arrived

    def _forget_news(self) -> None:
        """Forget the sizes and removals the server announced: what follows (a select, a search) tells all."""
        for kind in ("EXISTS", "EXPUNGE", "RECENT"):
            self.client._imap.untagged_responses.pop(kind, None)

    def _news(self, timeout: float) -> list[bytes]:
        """The whole lines the server sent during IDLE, waiting at most `timeout` for the first.

        Not imapclient's `idle_check`: it reads lines from a non-blocking socket, so a line that arrives in two
        packets fails as "unterminated line" (mjs/imapclient#519), and the reconnect costs the news a second.
        Nor the socket alone: imaplib may have buffered lines already (Dovecot sends "* 1 EXISTS" together with
        IDLE's continuation, for mail that came after the last search). Here the socket is only polled, and
        lines are read blocking, under the connection's read timeout, once something has come.
        """
        assert self.client is not None
        imap = self.client._imap
        if not self._pending() and not select.select([self.client.socket()], [], [], timeout)[0]:
            return []
        lines = [imap._get_line()]
        while self._pending():
            lines.append(imap._get_line())
        return lines

    def _pending(self) -> bool:
        """Whether bytes from the server are waiting, in imaplib's buffer or on the socket; never blocks."""
        assert self.client is not None
        sock = self.client.socket()
        sock.setblocking(False)
        try:
            return bool(self.client._imap.file.peek(1))  # peek keeps what it reads in the buffer
        except OSError:  # nothing: the socket would block (TLS says "want read")
            return False
        finally:
            sock.setblocking(True)
            self.client._set_read_timeout()


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def decode_subject(header: bytes) -> str:
    """The decoded Subject in a `HEADER.FIELDS (SUBJECT)` block; '' when there is none."""
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", header.decode("latin-1"))
    found = re.search(r"^subject:[ \t]*(.*?)\r?$", unfolded, re.IGNORECASE | re.MULTILINE)
    return decode_header_value(found.group(1))[:_SUBJECT_CHARS] if found else ""
