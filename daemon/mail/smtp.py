"""Sending one message over SMTP: the only importer of aiosmtplib.

The outcome is a value, not an exception: 2xx sent; 4xx and network trouble retry later; 5xx failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib

from ..config import Security, SmtpSettings

_TIMEOUT = 60.0


class Delivery(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class SendResult:
    delivery: Delivery
    detail: str = ""


def send(settings: SmtpSettings, password: str | None, recipient: str, raw: bytes) -> SendResult:
    """Send `raw` to `recipient`; the envelope sender is the login (QQ/Tencent refuse anything else)."""
    return asyncio.run(_send(settings, password, recipient, raw))


async def _send(settings: SmtpSettings, password: str | None, recipient: str, raw: bytes) -> SendResult:
    try:
        await aiosmtplib.send(
            raw,
            sender=settings.username,
            recipients=[recipient],
            hostname=settings.host,
            port=settings.port,
            username=settings.username if password else None,
            password=password or None,
            use_tls=settings.security is Security.TLS,
            start_tls=settings.security is Security.STARTTLS,
            timeout=_TIMEOUT,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        codes = [refusal.code for refusal in error.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        return SendResult(Delivery.RETRY if all(400 <= c < 500 for c in codes) else Delivery.FAILED, detail)
    except aiosmtplib.SMTPResponseException as error:
        delivery = Delivery.RETRY if 400 <= error.code < 500 else Delivery.FAILED
        return SendResult(delivery, f"{error.code} {error.message}")
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
        return SendResult(Delivery.RETRY, f"{type(error).__name__}: {error}")
    return SendResult(Delivery.SENT)


def check_login(settings: SmtpSettings, password: str | None) -> str | None:
    """None when the server accepts the connection and login; else why not (for `doctor`)."""
    return asyncio.run(_check_login(settings, password))


async def _check_login(settings: SmtpSettings, password: str | None) -> str | None:
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.security is Security.TLS,
        start_tls=settings.security is Security.STARTTLS,
        timeout=_TIMEOUT,
    )
    try:
        await client.connect()
        if password:
            await client.login(settings.username, password)
        await client.quit()
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
        return f"{type(error).__name__}: {error}"
    return None
