"""Turning the bytes of Chinese email into text.

Python's email package decodes a word labelled gb2312 that holds GBK-only characters (e.g. 喆) to U+FFFD
without a defect, and cannot join encoded words split inside a multi-byte character. Chinese mail does both
all the time, so headers are decoded here: each charset label is mapped to the superset codec real clients
mean by it, adjacent encoded words of one charset are joined as bytes before decoding, and unlabelled 8-bit
bytes are read as UTF-8, else GB18030.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

_GB_FAMILY = frozenset(
    {
        "gb2312",
        "gb_2312",
        "gb_2312-80",
        "gb231280",
        "csgb2312",
        "euc-cn",
        "euccn",
        "x-euc-cn",
        "chinese",
        "gbk",
        "x-gbk",
        "cp936",
        "ms936",
        "windows-936",
        "936",
        "gb18030",
        "gb-18030",
    }
)
_BIG5_FAMILY = frozenset({"big5", "big-5", "x-x-big5", "cn-big5", "csbig5", "cp950", "big5-hkscs", "big5hkscs"})
_KOREAN = frozenset({"ks_c_5601-1987", "ks_c_5601", "euc-kr", "ks_c_5601-1989", "korean"})
_FALLBACKS = ("utf-8", "gb18030")


def codecs_for(charset: str | None) -> tuple[str, ...]:
    """Python codecs to try, best first, for a charset label as it appears in mail."""
    label = (charset or "").strip().strip("\"'").lower()
    label = label.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*zh-cn
    if label in _GB_FAMILY:
        return ("gb18030",)
    if label in _BIG5_FAMILY:
        return ("cp950", "big5hkscs")
    if label in _KOREAN:
        return ("cp949",)
    if label in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default", "8bit"):
        return _FALLBACKS
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return _FALLBACKS
    if name == "ascii":
        return _FALLBACKS
    return (name,)


def decode_bytes(raw: bytes, charset: str | None = None) -> str:
    """Decode `raw` labelled `charset`; a wrong label falls back to UTF-8, then GB18030, never raises."""
    candidates = codecs_for(charset)
    for codec in (*candidates, *_FALLBACKS):
        try:
            return raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode(candidates[0], errors="replace")


def raw_bytes(text: str) -> bytes:
    """Recover the wire bytes of a header value as the email package's compat32 policy holds it.

    8-bit bytes arrive as surrogate escapes, RFC 2231 values as Latin-1 characters.
    """
    out = bytearray()
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        elif code < 0x100:
            out.append(code)
        else:
            out += char.encode("utf-8", errors="surrogatepass")
    return bytes(out)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def _decode_word_payload(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    return binascii.a2b_qp(payload.encode("ascii", errors="ignore"), header=True)


def decode_header_value(value: str) -> str:
    """Decode an RFC 2047 header value (or raw 8-bit text) into a str, never raising.

    Adjacent encoded words in one charset are joined as bytes before decoding, so a character split across
    two words survives; white space between encoded words is dropped (RFC 2047 section 6.2).
    """
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    pieces: list[tuple[bytes, str | None]] = []  # (bytes, charset); charset None = raw text
    position = 0
    last_was_word = False
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between and not (last_was_word and between.strip() == ""):
            pieces.append((raw_bytes(between), None))
        charset, encoding, payload = match.groups()
        word = _decode_word_payload(encoding, payload)
        label = charset.split("*", 1)[0].lower()
        if pieces and pieces[-1][1] == label and last_was_word:
            pieces[-1] = (pieces[-1][0] + word, label)
        else:
            pieces.append((word, label))
        position = match.end()
        last_was_word = True
    tail = value[position:]
    if tail:
        pieces.append((raw_bytes(tail), None))
    return "".join(decode_bytes(data, charset) for data, charset in pieces)
