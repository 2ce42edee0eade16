"""Text from mail made safe to show: on a terminal, in a workbook cell, in an email, as a file name.

Subjects, sender names and the names of files in archives are whatever a sender typed or pasted: a vertical
tab from Word, a NUL, ANSI escapes, bidi overrides that reorder what follows, lone surrogates from
undecodable bytes. They are data, so wherever they are shown such characters are shown as escapes (`\\x0b`,
`\\x1b`, `\\u202e`) that staff can see and nothing can act on. The database keeps the original.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

NAME_MAX_BYTES = 255
"""The longest path component Linux file systems take (NAME_MAX), in bytes of UTF-8."""
CELL_MAX_CHARS = 32_767
"""The most characters Excel shows in a cell."""
_EXTENSION_MAX_BYTES = 16
"""A longer "extension" is part of the name: `x.` followed by 300 characters has none."""

_C0_C1 = "\x00-\x1f\x7f-\x9f"
"""Control characters: ESC starts ANSI sequences, U+009B is a CSI of its own, NUL and VT break workbooks."""
_C0_C1_BUT_LAYOUT = "\x00-\x08\x0b-\x1f\x7f-\x9f"
"""The same, less tab and line feed."""
_OTHER_UNSAFE = (
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides and isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates (undecodable bytes kept by surrogateescape): no UTF-8 encoder takes them
    "\ufffe\uffff"  # noncharacters, which XML (so a workbook) refuses
)
_ANY_UNSAFE = re.compile(f"[{_C0_C1}{_OTHER_UNSAFE}]")
_UNSAFE_BUT_LAYOUT = re.compile(f"[{_C0_C1_BUT_LAYOUT}{_OTHER_UNSAFE}]")
_UNSAFE_IN_FILE_NAME = re.compile(f'[{_C0_C1}{_OTHER_UNSAFE}/\\\\:*?"<>|]')
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}
)


def for_terminal(text: str) -> str:
    """One line for a terminal or a text file: every control character, tab and line break escaped."""
    if text.isprintable():  # none of them, nor any format character or surrogate: a status table's every cell
        return text
    return _ANY_UNSAFE.sub(_escape, text)


def for_email(text: str) -> str:
    """Text for the body of an email we send: as for a terminal, but tabs and line breaks kept."""
    return _UNSAFE_BUT_LAYOUT.sub(_escape, text)


def for_cell(text: str) -> str:
    """Text for a workbook cell: as for an email (a workbook's XML holds no other control character), cut to
    what Excel shows. Excel counts UTF-16 units, where a character beyond the BMP (an emoji) takes two."""
    safe = for_email(text)
    if len(safe) > CELL_MAX_CHARS // 2 and len(units := safe.encode("utf-16-le")) > 2 * CELL_MAX_CHARS:
        # a surrogate pair cut in half is dropped
        return units[: 2 * (CELL_MAX_CHARS - 1)].decode("utf-16-le", errors="ignore") + "…"
    return safe


def file_name(name: str, tag: str = "") -> str:
    """A path component any file system takes, from a name a sender chose.

    Control characters and the characters Windows refuses become `_`; leading and trailing dots and spaces
    go, and Windows' device names (CON, LPT1) get a `_` in front. `tag` (e.g. `（2）`) goes before the
    extension. The result is at most NAME_MAX_BYTES of UTF-8: the stem is cut at a character boundary, the
    extension and the tag are kept.
    """
    cleaned = _UNSAFE_IN_FILE_NAME.sub("_", name).strip(" .") or "_"
    if cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = f"_{cleaned}"
    extension = PurePosixPath(cleaned).suffix
    if len(extension.encode()) > _EXTENSION_MAX_BYTES:
        extension = ""
    stem = cleaned[: len(cleaned) - len(extension)]
    room = NAME_MAX_BYTES - len(tag.encode()) - len(extension.encode())
    if len(stem.encode()) > room:
        stem = stem.encode()[:room].decode(errors="ignore").rstrip(" .") or "_"
    return f"{stem}{tag}{extension}"


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
