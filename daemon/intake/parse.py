"""MIME bytes -> ParsedMessage: charsets, file names, received time, attachments written to disk.

The email package parses the structure; every header value and file name is decoded here from its raw
bytes (see charsets.py for why). A file that cannot be parsed at all becomes an `Unreadable`, never an
exception: the caller keeps the raw message and rejects it politely. Only a failure of our own environment
(disk full while the parts are written, out of memory) is raised, as an EnvironmentFault: it says nothing
about the message, which must be judged again later.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..addresses import mailboxes
from ..domain import Attachment, ParsedMessage
from .charsets import decode_bytes, decode_header_value, raw_bytes
from .faults import EnvironmentFault, fault, is_environmental
from .mime import HEADER_LINE, Leaf, walk

_BODY_TYPES = frozenset({"text/plain", "text/html"})
_NOT_FILES = frozenset(
    {
        "application/pkcs7-signature",  # signatures of the message itself
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "message/delivery-status",  # machine-readable parts of reports
        "message/disposition-notification",
        "message/feedback-report",
    }
)
_MAX_BODY_CHARS = 1 << 20
_MAX_DATE_CHARS = 256
"""`Tue, 5 Jul 2022 23:58:00 +0800 (GMT+08:00)` is 43; a longer value is no date."""
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""RFC 5322 section 3.3: a year of 1900 or later (Excel's first year too)."""
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
"""A year under datetime's last, so that any time zone's view of the moment still exists."""


@dataclass(frozen=True)
class Unreadable:
    reason: str


def parse_message(
    source: Path | bytes, workdir: Path, internaldate: datetime | None = None
) -> ParsedMessage | Unreadable:
    """Parse one message; attachments are decoded into `workdir`, which the caller owns."""
    try:
        with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as stream:
            top, leaves = walk(stream, workdir, _is_body, repair_head)
        if not top.keys():
            return Unreadable("no header could be read")
        return _build(top, leaves, internaldate)
    except MemoryError as error:
        raise EnvironmentFault("out of memory while parsing a message") from error
    except RecursionError as error:  # pathological nesting
        return Unreadable(f"{type(error).__name__}")
    except OSError as error:
        if is_environmental(error):  # our disk filled up while writing the parts: the message is not at fault
            raise fault("writing a message's parts", error) from error
        return Unreadable(f"{type(error).__name__}: {error}"[:300])
    except Exception as error:  # noqa: BLE001 - anything a sender can send must end as a verdict
        return Unreadable(f"{type(error).__name__}: {error}"[:300])


def _is_body(headers: Message) -> bool:
    """Text meant to be read in the message (kept in memory), as opposed to an attached file."""
    content_type = headers.get_content_type()
    is_text = content_type in _BODY_TYPES or headers.get_content_maintype() == "multipart"  # unparsable multipart
    return is_text and not attachment_filename(headers) and headers.get_content_disposition() != "attachment"


_SPACE_BEFORE_COLON = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.MULTILINE)
_HEAD_SEARCH_LINES = 20


def repair_head(raw: bytes) -> bytes:
    """Undo what keeps the email package from finding the headers at all.

    A UTF-8 byte-order mark, a few stray lines before the first header (a mangled copy-paste), and the
    obsolete `Subject :` syntax with white space before the colon (RFC 5322 section 4.5).
    """
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    lines = raw.split(b"\n", _HEAD_SEARCH_LINES)
    if lines and not HEADER_LINE.match(lines[0]):
        for index, line in enumerate(lines[:_HEAD_SEARCH_LINES]):
            if HEADER_LINE.match(line) and not line[:1].isspace():
                raw = b"\n".join(lines[index:])
                break
    ends = [index for index in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if index >= 0]
    cut = min(ends, default=len(raw))
    return _SPACE_BEFORE_COLON.sub(rb"\1:", raw[:cut]) + raw[cut:]


