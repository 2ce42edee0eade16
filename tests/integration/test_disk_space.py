"""A message larger than the free space (issue 8, finding 2): it used to block all later mail with growing
backoff and no alert. Now it waits undownloaded, staff get one alert, the smaller mail after it goes on,
and it is handled once there is room.

The files folder is a 16 MiB tmpfs, partly filled with a ballast file, so the disk really is short of room
(mounting needs root: skipped otherwise).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import (
    ENTERPRISE,
    FOLDERS,
    TIMEOUT,
    append,
    imap_env,
    message_ids_in,
    missing_proof,
    query,
    replies_to,
    run_once,
    valid,
    write_config,
)

from daemon.campaign import MIB
from daemon.demo.servers import PymapServer, SmtpCapture

LARGE, SMALL = "<large@minghu-soft.cn>", "<small@minghu-soft.cn>"


@pytest.fixture
def office(tmp_path: Path, imap: PymapServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The office folder, its `files` a 16 MiB tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the files folder needs root")
    for name, value in imap_env(imap).items():
        monkeypatch.setenv(name, value)
    files = tmp_path / "office" / "files"
    files.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(files)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield tmp_path / "office"
    finally:
        subprocess.run(["umount", "--lazy", str(files)], check=True)


def test_a_message_too_large_for_the_free_space_waits_with_one_alert_and_the_rest_go_on(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    large = valid("large", body="申报材料说明：" + "很长的正文。" * 150_000)
    assert 3 * MIB < len(large) < 4 * MIB
    append(imap, large)  # first: the small one after it must not wait behind it
    append(imap, missing_proof("small"))
    config = write_config(office, imap, smtp, reserve_mb=1)
    ballast = office / "files" / "ballast"
    ballast.write_bytes(b"\0" * (8 * MIB))  # about 8 MiB left: short of 3 × 3.6 MiB + 1 MiB

    first = run_once(config)

    assert first.report.handled == 1
    smtp.wait_for(1, TIMEOUT)
    assert len(replies_to(smtp, SMALL)) == 1
    assert message_ids_in(imap, FOLDERS["rejected"]) == [SMALL]
    assert message_ids_in(imap, "INBOX") == [LARGE]
    ((state, sha256),) = query(office, "SELECT state, raw_sha256 FROM mailbox_item WHERE size > ?", [MIB])
    assert (state, sha256) == ("no_room", None)  # not downloaded, no verdict
    assert query(office, "SELECT count(*) FROM message WHERE message_id = ?", [LARGE]) == [(0,)]
    ((source, text),) = query(office, "SELECT source, text FROM alert")
    assert source == "storage"
    assert "磁盘空间不足" in text and f"「{ENTERPRISE}」" in text and "大小 3." in text and "仅剩 " in text

    second = run_once(config)  # still no room: still waiting, no second alert

    assert second.report.handled == 0
    assert query(office, "SELECT state FROM mailbox_item WHERE size > ?", [MIB]) == [("no_room",)]
    assert query(office, "SELECT count(*) FROM alert") == [(1,)]

    ballast.unlink()
    third = run_once(config)

    assert third.report.handled == 1
    smtp.wait_for(2, TIMEOUT)
    assert len(replies_to(smtp, LARGE)) == 1
    assert message_ids_in(imap, FOLDERS["accepted"]) == [LARGE]
    assert message_ids_in(imap, "INBOX") == []
    assert query(office, "SELECT state FROM mailbox_item WHERE size > ?", [MIB]) == [("done",)]
    assert query(office, "SELECT outcome FROM message WHERE message_id = ?", [LARGE]) == [("accepted",)]
    assert query(office, "SELECT count(*) FROM alert") == [(1,)]
