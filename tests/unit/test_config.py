"""The TOML configuration: typed settings, paths relative to the file, every mistake reported at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon.campaign import DEFAULT_ROLES, Role
from daemon.config import ConfigError, Security, TargetFolders, load
from daemon.domain import Outcome

SHANGHAI = timezone(timedelta(hours=8))

FULL = """
[imap]
host = "imap.example.cn"
port = 993
security = "tls"            # tls | starttls | none
username = "kejichu2019@shandong.cn"
password_env = "SHENBAO_IMAP_PASSWORD"
folders = ["INBOX", "垃圾邮件"]

[smtp]
host = "smtp.example.cn"
port = 465
security = "starttls"
username = "kejichu2019@shandong.cn"
password_env = "SHENBAO_SMTP_PASSWORD"
sender = "山东省工业和信息化厅科技处 <kejichu2019@shandong.cn>"

[storage]
database = "sqlite:///var/shenbao.db"
files = "var/files"

[campaign]
name = "2022年全国质量标杆"
deadline = "2022-07-05T23:59:59+08:00"
opens = "2022-06-01T00:00:00+08:00"
roster = "roster.xlsx"
max_archive_mb = 200
max_message_mb = 300
review_senders = ["jnjxw.example.cn", "colleague@shandong.cn"]

[replies]
max_per_address_per_hour = 10
"""

OFFLINE = """
[storage]
database = "sqlite:///var/x.db"
files = "var/files"

[campaign]
deadline = "2022-07-05T23:59:59+08:00"
roster = "tables/roster.xlsx"
"""


def write(folder: Path, text: str, name: str = "shenbao.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == "\n".join(raised.value.lines)
    return raised.value.lines


def test_a_full_configuration_loads_into_typed_settings(tmp_path: Path) -> None:
    settings = load(write(tmp_path, FULL))

    assert settings.imap is not None
    assert settings.imap.host == "imap.example.cn"
    assert settings.imap.port == 993
    assert settings.imap.security is Security.TLS
    assert settings.imap.folders == ("INBOX", "垃圾邮件")
    assert settings.smtp is not None
    assert settings.smtp.security is Security.STARTTLS
    assert settings.smtp.sender == "山东省工业和信息化厅科技处 <kejichu2019@shandong.cn>"
    assert settings.campaign.name == "2022年全国质量标杆"
    assert settings.campaign.deadline == datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)
    assert settings.campaign.opens == datetime(2022, 6, 1, tzinfo=SHANGHAI)
    assert settings.campaign.max_archive_mb == 200
    assert settings.campaign.max_message_mb == 300
    assert settings.campaign.review_senders == ("jnjxw.example.cn", "colleague@shandong.cn")
    assert settings.replies.max_per_address_per_hour == 10


def test_a_toml_datetime_with_an_offset_is_a_deadline_too(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "[campaign]\ndeadline = 2022-07-05T23:59:59+08:00\n"))

    assert settings.campaign.deadline == datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)


def test_relative_paths_resolve_against_the_config_files_folder_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write(tmp_path / "etc" / "shenbao", OFFLINE).parent.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path / "etc")

    settings = load(Path("shenbao/shenbao.toml"))
    monkeypatch.chdir(elsewhere)

    assert settings.database_url == "sqlite:///" + str(folder / "var" / "x.db")
    assert settings.files_dir == folder / "var" / "files"
    assert settings.roster_path == folder / "tables" / "roster.xlsx"


def test_loading_from_another_working_directory_gives_the_same_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "conf", OFFLINE)
    monkeypatch.chdir(tmp_path / "conf")
    here = load(Path("shenbao.toml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    there = load(path)

    assert (there.database_url, there.files_dir, there.roster_path) == (
        here.database_url,
        here.files_dir,
        here.roster_path,
    )
    assert not (elsewhere / "var").exists()


def test_a_driver_qualified_sqlite_url_also_resolves_against_the_config_folder(tmp_path: Path) -> None:
    folder = write(tmp_path / "conf", '[storage]\ndatabase = "sqlite+pysqlite:///var/x.db"\n').parent.resolve()

    settings = load(folder / "shenbao.toml")

    assert settings.database_url == "sqlite+pysqlite:///" + str(folder / "var" / "x.db")


def test_absolute_paths_stay_as_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    text = (
        f'[storage]\ndatabase = "sqlite:///{data}/db/shenbao.db"\nfiles = "{data}/files"\n'
        f'[campaign]\nroster = "{data}/roster.xlsx"\n'
    )

    settings = load(write(tmp_path / "conf", text))

    assert settings.database_url == f"sqlite:///{data}/db/shenbao.db"
    assert settings.files_dir == data / "files"
    assert settings.roster_path == data / "roster.xlsx"


@pytest.mark.parametrize(
    "url",
    ["sqlite:///:memory:", "postgresql+psycopg://shenbao@db.example.cn:5432/shenbao"],
    ids=["sqlite-memory", "postgresql"],
)
def test_a_database_url_that_names_no_local_file_is_left_alone(tmp_path: Path, url: str) -> None:
    settings = load(write(tmp_path, f'[storage]\ndatabase = "{url}"\n'))

    assert settings.database_url == url


def test_without_a_roster_setting_there_is_no_roster_path(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "[storage]\n"))

    assert settings.roster_path is None


def test_every_wrong_key_is_reported_at_once_one_line_each_naming_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[imap]
port = "nine-nine-three"
username = "kejichu2019@shandong.cn"

[storage]
databse = "sqlite:///var/x.db"

[campaign]
deadline = "2022-07-05T23:59:59"
""",
    )

    lines = problems(path)

    keys = ["imap.host", "imap.port", "storage.databse", "campaign.deadline"]
    assert len(lines) == len(keys)
    for key in keys:
        assert len([line for line in lines if f"{key}:" in line]) == 1, (key, lines)
    assert all(str(path) in line for line in lines)
    assert any("imap.host" in line and "missing" in line for line in lines)
    assert any("storage.databse" in line and "unknown" in line for line in lines)


