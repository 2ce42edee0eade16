"""shenbao as a new user installs it: a wheel built from this tree, in a fresh virtual environment.

Only an installed package shows what the source tree hides: templates, resources and the archive worker
must all travel inside the wheel. The wheel is installed without its dependencies (no network in tests);
they are lent by this test's own environment through a path entry, which adds no editable finder.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.demo.servers import PymapServer, SmtpCapture

ROOT = Path(__file__).resolve().parents[2]
MAILBOX = "kejichu2019@shandong.cn"


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin folder of a fresh virtual environment holding the wheel of this tree."""
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build", "dist"))
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", base, ".", cwd=source)
    assert built.returncode == 0, built.stderr
    (wheel,) = base.glob("shenbao-*.whl")
    venv = base / "venv"
    created = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    done = run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel, cwd=base)
    assert done.returncode == 0, done.stderr
    target = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base).stdout.strip())
    lent = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    (target / "lent-dependencies.pth").write_text("\n".join(dict.fromkeys(lent)) + "\n")
    yield venv / "bin"


def test_the_wheel_carries_the_templates_resources_migrations_and_licence(installed: Path) -> None:
    (wheel,) = installed.parents[1].glob("shenbao-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    assert "daemon/templates/receipt.html.j2" in names
    assert "daemon/resources/selftest.rar" in names
    assert "daemon/migrations/env.py" in names
    assert any(name.startswith("daemon/migrations/versions/0001") for name in names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not any(name.startswith(("tests/", "templates/")) for name in names)


def test_the_package_is_imported_from_the_new_environment_not_the_source(installed: Path, tmp_path: Path) -> None:
    found = run(installed / "python", "-c", "import daemon; print(daemon.__file__)", cwd=tmp_path)

    assert found.returncode == 0, found.stderr
    assert str(installed.parent) in found.stdout
    assert str(ROOT) not in found.stdout


def test_version_is_printed_by_the_command_and_by_python_dash_m(installed: Path, tmp_path: Path) -> None:
    command = run(installed / "shenbao", "--version", cwd=tmp_path)
    module = run(installed / "python", "-m", "daemon", "--version", cwd=tmp_path)

    assert command.returncode == 0, command.stderr
    assert command.stdout.startswith("shenbao 0.")
    assert module.stdout == command.stdout


def test_the_installed_demo_judges_and_answers_the_samples(installed: Path, tmp_path: Path) -> None:
    result = run(installed / "shenbao", "demo", "--dir", tmp_path / "demo", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "共核验 13 封邮件，发出 12 封回复。" in result.stdout
    assert len(list((tmp_path / "demo" / "replies").glob("*.eml"))) == 12


def test_the_installed_daemon_runs_once_against_a_mailbox(installed: Path, tmp_path: Path) -> None:
    from conftest import RECEIVED, valid_submission, write_roster

    from daemon.demo import loopback_config

    write_roster(tmp_path / "roster.xlsx")
    with PymapServer(MAILBOX, "secret") as imap, SmtpCapture(auth=True) as smtp:
        import imapclient

        client = imapclient.IMAPClient(imap.host, port=imap.port, ssl=False)
        client.login(MAILBOX, "secret")
        client.append("INBOX", valid_submission(), msg_time=RECEIVED)
        client.logout()
        (tmp_path / "shenbao.toml").write_text(loopback_config(imap, smtp, password_env="SHENBAO_TEST_PASSWORD"))
        result = run(
            installed / "shenbao",
            "run",
            "--config",
            tmp_path / "shenbao.toml",
            "--once",
            cwd=tmp_path,
            env={**os.environ, "SHENBAO_TEST_PASSWORD": "secret"},
        )
        assert result.returncode == 0, result.stderr
        assert "回复：发出 1 封" in result.stdout, result.stdout
        replies = smtp.wait_for(1)

    assert "处理 1 封邮件" in result.stdout
    assert "已受理" in result.stdout
    assert b"SB-000001" in replies[0].data


def test_the_installed_web_console_finds_its_templates_and_stylesheet(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "shenbao.toml").write_text('[storage]\ndatabase = "sqlite:///shenbao.db"\nfiles = "files"\n')
    script = (
        "import sys; from pathlib import Path\n"
        "from daemon.config import load; from daemon.service.runtime import Runtime\n"
        "from daemon.web.app import create_app\n"
        "client = create_app(Runtime.open(load(Path('shenbao.toml'))), secret_key=b'k' * 32).test_client()\n"
        "login, style = client.get('/login'), client.get('/static/console.css')\n"
        "print(login.status_code, style.status_code, '登录' in login.get_data(as_text=True))\n"
    )

    found = run(installed / "python", "-c", script, cwd=tmp_path)

    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["200", "200", "True"]
