"""contrib/shenbao.service: a sandboxed Type=notify unit with a watchdog, whose ExecStartPre checks only local
things, so that a mail provider's outage at boot does not fail the unit."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from daemon_support import ROOT, daemon_env, shenbao

UNIT = ROOT / "contrib" / "shenbao.service"
MAX_EXPOSURE = 1.5
"""systemd-analyze security's overall exposure (0 = locked down, 10 = wide open); measured 1.2 with systemd 252."""


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_is_a_notify_service_with_a_watchdog_and_an_offline_doctor() -> None:
    unit = directives(UNIT)

    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] == ["15min"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["UMask"] == ["0027"]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    (pre,) = unit["ExecStartPre"]
    assert " doctor --offline " in pre


def test_systemd_analyze_rates_the_unit_well_sandboxed(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "shenbao.service"
    shutil.copyfile(UNIT, unit)

    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )

    if "--offline" in result.stderr:
        pytest.skip(f"this systemd-analyze cannot judge a unit file offline: {result.stderr.strip()}")
    found = re.search(r"Overall exposure level for shenbao\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found[1]) <= MAX_EXPOSURE, result.stdout


def test_doctor_offline_passes_while_the_mail_servers_are_down(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        closed = listener.getsockname()[1]  # nothing listens there once the block ends
    conf = tmp_path / "conf"
    conf.mkdir()
    config = conf / "shenbao.toml"
    config.write_text(
        f'[imap]\nhost = "127.0.0.1"\nport = {closed}\nsecurity = "none"\nusername = "kejichu2019@shandong.cn"\n'
        'password_env = "SHENBAO_TEST_IMAP_PASSWORD"\n\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {closed}\nsecurity = "none"\nusername = "kejichu2019@shandong.cn"\n'
        'password_env = "SHENBAO_TEST_SMTP_PASSWORD"\nsender = "科技处 <kejichu2019@shandong.cn>"\n\n'
        '[storage]\ndatabase = "sqlite:///shenbao.db"\nfiles = "files"\nreserve_mb = 1\n',
        encoding="utf-8",
    )
    env = daemon_env(None, {"SHENBAO_TEST_IMAP_PASSWORD": "x", "SHENBAO_TEST_SMTP_PASSWORD": "x"})

    offline = shenbao("doctor", "--offline", "--config", config, env=env, cwd=tmp_path)
    online = shenbao("doctor", "--config", config, env=env, cwd=tmp_path)

    assert offline.returncode == 0, offline.stdout + offline.stderr
    names = [line.split("：")[0].split(maxsplit=1)[1] for line in offline.stdout.splitlines()]
    assert names == ["配置文件", "RAR 解压工具", "数据库", "数据库结构", "搁置的邮件", "文件目录"]
    assert f"正常  文件目录：{conf / 'files'}（可用 " in offline.stdout
    assert online.returncode == 3
    assert re.search(r"^失败  收信（IMAP）：127\.0\.0\.1:\d+: ", online.stdout, re.MULTILINE), online.stdout
