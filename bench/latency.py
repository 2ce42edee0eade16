#!/usr/bin/env python3
"""Reply latency of the long-running daemon: from the APPEND of a 1 MB submission to its reply at SMTP.

    python bench/latency.py [--count 50] [--seed N] [--timeout 30] [--log-level debug] [--keep]

Issue 13, point 5 (goal: p95 at most 0.5 s). In a temporary folder (removed afterwards unless --keep):

1. builds the submissions first: the three documents of tests/fixtures/rar/valid.rar (read with rarfile, so
   with `unrar`, which the daemon needs anyway), four workshop photos added to the write-up and scanned
   pages to the proof materials until the three weigh 1 MB, pictures drawn as bench/make_seal_forms.py draws
   them (the same seed gives the same bytes); the form is left as it is, its electronic seal included. Each
   submission's write-up ends with a line of its own, so each archive is a new file and each accepted
   submission a new version (the same archive again would only be noted as such). The archive is a stored
   RAR5 that this script writes itself, so RARLAB's `rar` is not needed; the message is about 1.4 MB;
2. starts Dovecot on loopback (tests/support/child_servers.py `DovecotServer`: root and the `dovecot`
   binary), the project's SMTP capture (`SmtpCapture`), writes the tests' configuration and roster
   (tests/support/daemon_support.py `write_config`) with the reply limit per address raised out of the way,
   and starts `shenbao run --config F` (as `python -m daemon.cli`) in the background;
3. sends one warm-up submission and waits for its reply (the first archive starts the reader's server),
   then APPENDs N submissions over one IMAP connection, at intervals drawn uniformly from 0.5-3 s, whatever
   the daemon is doing: each has its own Message-ID and comes from the roster address of 济南明湖软件科技有限公司,
   so each is accepted (a new version of that enterprise's submission) and answered with a receipt;
4. for each, measures the time from the APPEND's completion (the server's tagged OK) to the moment the
   capture accepts the reply whose In-Reply-To is its Message-ID (as it answers 250 to the reply's data);
5. prints the count, p50, p95, max and mean, how many were not answered within --timeout s of their
   APPEND, and the load average: the figures depend on what else the machine runs.

Dovecot itself holds every IDLE notice back by 500 ms after the mailbox changes (NOTIFY_DELAY_MSECS in its
src/lib-storage/mailbox-watch.c, not configurable): while the daemon waits on IDLE, that is a floor under
every latency measured here.

Figures, not pass/fail: exit status 0 when the run went through, 1 when the daemon stopped or nothing was
answered. With --keep the folder keeps the daemon's log (`--log-level debug` adds "IDLE ended" and "sync
started" lines) and latency.tsv: per message its Message-ID, IMAP UID, and the wall-clock times (Unix
seconds) of the APPEND's completion and of the reply's acceptance, to line up with the log.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import re
import shutil
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_seal_forms as forms
import rarfile
from child_servers import DovecotServer
from conftest import ENTERPRISE, RAR, RECEIVED, submission
from daemon_support import MAILBOX, SUBMITTER, Background, connect, daemon_env, with_message_id, write_config
from docx import Document
from docx.shared import Mm
from imapclient import IMAPClient

from daemon.demo.servers import SmtpCapture

if TYPE_CHECKING:
    from aiosmtpd.smtp import Envelope
    from docx.document import Document as WordDocument

PASSWORD = "bench-secret"
TARGET_BYTES = 1_000_000
"""The three documents' size together, at least (MB = 10^6 bytes)."""
INTERVAL = (0.5, 3.0)
"""Seconds between two APPENDs, drawn uniformly."""
RECEIPT = "【受理回执】"
WRITE_UP = "典型经验材料.docx"
PROOF = "证明材料.docx"
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


# ------------------------------------------------------------------------------------------------- the archive


def build_documents(seed: int) -> dict[str, bytes]:
    """valid.rar's three documents, the write-up and the proof grown with pictures to TARGET_BYTES in all."""
    rng = random.Random(seed)
    with rarfile.RarFile(str(RAR / "valid.rar")) as fixture:
        documents = {info.filename: fixture.read(info) for info in fixture.infolist() if info.is_file()}
    write_up = Document(io.BytesIO(documents[WRITE_UP]))
    for _ in range(4):  # photos of the workshop, as enterprises illustrate their experience
        write_up.add_picture(io.BytesIO(forms.jpeg(forms.product_photo(rng), 95)), width=Mm(150))
    documents[WRITE_UP] = _saved(write_up)
    proof = Document(io.BytesIO(documents[PROOF]))
    pages = _scanned_pages(rng)
    while sum(map(len, documents.values())) < TARGET_BYTES:  # scanned certificates, one page at a time
        proof.add_picture(io.BytesIO(next(pages)), width=Mm(150))
        documents[PROOF] = _saved(proof)
    return documents


def _scanned_pages(rng: random.Random) -> Iterator[bytes]:
    while True:
        for picture, _is_seal in forms.build(rng, "unstamped-scan").pictures:
            yield picture


