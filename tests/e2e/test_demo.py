"""`shenbao demo` as a newcomer runs it: no configuration, no network, loopback servers it starts itself."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = resources.files("daemon") / "resources" / "demo"


def sample_messages() -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in SAMPLES.iterdir() if entry.name.endswith(".eml")}


def test_demo_judges_every_sample_and_writes_the_replies(tmp_path: Path) -> None:
    samples = sample_messages()
    assert len(samples) >= 10
    target = tmp_path / "demo"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)

    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--dir", str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("样例"))
    for column in ("结论", "企业", "问题", "移至文件夹", "回复"):
        assert column in header
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in samples}
    assert set(rows) == set(samples)  # one table row per sample
    assert "已受理" in rows["01-valid.eml"] and "受理回执（已发送）" in rows["01-valid.eml"]
    assert "缺少材料：证明材料" in rows["05-missing-proof.eml"] and "退回通知（已发送）" in rows["05-missing-proof.eml"]
    assert "已忽略" in rows["09-auto-reply.eml"] and "自动回复" in rows["09-auto-reply.eml"]
    assert rows["09-auto-reply.eml"].split()[-1] == "—"  # never answered
    ignored = [name for name, row in rows.items() if "已忽略" in row.split()[1]]

    replies = sorted((target / "replies").glob("*.eml"))
    assert len(replies) == len(samples) - len(ignored)
    assert f"共核验 {len(samples)} 封邮件，发出 {len(replies)} 封回复。" in done.stdout
    sample_ids = {
        str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]) for raw in samples.values()
    }
    answered = []
    for path in replies:
        reply = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert str(reply["Auto-Submitted"]) == "auto-replied"
        assert reply.get_body(preferencelist=("plain",)) is not None
        assert reply.get_body(preferencelist=("html",)) is not None
        answered.append(str(reply["In-Reply-To"]))
    assert set(answered) <= sample_ids
    assert len(set(answered)) == len(answered)

    connection = sqlite3.connect(target / "shenbao.db")
    try:
        recorded = Counter(sha256 for (sha256,) in connection.execute("SELECT raw_sha256 FROM message"))
    finally:
        connection.close()
    expected = {hashlib.sha256(raw).hexdigest() for raw in samples.values()}
    assert recorded == dict.fromkeys(expected, 1)  # one row per sample, the bytes exactly as sent
