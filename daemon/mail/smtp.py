"""Sending messages over SMTP: the only importer of aiosmtplib.

One `SmtpConnection` carries many messages, one after another (RSET between them), and connects again when
the server has closed it. The outcome of each message is a value, not an exception.

The final "." of the message data is the point of no return. Until the client writes it, the server cannot
have the message: network trouble and 4xx retry later, 5xx fails. From then on only a reply code is an
answer (2xx sent, 4xx retry, 5xx failed); a lost connection, a timeout or a garbled reply leaves the
outcome unknown (RFC 5321 §4.5.3.2.6), and sending again could deliver a second copy. aiosmtplib's
`SMTP.data()` writes the data and waits for the answer in one call, so an error out of it does not say on
which side of that point it fell: DATA goes through `execute_command`, and the data through the
connection's `SMTPProtocol.write` and `read_response`, the dot last, on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol, normalize_message_line_endings

from ..config import Security, SmtpSettings

_NETWORK_TROUBLE = (TimeoutError, aiosmtplib.SMTPException, OSError)
_LINE_STARTING_WITH_A_DOT = re.compile(rb"(?m)^\.")
_END_OF_DATA = b".\r\n"
_START_MAIL_INPUT = 354
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


class Delivery(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    """The whole message may have reached the server, but no answer said what became of it."""


@dataclass(frozen=True)
class SendResult:
    delivery: Delivery
    detail: str = ""


class SmtpConnection:
    """One connection to the relay, opened on the first message and kept for the next ones.

    Not for concurrent use: each message in flight has a connection of its own.
    """

    def __init__(self, settings: SmtpSettings, password: str | None) -> None:
        self._sender = settings.username  # the login: QQ/Tencent refuse any other envelope sender
        self._timeouts = settings.timeouts
        self._client = _client(settings, password)

    async def send(self, recipient: str, raw: bytes) -> SendResult:
        """Send `raw` to `recipient`: sent, retry, failed, or uncertain once the data may have arrived.

        A connection is reused only after a message it sent; after anything else it is closed, and the next
        message connects again.
        """
        try:
            protocol = await self._everything_but_the_end(recipient, raw)
            protocol.write(_END_OF_DATA)  # raises, having written nothing, when the connection is gone
        except aiosmtplib.SMTPResponseException as refusal:
            self._client.close()
            delivery = Delivery.FAILED if 500 <= refusal.code < 600 else Delivery.RETRY
            return SendResult(delivery, f"{refusal.code} {refusal.message}")
        except _NETWORK_TROUBLE as error:
            self._client.close()
            return SendResult(Delivery.RETRY, _describe(error))
        # The point of no return: the server may have the whole message from here on.
        try:
            reply = await protocol.read_response(timeout=self._timeouts.data_end)
        except _NETWORK_TROUBLE as error:
            self._client.close()
            return SendResult(Delivery.UNCERTAIN, f"no answer to the end of the data: {_describe(error)}")
        result = _answer_to_the_end(reply.code, reply.message)
        if result.delivery is not Delivery.SENT:
            self._client.close()
        return result

    async def close(self) -> None:
        """Say QUIT when still connected; the connection is closed whatever the server does."""
        if self._client.is_connected:
            with contextlib.suppress(*_NETWORK_TROUBLE):
                await self._client.quit()
        self._client.close()

    async def _open(self) -> None:
        """Connect and log in, or on a connection that carried a message, RSET: that also finds out whether
        the server closed it meanwhile, in which case it is connected to again."""
        if self._client.is_connected:
            try:
                await self._client.rset()
                return
            except _NETWORK_TROUBLE:
                self._client.close()
        await self._client.connect()

    async def _everything_but_the_end(self, recipient: str, raw: bytes) -> SMTPProtocol:
        """The envelope, DATA and the message data, all but the final "." line; the protocol to end it on."""
        timeouts = self._timeouts
        await self._open()
        await self._client.mail(self._sender, timeout=timeouts.mail)
        await self._client.rcpt(recipient, timeout=timeouts.rcpt)
        reply = await self._client.execute_command(b"DATA", timeout=timeouts.data_command)
        if reply.code != _START_MAIL_INPUT:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        protocol = self._client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost after DATA")
        protocol.write(_LINE_STARTING_WITH_A_DOT.sub(b"..", normalize_message_line_endings(raw)))
        await _drained(protocol, timeouts.data_block)
        return protocol


def _client(settings: SmtpSettings, password: str | None) -> aiosmtplib.SMTP:
    """An unconnected client; its default timeout (EHLO, STARTTLS, AUTH, RSET, QUIT) is the greeting's."""
    return aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        username=settings.username if password else None,
        password=password or None,
        use_tls=settings.security is Security.TLS,
        start_tls=settings.security is Security.STARTTLS,
        timeout=settings.timeouts.greeting,
    )


async def _drained(protocol: SMTPProtocol, block_seconds: float) -> None:
    """Wait until the connection has handed everything written to the system, failing when nothing moved
    for `block_seconds` (RFC 5321's data block timeout).

    Without this, data stuck behind a stalled server would be taken for data sent and its failure for an
    unknown outcome. asyncio offers no public drain for a protocol it did not create, so the transport's
    buffer is looked at: at once (replies fit in the system's buffer), then ever less often.
    """
    loop = asyncio.get_running_loop()
    pause, left, deadline = _FIRST_PAUSE, _unsent(protocol), loop.time() + block_seconds
    while left:
        if loop.time() >= deadline:
            raise aiosmtplib.SMTPTimeoutError(f"the message data did not move for {block_seconds:g} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
        now_left = _unsent(protocol)
        if now_left < left:
            deadline = loop.time() + block_seconds
        left = now_left


def _unsent(protocol: SMTPProtocol) -> int:
    transport = protocol.transport
    if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("Connection lost while sending the message data")
    return transport.get_write_buffer_size()


def _answer_to_the_end(code: int, message: str) -> SendResult:
    """What the reply to the final "." says: a code outside 2xx, 4xx and 5xx says nothing for sure."""
    detail = f"{code} {message}"
    if 200 <= code < 300:
        return SendResult(Delivery.SENT)
    if 400 <= code < 500:
        return SendResult(Delivery.RETRY, detail)
    if 500 <= code < 600:
        return SendResult(Delivery.FAILED, detail)
    return SendResult(Delivery.UNCERTAIN, f"a reply to the end of the data that is no answer: {detail}")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def check_login(settings: SmtpSettings, password: str | None) -> str | None:
    """None when the server accepts the connection and login; else why not (for `doctor`)."""
    return asyncio.run(_check_login(settings, password))


async def _check_login(settings: SmtpSettings, password: str | None) -> str | None:
    client = _client(settings, password)
    try:
        await client.connect()
        await client.quit()
    except _NETWORK_TROUBLE as error:
        return _describe(error)
    finally:
        client.close()
    return None