def revised(documents: dict[str, bytes], number: int) -> bytes:
    """The archive of the `number`th submission: its write-up ends with its own line, so each archive is a
    new file and each accepted submission a new version (the same archive again is only noted as such)."""
    write_up = Document(io.BytesIO(documents[WRITE_UP]))
    write_up.add_paragraph(f"（修改稿 {number}）")
    return stored_rar5([(name, _saved(write_up) if name == WRITE_UP else data) for name, data in documents.items()])


def _saved(document: WordDocument) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def stored_rar5(members: list[tuple[str, bytes]]) -> bytes:
    """A RAR5 archive holding `members` stored (method 0, as `rar a -m0` writes), one file each, Unix host.

    The layout of RARLAB's technical note on the RAR 5.0 format: the signature, a main archive header, a file
    header before each member's data (name in UTF-8, modification time, CRC32 of the data), an end header.
    Each header starts with the CRC32 of its size field and fields.
    """
    parts = [b"Rar!\x1a\x07\x01\x00", _header(1, _vint(0))]  # main archive header: no archive flags
    modified = int(RECEIVED.timestamp()) - 86_400
    for name, data in members:
        encoded = name.encode("utf-8")
        fields = b"".join(
            (
                _vint(len(data)),  # data size (the header flags say a data area follows)
                _vint(0x0002 | 0x0004),  # file flags: modification time, CRC32 present
                _vint(len(data)),  # unpacked size
                _vint(0o100644),  # attributes: a regular file, rw-r--r--
                struct.pack("<II", modified, zlib.crc32(data)),
                _vint(0),  # compression: version 0, not solid, method 0 (store)
                _vint(1),  # host OS: Unix
                _vint(len(encoded)),
                encoded,
            )
        )
        parts += [_header(2, fields, flags=0x0002), data]
    parts.append(_header(5, _vint(0)))  # end of archive: not followed by another volume
    return b"".join(parts)


def _header(kind: int, fields: bytes, flags: int = 0) -> bytes:
    body = _vint(kind) + _vint(flags) + fields
    sized = _vint(len(body)) + body
    return struct.pack("<I", zlib.crc32(sized)) + sized


