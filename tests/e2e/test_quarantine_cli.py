"""The `shenbao` command with one message that makes its handler raise (SHENBAO_FAIL_ON_SUBJECT, a test hook
read only when set): the others are judged and answered; after its retries it is quarantined, which staff
see in `doctor` and the digest; `shenbao requeue` brings it back and, the hook unset, it is answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import (
    FOLDERS,
    MAILBOX,
    SUBJECT_PREFIX,
    TIMEOUT,
    append,
    connected,
    daemon_env,
    message_ids_in,
    missing_proof,
    not_a_submission,
    parse,
    query,
    replies_to,
    shenbao,
    text_and_html,
    valid,
    write_config,
)

from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.service.setaside import QUARANTINE_AFTER

SUBJECT = "请问材料格式（测试故障）"
BAD = "<bad@minghu-soft.cn>"


@pytest.fixture
def servers() -> Iterator[tuple[PymapServer, SmtpCapture]]:
    with PymapServer(MAILBOX, "imap-secret") as imap, SmtpCapture(auth=True) as smtp:
        yield imap, smtp


def test_one_failing_message_is_quarantined_the_rest_answered_and_requeue_brings_it_back(
    servers: tuple[PymapServer, SmtpCapture], tmp_path: Path
) -> None:
    imap, smtp = servers
    append(imap, not_a_submission("bad", subject=SUBJECT))  # first in the folder
    append(imap, valid("valid"))
    append(imap, missing_proof("rejected"))
    office = tmp_path / "office"
    config = write_config(office, imap, smtp)
    failing = daemon_env(imap, {"SHENBAO_FAIL_ON_SUBJECT": "测试故障"})

    runs = [shenbao("run", "--config", config, "--once", env=failing, cwd=office) for _ in range(QUARANTINE_AFTER)]

    assert [run.returncode for run in runs] == [0] * QUARANTINE_AFTER, runs[0].stderr
    ((uid,),) = query(office, "SELECT uid FROM mailbox_item WHERE state = 'quarantined'")
    assert "处理 2 封邮件；回复：发出 2 封" in runs[0].stdout
    assert (
        f"INBOX UID {uid}：处理失败（第 1 次，满 {QUARANTINE_AFTER} 次将隔离），下次再试：InjectedFailure"
        in runs[0].stdout
    )
    assert f"INBOX UID {uid}：连续 {QUARANTINE_AFTER} 次处理失败，已隔离" in runs[-1].stdout
    assert "Traceback" in runs[0].stderr  # the log says where it failed, for whoever fixes it
    assert list((office / "files" / ".work").iterdir()) == []  # its judgement made ahead was removed too
    assert len(smtp.wait_for(2, TIMEOUT)) == 2
    assert replies_to(smtp, BAD) == []
    assert message_ids_in(imap, FOLDERS["accepted"]) == ["<valid@minghu-soft.cn>"]
    assert message_ids_in(imap, FOLDERS["rejected"]) == ["<rejected@minghu-soft.cn>"]
    assert message_ids_in(imap, "INBOX") == [BAD]
    with connected(imap) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Flagged" in client.get_flags([uid])[uid]
    (alert,) = [text for (text,) in query(office, "SELECT text FROM alert WHERE source = 'quarantine'")]
    assert f"INBOX UID {uid}「{SUBJECT}」" in alert

    env = daemon_env(imap)
    doctor = shenbao("doctor", "--offline", "--config", config, env=env, cwd=office)
    assert doctor.returncode == 0, doctor.stdout  # a warning, not a failure: the daemon runs on
    (line,) = [line for line in doctor.stdout.splitlines() if line.startswith("注意  搁置的邮件：")]
    assert f"INBOX:{uid}「{SUBJECT}」已隔离" in line and f"shenbao requeue INBOX:{uid}" in line

    written = shenbao("digest", "--config", config, "--output", office / "digest", env=env, cwd=office)
    assert written.returncode == 0, written.stderr
    (eml,) = (office / "digest").glob("*.eml")
    text, html = text_and_html(parse(eml.read_bytes()))
    for body in (text, html):
        assert f"INBOX:{uid}「{SUBJECT}」已隔离" in body

    requeued = shenbao("requeue", "--config", config, f"INBOX:{uid}", env=env, cwd=office)
    assert requeued.returncode == 0, requeued.stderr
    assert f"已重新排队：INBOX:{uid}「{SUBJECT}」" in requeued.stdout

    fixed = shenbao("run", "--config", config, "--once", env=env, cwd=office)

    assert fixed.returncode == 0, fixed.stderr
    assert "处理 1 封邮件；回复：发出 1 封" in fixed.stdout
    smtp.wait_for(3, TIMEOUT)
    (reply,) = replies_to(smtp, BAD)
    assert str(reply["Subject"]).startswith(SUBJECT_PREFIX["review"])
    assert message_ids_in(imap, FOLDERS["review"]) == [BAD]
    assert message_ids_in(imap, "INBOX") == []
    assert query(office, "SELECT state, attempts FROM mailbox_item WHERE uid = ?", [uid]) == [("done", 0)]
    after = shenbao("doctor", "--offline", "--config", config, env=env, cwd=office)
    assert "正常  搁置的邮件：" in after.stdout