def _build(message: Message, leaves: list[Leaf], internaldate: datetime | None) -> ParsedMessage:
    headers = tuple((name.lower(), decode_header_value(str(value))) for name, value in message.raw_items())
    sender, sender_name = _single_sender(message)
    attachments: list[Attachment] = []
    bodies: list[str] = []
    for leaf in leaves:
        part = leaf.headers
        if leaf.path is None:
            bodies.append(decode_bytes(leaf.text, part.get_content_charset())[:_MAX_BODY_CHARS])
        elif part.get_content_type() in _NOT_FILES:
            continue
        elif (
            leaf.parent_type == "multipart/related"
            and part.get("content-id")
            and part.get_content_disposition() != "attachment"
        ):
            continue  # a picture shown inside the HTML body, e.g. a signature logo
        else:
            attachments.append(
                Attachment(
                    attachment_filename(part), part.get_content_type(), leaf.path, leaf.size, leaf.sha256, leaf.head
                )
            )
    return ParsedMessage(
        message_id=_first(message, "message-id"),
        subject=decode_header_value(_first(message, "subject") or "").strip(),
        sender=sender,
        sender_name=sender_name,
        received_at=internaldate or received_time(message),
        headers=headers,
        content_type=message.get_content_type(),
        attachments=tuple(attachments),
        body_text="\n".join(bodies),
    )


_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def reply_ids(message: ParsedMessage) -> list[str]:
    """The Message-IDs a message answers (In-Reply-To, then References, newest first)."""
    found = _MESSAGE_ID.findall(message.header("in-reply-to") or "")
    found += reversed(_MESSAGE_ID.findall(message.header("references") or ""))
    return list(dict.fromkeys(found))


def attachment_from_file(path: Path, workdir: Path, filename: str | None = None) -> Attachment:
    """A file given by hand (an archive staff downloaded from a link) as if it had been attached."""
    copy = Path(tempfile.mkstemp(prefix="extra-", dir=workdir)[1])
    shutil.copyfile(path, copy)
    with copy.open("rb") as stream:
        head = stream.read(16)
        stream.seek(0)
        sha256 = hashlib.file_digest(stream, "sha256").hexdigest()
    return Attachment(filename or path.name, "application/octet-stream", copy, copy.stat().st_size, sha256, head)


def _first(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value).strip()


def _single_sender(message: Message) -> tuple[str | None, str]:
    """The one mailbox in From, and its display name.

    Addresses are split before encoded words are decoded: a display name that decodes to something looking
    like an address (clients often use the address itself) must not be parsed again (RFC 2047 section 5).
    """
    values = [str(v) for v in message.get_all("from") or []]
    found = [
        (decode_header_value(name).strip(), decode_header_value(address).strip().lower())
        for name, address in mailboxes(values)
        if "@" in address
    ]
    if len(found) != 1:
        return None, found[0][0] if found else ""
    address, name = found[0][1], found[0][0]
    return address, name


def received_time(message: Message) -> datetime | None:
    """When our server got the message: the topmost parsable Received: date, else Date:, else None.

    Date: is whatever the sender's clock said, so it is trusted only when no server stamped the message. A
    date out of range (a 20-digit year, an offset of days) is no date: the next source is used.
    """
    for value in message.get_all("received") or []:
        stamp = _parse_date(str(value).rpartition(";")[2]) if ";" in str(value) else None
        if stamp:
            return stamp
    return _parse_date(str(message.get("date") or ""))


def _parse_date(text: str) -> datetime | None:
    """An RFC 5322 date between 1900 and 9998; years under 100 are read as its section 4.3 says (0 is 2000)."""
    text = " ".join(text.split())
    if not text or len(text) > _MAX_DATE_CHARS:
        return None
    try:
        stamp = parsedate_to_datetime(text)
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        in_utc = stamp.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a 20-digit year or offset
        return None
    return stamp if _EARLIEST <= in_utc < _LATEST else None


def attachment_filename(part: Message) -> str:
    """The file name a sender's client meant, from whichever place it put it, decoded."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = part.get_param(param, header=header)
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded Latin-1 text)
            charset, _language, text = value
            name = decode_bytes(raw_bytes(text), charset or None)
        else:
            name = decode_header_value(str(value))
        name = _clean_filename(name)
        if name:
            return name
    return ""


def _clean_filename(name: str) -> str:
    """Drop the folders some clients leave in (C:\\fakepath\\x.rar) and any control characters."""
    name = re.split(r"[\\/]", name.strip())[-1]
    return "".join(ch for ch in name if ch.isprintable()).strip()
