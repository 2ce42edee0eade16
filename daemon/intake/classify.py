"""Is this message from a person at all? Bounces, auto-replies and bulk mail are never answered.

Answering them is how mail loops start, and a bounce often carries the original submission with its archive,
which must not be taken for a new one. So this runs before anything else looks at the message.
"""

from __future__ import annotations

import re
import unicodedata

from ..domain import Code, ParsedMessage, Problem

_BOUNCE_SENDER = re.compile(r"(?:^|[<\s\"])(?:mailer[-_]daemon|postmaster)(?:@|>|$)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"系统退信|退信|投递失败|Undeliver|Delivery Status Notification|Delivery Failure|Delivery has failed"
    r"|Mail delivery failed|Returned mail|failure notice|Non remis|Nondeliverable",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:自动回复|自动答复|自動回覆|自動回復|自动应答"
    r"|Auto[\s_-]*Reply|Automatic reply|AutoReply|Out of (?:the )?Office)",
    re.IGNORECASE,
)
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_MAX_AUTO_SUBMITTED_CHARS = 1000
"""`auto-replied (a comment)`: a longer value is read from its start only."""


def classify(message: ParsedMessage) -> Problem | None:
    """The reason this message must be ignored, or None when a person wrote it to us."""
    subject = unicodedata.normalize("NFKC", message.subject)
    if _is_bounce(message, subject):
        return Problem(Code.BOUNCE)
    precedence = (message.header("precedence") or "").strip().lower()
    if _is_auto_reply(message, subject) or precedence == "auto_reply":
        return Problem(Code.AUTO_REPLY)
    if precedence in _BULK_PRECEDENCE or message.has_header("list-id"):
        return Problem(Code.BULK)
    return None


def _is_bounce(message: ParsedMessage, subject: str) -> bool:
    if message.content_type == "multipart/report":
        return True
    if (message.header("return-path") or "").strip() == "<>":
        return True
    from_value = (message.header("from") or "").strip()
    if from_value.endswith("<>") or _BOUNCE_SENDER.search(from_value):
        return True
    return bool(_BOUNCE_SUBJECT.search(subject))


def _is_auto_reply(message: ParsedMessage, subject: str) -> bool:
    auto_submitted = message.header("auto-submitted")
    if auto_submitted is not None:
        keyword = _without_comments(auto_submitted[:_MAX_AUTO_SUBMITTED_CHARS]).split(";")[0].strip().lower()
        if keyword != "no":
            return True
    if message.has_header("x-autoreply") or message.has_header("x-autorespond"):
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(subject))


def _without_comments(text: str) -> str:
    """RFC 5322 comments, nested ones too, removed in one pass: a pattern such as `[(][^)]*[)]` scans to the
    end from each `(` of an unclosed `((((…`, quadratic in the length."""
    kept: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            kept.append(char)
    return "".join(kept)
