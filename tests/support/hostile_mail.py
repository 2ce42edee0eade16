"""Messages carrying text a mail library refuses to write but a sender's client sends: control characters in
an encoded-word subject (imported by name, not a conftest)."""

from __future__ import annotations

import base64

from conftest import submission

_PLACEHOLDER = "SUBJECT-PLACEHOLDER"


def with_subject(subject: str, **kwargs: object) -> bytes:
    """conftest.submission(**kwargs) with `subject` as one UTF-8 encoded word, whatever characters it holds
    (EmailMessage refuses a vertical tab or a NUL in a header; RFC 2047 carries them)."""
    raw = submission(_PLACEHOLDER, **kwargs)  # type: ignore[arg-type]
    encoded = b"=?utf-8?B?" + base64.b64encode(subject.encode("utf-8", "surrogatepass")) + b"?="
    return raw.replace(f"Subject: {_PLACEHOLDER}".encode(), b"Subject: " + encoded, 1)
