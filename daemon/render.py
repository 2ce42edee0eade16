"""Emails from templates: every text shenbao sends is a jinja2 template in the package's templates/.

A reply has a plain-text and an HTML part, and headers that keep mail loops and Outlook's auto-replies
away (RFC 3834 Auto-Submitted, X-Auto-Response-Suppress). No header is built from unchecked input: the
recipient must be one valid address, and the submission's Message-ID is referenced only when well-formed.
Every value a template shows may come from mail: the HTML part escapes it (autoescape), and in both parts its
control characters are shown as escapes (text.for_email), never sent as such.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from .addresses import header_text, single_address
from .config import OfficeSettings
from .explain import SHANGHAI
from .text import for_email

_MESSAGE_ID = re.compile(r"^<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>$")


def _shown(value: object) -> object:
    """What `{{ value }}` puts in an email: text with its control characters shown as escapes. Markup a
    filter made (`|join` in HTML) stays markup, or autoescape would escape it twice."""
    if not isinstance(value, str):
        return value
    return type(value)(for_email(value)) if hasattr(value, "__html__") else for_email(value)


class Renderer:
    def __init__(self, sender: str, office: OfficeSettings | None = None, loader: BaseLoader | None = None) -> None:
        self.sender = sender
        name, address = getaddresses([sender])[0]
        self.contact = office or OfficeSettings()
        self.office = self.contact.name or name or address
        self.domain = address.rpartition("@")[2] or "localhost"
        self.environment = Environment(
            loader=loader or PackageLoader("daemon", "templates"),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            trim_blocks=True,
            keep_trailing_newline=True,
            finalize=_shown,
        )

    def render(self, kind: str, context: dict[str, Any], now: datetime) -> tuple[str, str, str]:
        """(subject, text, html) of template set `kind`."""
        contact = self.contact
        values = {
            "office": self.office,
            "office_phone": contact.phone,
            "office_contact": contact.contact,
            "office_address": contact.address,
            "notice": contact.notice,
            "today": now.astimezone(SHANGHAI).strftime("%Y年%m月%d日"),
            **context,
        }
        subject = header_text(self.environment.get_template(f"{kind}.subject.j2").render(values))
        text = self.environment.get_template(f"{kind}.txt.j2").render(values)
        html = self.environment.get_template(f"{kind}.html.j2").render({**values, "title": subject})
        return subject, text, html

    def email(
        self,
        kind: str,
        context: dict[str, Any],
        *,
        to: str,
        now: datetime,
        in_reply_to: str | None = None,
        auto_reply: bool = True,
    ) -> EmailMessage:
        subject, text, html = self.render(kind, context, now)
        message = EmailMessage(policy=SMTP)
        message["From"] = self.sender
        message["To"] = single_address(to)
        message["Subject"] = subject
        message["Date"] = format_datetime(now.astimezone(SHANGHAI))
        message["Message-ID"] = make_msgid(domain=self.domain)
        reference = (in_reply_to or "").strip()
        if _MESSAGE_ID.match(reference):
            message["In-Reply-To"] = reference
            message["References"] = reference
        message["Auto-Submitted"] = "auto-replied" if auto_reply else "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message