def test_an_unknown_section_is_reported_by_its_name(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, '[imapp]\nhost = "imap.example.cn"\n'))

    assert len(lines) == 1
    assert "imapp" in lines[0]


def test_a_misplaced_base_dir_key_is_reported_together_with_the_other_mistakes(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, 'base_dir = "/srv"\n[campaign]\ndeadline = "2022-07-05T23:59:59"\n'))

    assert any("base_dir" in line for line in lines)
    assert any("campaign.deadline" in line for line in lines)


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[campaign\ndeadline = "2022-07-05T23:59:59+08:00"\n')

    lines = problems(path)

    assert len(lines) == 1
    assert str(path) in lines[0]
    assert "TOML" in lines[0]


def test_a_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    lines = problems(path)

    assert len(lines) == 1
    assert str(path) in lines[0]


def test_offline_use_needs_only_storage_and_campaign(tmp_path: Path) -> None:
    settings = load(write(tmp_path, OFFLINE))

    assert settings.imap is None
    assert settings.smtp is None


def test_smtp_waits_as_rfc_5321_recommends_over_four_connections_unless_told_otherwise(tmp_path: Path) -> None:
    defaults = load(write(tmp_path, FULL)).smtp
    assert defaults is not None
    timeouts = defaults.timeouts
    assert defaults.connections == 4
    assert (timeouts.greeting, timeouts.mail, timeouts.rcpt) == (300, 300, 300)
    assert (timeouts.data_command, timeouts.data_block, timeouts.data_end) == (120, 180, 600)

    text = FULL.replace("[storage]", "connections = 1\n\n[smtp.timeouts]\ndata_end = 0.5\n\n[storage]")
    shortened = load(write(tmp_path, text)).smtp
    assert shortened is not None
    assert shortened.connections == 1
    assert shortened.timeouts.data_end == 0.5
    assert shortened.timeouts.greeting == 300


def test_the_example_configuration_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    settings = load(write(tmp_path, example.read_text(encoding="utf-8")))

    assert settings.smtp is not None
    assert settings.smtp.timeouts.data_end == 600


def test_call_rules_turn_decimal_megabytes_into_bytes_of_two_to_the_twenty(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "[campaign]\nmax_archive_mb = 0.5\n"))

    assert settings.call_rules().max_archive_bytes == 2**19


def test_call_rules_default_to_the_notice(tmp_path: Path) -> None:
    rules = load(write(tmp_path, "[storage]\n")).call_rules()

    assert rules.max_archive_bytes == 200 * 2**20
    assert rules.deadline is None
    assert rules.roles == DEFAULT_ROLES


def test_call_rules_carry_the_deadline(tmp_path: Path) -> None:
    rules = load(write(tmp_path, OFFLINE)).call_rules()

    assert rules.deadline == datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)


def test_custom_roles_become_role_objects(tmp_path: Path) -> None:
    text = """
[campaign]
[[campaign.roles]]
code = "application_form"
label = "申报表"
keywords = ["申报表", "申请表"]
formats = [".DOCX", "pdf"]

[[campaign.roles]]
code = "summary"
label = "工作总结"
keywords = ["总结"]
"""
    rules = load(write(tmp_path, text)).call_rules()

    assert rules.roles == (
        Role("application_form", "申报表", ("申报表", "申请表"), ("docx", "pdf")),
        Role("summary", "工作总结", ("总结",), ("doc", "docx")),
    )


def test_every_outcome_has_a_folder_to_go_to() -> None:
    """The watcher files each message by its outcome's name: an outcome without a folder could not be filed."""
    assert set(TargetFolders.model_fields) == {outcome.value for outcome in Outcome}