def _vint(value: int) -> bytes:
    """RAR5's variable-length integer: 7 bits a byte, lowest first, the high bit set on all but the last."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# ---------------------------------------------------------------------------------------------- measuring


class TimedCapture(SmtpCapture):
    """The SMTP capture, noting when it accepted each reply (by the reply's In-Reply-To)."""

    def __init__(self) -> None:
        super().__init__(auth=True)
        self.accepted: dict[str, tuple[float, float, str]] = {}
        """In-Reply-To -> (monotonic, wall-clock time, Subject) of the first reply accepted to it."""

    def _deliver(self, envelope: Envelope, response: str) -> str:
        moment, wall = time.monotonic(), time.time()
        answer = super()._deliver(envelope, response)
        if response.startswith("2"):
            headers = BytesHeaderParser().parsebytes(envelope.original_content or b"")
            in_reply_to = str(headers.get("In-Reply-To", "")).strip()
            with self._condition:
                self.accepted.setdefault(in_reply_to, (moment, wall, _decoded(headers.get("Subject", ""))))
                self._condition.notify_all()
        return answer

    def wait_reply(self, message_id: str, deadline: float) -> tuple[float, float, str] | None:
        """The reply to `message_id` once accepted, waiting until the monotonic `deadline`; None after."""
        with self._condition:
            self._condition.wait_for(lambda: message_id in self.accepted, max(0.0, deadline - time.monotonic()))
            return self.accepted.get(message_id)


def _decoded(subject: object) -> str:
    return str(make_header(decode_header(str(subject))))


@dataclass
class Sent:
    message_id: str
    uid: int | None
    appended: float
    """time.monotonic() when the APPEND completed."""
    appended_wall: float
    append_seconds: float
    reply: tuple[float, float, str] | None = None

    @property
    def latency(self) -> float | None:
        return self.reply[0] - self.appended if self.reply is not None else None


def append(client: IMAPClient, message_id: str, raw: bytes) -> Sent:
    started = time.monotonic()
    response = client.append("INBOX", raw, msg_time=RECEIVED)
    done, wall = time.monotonic(), time.time()
    found = _APPENDUID.search(response if isinstance(response, bytes) else str(response).encode())
    return Sent(message_id, int(found.group(1)) if found else None, done, wall, done - started)


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0-1), linear between the closest ranks (as numpy's default)."""
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ------------------------------------------------------------------------------------------------------ main


def benchmark(args: argparse.Namespace, folder: Path) -> int:
    started = time.perf_counter()
    documents = build_documents(args.seed)
    messages = [_message(documents, number, args.seed) for number in range(args.count + 1)]  # 0: the warm-up
    print(
        f"submissions: {len(messages[0][1]) / 1e6:.2f} MB each, its archive {messages[0][2] / 1e6:.2f} MB: a stored "
        f"RAR5 of valid.rar's documents with pictures ({sum(map(len, documents.values())) / 1e6:.2f} MB); "
        f"{len(messages)} built in {time.perf_counter() - started:.1f} s"
    )
    rng = random.Random(args.seed)
    office = folder / "office"
    sent: list[Sent] = []
    with DovecotServer(MAILBOX, PASSWORD, folder=folder / "dovecot") as imap, TimedCapture() as smtp:
        config = write_config(office, imap, smtp, max_per_address_per_hour=100 * len(messages))
        command: list[str | Path] = ["run", "--config", config]
        if args.log_level:
            command += ["--log-level", args.log_level]
        with Background(*command, env=daemon_env(imap), cwd=office) as daemon:
            daemon.wait_for_output("shenbao running", timeout=60)
            client = connect(imap)
            try:
                warm = append(client, *messages[0][:2])
                warm.reply = smtp.wait_reply(warm.message_id, warm.appended + 60)
                if warm.reply is None:
                    print(f"the warm-up submission was not answered within 60 s; daemon log:\n{daemon.output()}")
                    return 1
                print(f"warm-up (starts the reader's server): {warm.latency:.2f} s, reply 「{warm.reply[2]}」")
                print(f"load average before: {loadavg()} ({os.cpu_count()} cores)")
                print(f"{args.count} submissions, {INTERVAL[0]:g}-{INTERVAL[1]:g} s apart (uniform, seed {args.seed})")
                for message_id, raw, _archive_size in messages[1:]:
                    time.sleep(rng.uniform(*INTERVAL))
                    if daemon.process.poll() is not None:
                        break
                    sent.append(append(client, message_id, raw))
            finally:
                with contextlib.suppress(Exception):
                    client.logout()
            for item in sent:
                item.reply = smtp.wait_reply(item.message_id, item.appended + args.timeout)
            load_after = loadavg()
            alive = daemon.process.poll() is None
            if not alive:
                print(f"shenbao exited ({daemon.process.returncode}) during the run; its log:\n{daemon.output()}")
        _write_table(folder / "latency.tsv", [warm, *sent])
    return report(args, sent, load_after, alive)


def _message(documents: dict[str, bytes], number: int, seed: int) -> tuple[str, bytes, int]:
    """(Message-ID, the raw message, its archive's size) of the `number`th submission."""
    archive = revised(documents, number)
    message_id = f"<latency-{seed}-{number}@minghu-soft.cn>"
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", archive)], sender=SUBMITTER)
    return message_id, with_message_id(raw, message_id), len(archive)


def report(args: argparse.Namespace, sent: list[Sent], load_after: str, alive: bool) -> int:
    if not sent:
        print("no submission was sent")
        return 1
    latencies = [item.latency for item in sent if item.latency is not None and item.latency <= args.timeout]
    unanswered = len(sent) - len(latencies)
    others = [item.reply[2] for item in sent if item.reply is not None and not item.reply[2].startswith(RECEIPT)]
    appends = [item.append_seconds for item in sent]
    print(f"load average after:  {load_after}")
    print(f"APPEND of the message itself: median {statistics.median(appends):.3f} s, max {max(appends):.3f} s")
    print(f"submissions: {len(sent)}, answered: {len(latencies)}, not answered within {args.timeout:g} s: {unanswered}")
    if others:
        print(f"replies other than a receipt: {len(others)}, e.g. 「{others[0]}」")
    if latencies:
        print(
            "APPEND to reply accepted: "
            f"p50 {percentile(latencies, 0.5):.3f} s, p95 {percentile(latencies, 0.95):.3f} s, "
            f"max {max(latencies):.3f} s, mean {statistics.fmean(latencies):.3f} s, min {min(latencies):.3f} s"
        )
    return 0 if alive and latencies else 1


def _write_table(path: Path, sent: list[Sent]) -> None:
    lines = ["message_id\tuid\tappend_done_unix\treply_accepted_unix\tlatency_s"]
    for item in sent:
        reply = f"{item.reply[1]:.3f}" if item.reply else ""
        latency = f"{item.latency:.3f}" if item.latency is not None else ""
        lines.append(f"{item.message_id}\t{item.uid or ''}\t{item.appended_wall:.3f}\t{reply}\t{latency}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="submissions measured (after one warm-up)")
    parser.add_argument("--seed", type=int, default=13, help="the pictures and the intervals")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds after which a reply counts as missing")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="the daemon's")
    parser.add_argument("--keep", action="store_true", help="keep the folder: log, config, database, latency.tsv")
    args = parser.parse_args(argv)
    if (reason := DovecotServer.unavailable_reason()) is not None:
        print(f"cannot run: {reason}")
        return 1
    # Dovecot's mail user (nobody) must reach its home inside: a folder searchable by others, short paths.
    folder = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    folder.chmod(0o755)
    try:
        return benchmark(args, folder)
    finally:
        if args.keep:
            print(f"kept: {folder} (daemon log: {folder / 'office'}/shenbao-*.log, per message: latency.tsv)")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
