"""One bad message cannot stop the daemon (issue 7, point 4): each message is handled on its own, one that
fails is tried again on the next cycles and then quarantined (left on the server, flagged, an alert) while
the rest of its folder goes on; `shenbao requeue` takes it back from where its handling had got to.

In-process against pymap and aiosmtpd, with a failure planted where the handling can really fail: the
download, and the server refusing the move.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest
from daemon_support import (
    ENTERPRISE,
    FOLDERS,
    TIMEOUT,
    append,
    connected,
    imap_env,
    message_ids_in,
    missing_proof,
    query,
    replies_to,
    run_once,
    valid,
    write_config,
)
from imapclient.exceptions import IMAPClientError

from daemon.cli import main
from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.mail.imap import Mailbox
from daemon.service.setaside import QUARANTINE_AFTER

BAD, GOOD = "<bad@minghu-soft.cn>", "<good@minghu-soft.cn>"


@pytest.fixture
def office(tmp_path: Path, imap: PymapServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in imap_env(imap).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "office"


def uid_of(imap: PymapServer, message_id: str) -> int:
    with connected(imap) as client:
        client.select_folder("INBOX", readonly=True)
        (uid,) = client.search(["HEADER", "Message-ID", message_id])
        return int(uid)


def flags_in_inbox(imap: PymapServer, uid: int) -> set[bytes]:
    with connected(imap) as client:
        client.select_folder("INBOX", readonly=True)
        return set(client.get_flags([uid])[uid])


def item(office: Path, uid: int) -> tuple[str, int, str | None]:
    ((state, attempts, error),) = query(
        office, "SELECT state, attempts, last_error FROM mailbox_item WHERE uid = ?", [uid]
    )
    return state, attempts, error


def test_a_message_whose_download_keeps_failing_is_quarantined_while_the_rest_go_on(
    imap: PymapServer, smtp: SmtpCapture, office: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(imap, valid("bad"))  # first in the folder: the others come after it
    append(imap, missing_proof("good"))
    bad = uid_of(imap, BAD)
    config = write_config(office, imap, smtp)
    download = Mailbox.download

    def broken(mailbox: Mailbox, uid: int, size: int, sink: BinaryIO) -> str:
        if uid == bad:
            raise ValueError("a parser bug")
        return download(mailbox, uid, size, sink)

    with monkeypatch.context() as patch:
        patch.setattr(Mailbox, "download", broken)
        first = run_once(config)
        assert first.report.handled == 1  # the message after the bad one was judged in the same cycle
        assert (
            f"INBOX UID {bad}：处理失败（第 1 次，满 {QUARANTINE_AFTER} 次将隔离），下次再试：ValueError: a parser bug"
            in (first.report.lines)
        )
        assert item(office, bad) == ("pending", 1, "ValueError: a parser bug")
        assert len(replies_to(smtp, GOOD)) == 1
        assert query(office, "SELECT count(*) FROM alert") == [(0,)]  # staff hear of it only when it is set aside

        for _ in range(QUARANTINE_AFTER - 1):
            run_once(config)
        assert item(office, bad) == ("quarantined", QUARANTINE_AFTER, "ValueError: a parser bug")
        run_once(config)  # set aside: not tried again
        assert item(office, bad)[:2] == ("quarantined", QUARANTINE_AFTER)

    assert message_ids_in(imap, "INBOX") == [BAD]  # left on the server, flagged
    assert b"\\Flagged" in flags_in_inbox(imap, bad)
    ((source, text),) = query(office, "SELECT source, text FROM alert")
    assert source == "quarantine"
    assert f"INBOX UID {bad}「{ENTERPRISE}」" in text and f"shenbao requeue INBOX:{bad}" in text
    assert replies_to(smtp, BAD) == []
    assert query(office, "SELECT count(*) FROM message") == [(1,)]

    assert main(["requeue", "--config", str(config), f"INBOX:{bad}"]) == 0
    assert item(office, bad) == ("pending", 0, None)

    again = run_once(config)

    assert again.report.handled == 1
    smtp.wait_for(2, TIMEOUT)
    assert len(replies_to(smtp, BAD)) == 1
    assert message_ids_in(imap, FOLDERS["accepted"]) == [BAD]
    assert message_ids_in(imap, "INBOX") == []
    assert item(office, bad)[0] == "done"


def test_a_move_the_server_keeps_refusing_is_quarantined_and_answered_once(
    imap: PymapServer, smtp: SmtpCapture, office: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NO from the server leaves the connection usable: that message failed, not the mailbox."""
    append(imap, valid("bad"))
    append(imap, missing_proof("good"))
    bad = uid_of(imap, BAD)
    config = write_config(office, imap, smtp)
    move = Mailbox.move

    def refused(mailbox: Mailbox, uid: int, folder: str) -> None:
        if uid == bad:
            raise IMAPClientError("MOVE command error: NO [OVERQUOTA] mailbox is full")
        move(mailbox, uid, folder)

    with monkeypatch.context() as patch:
        patch.setattr(Mailbox, "move", refused)
        for _ in range(QUARANTINE_AFTER):
            run_once(config)

    state, attempts, error = item(office, bad)
    assert (state, attempts) == ("quarantined", QUARANTINE_AFTER) and error is not None and "OVERQUOTA" in error
    assert message_ids_in(imap, FOLDERS["rejected"]) == [GOOD]
    assert len(replies_to(smtp, BAD)) == 1  # judged once, answered once, however often the move failed
    ((record,),) = query(office, "SELECT id FROM message WHERE message_id = ?", [BAD])

    assert main(["requeue", "--config", str(config), f"SB-{record:06d}"]) == 0  # by its receipt number
    assert item(office, bad)[:2] == ("recorded", 0)
    run_once(config)

    assert message_ids_in(imap, FOLDERS["accepted"]) == [BAD]
    assert item(office, bad)[0] == "done"
    assert len(replies_to(smtp, BAD)) == 1
    assert query(office, "SELECT count(*) FROM message") == [(2,)]


def test_requeue_refuses_a_message_that_is_not_quarantined(
    imap: PymapServer, smtp: SmtpCapture, office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(imap, valid("fine"))
    config = write_config(office, imap, smtp)
    run_once(config)
    uid = int(query(office, "SELECT uid FROM mailbox_item")[0][0])

    assert main(["requeue", "--config", str(config), f"INBOX:{uid}"]) == 2
    assert "没有被隔离" in capsys.readouterr().err
    assert main(["requeue", "--config", str(config), "INBOX:999"]) == 2
    assert "没有这封邮件" in capsys.readouterr().err
    assert query(office, "SELECT state, attempts FROM mailbox_item") == [("done", 0)]
