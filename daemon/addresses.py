"""What we write into headers: an address that is exactly one plain mailbox (or BadRecipient), and text
without control characters; and the mailboxes in headers we read.

Apart from rendering (jinja2) so that the staff views, which check the roster's contact cells, start quickly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.errors import MessageError
from email.headerregistry import Address
from email.utils import getaddresses

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def header_text(text: str) -> str:
    """Text for a header: control characters (CR and LF above all) removed."""
    return _CONTROL.sub("", text).strip()


def mailboxes(values: Sequence[str]) -> list[tuple[str, str]]:
    """The (display name, address) pairs in header values; none when comments nest deeper than the parser's
    recursion goes (a few hundred `(`: nothing there to trust)."""
    try:
        return getaddresses(values)
    except RecursionError:
        return []


class BadRecipient(ValueError):
    """The address cannot safely be written into a To: header."""


def single_address(text: str) -> str:
    """The one address in `text`, validated; BadRecipient when it is not exactly one plain mailbox."""
    if _PLAIN_ADDRESS.fullmatch(text):  # the usual case, without parsing it as a header (5,000 roster rows)
        return text
    found = [address for _, address in mailboxes([text]) if address]
    if len(found) != 1 or _CONTROL.search(text):
        raise BadRecipient(text)
    try:
        return Address(addr_spec=found[0]).addr_spec
    except (ValueError, IndexError, MessageError) as error:
        raise BadRecipient(text) from error
