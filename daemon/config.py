"""TOML configuration -> frozen, typed settings.

Every wrong or missing key is reported at once, one line each naming the key. Relative paths (the SQLite
file included) are relative to the configuration file's folder, whatever the working directory. Secrets
never live in the file: it names the environment variables that hold them.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url

from .campaign import DEFAULT_ROLES, MIB, ArchiveLimits, CallRules, Role


class ConfigError(Exception):
    """The configuration is unusable; `lines` says why, one problem per line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Security(StrEnum):
    TLS = "tls"
    STARTTLS = "starttls"
    NONE = "none"


class TargetFolders(_Section):
    """Where each verdict's messages are moved (created when missing)."""

    accepted: str = "已受理"
    rejected: str = "已退回"
    review: str = "待人工"
    ignored: str = "已忽略"


class ImapSettings(_Section):
    host: str
    port: int = 993
    security: Security = Security.TLS
    username: str
    password_env: str = "SHENBAO_IMAP_PASSWORD"
    folders: tuple[str, ...] = ("INBOX",)
    poll_seconds: Annotated[float, Field(gt=0)] = 60.0
    idle_seconds: Annotated[float, Field(gt=0, le=1500)] = 240.0
    timeout_seconds: Annotated[float, Field(gt=0)] = 120.0
    targets: TargetFolders = TargetFolders()


class SmtpSettings(_Section):
    host: str
    port: int = 465
    security: Security = Security.TLS
    username: str
    password_env: str = "SHENBAO_SMTP_PASSWORD"
    sender: str


class StorageSettings(_Section):
    database: str = "sqlite:///var/shenbao.db"
    files: Path = Path("var/files")
    give_up_seconds: Annotated[float, Field(gt=0)] = 300.0
    """How long database errors may fill every cycle before `shenbao run` stops, for systemd to restart it."""


class RoleSettings(_Section):
    code: str
    label: str
    keywords: tuple[str, ...]
    formats: tuple[str, ...] = ("doc", "docx")


class CampaignSettings(_Section):
    name: str = ""
    deadline: AwareDatetime | None = None
    opens: AwareDatetime | None = None
    roster: Path | None = None
    max_archive_mb: Annotated[float, Field(gt=0)] = 200.0
    max_message_mb: Annotated[float, Field(gt=0)] = 300.0
    review_senders: tuple[str, ...] = ()
    roles: tuple[RoleSettings, ...] = tuple(
        RoleSettings(code=r.code, label=r.label, keywords=r.keywords, formats=r.formats) for r in DEFAULT_ROLES
    )


class ArchiveSettings(_Section):
    max_members: Annotated[int, Field(gt=0)] = ArchiveLimits.max_members
    max_unpacked_mb: Annotated[float, Field(gt=0)] = ArchiveLimits.max_unpacked_bytes / MIB
    max_ratio: Annotated[float, Field(gt=1)] = ArchiveLimits.max_ratio
    timeout_seconds: Annotated[float, Field(gt=0)] = ArchiveLimits.timeout_seconds
    memory_mb: Annotated[int, Field(ge=256)] = ArchiveLimits.memory_bytes // MIB


class DigestSettings(_Section):
    recipients: tuple[str, ...] = ()
    time: dt.time = dt.time(8, 30)
    """Time of day in Asia/Shanghai."""


class RemindersSettings(_Section):
    days: tuple[Annotated[int, Field(ge=0)], ...] = (7, 3, 1)
    """Days before the deadline on which each enterprise still missing is reminded."""
    time: dt.time = dt.time(9, 0)


class RepliesSettings(_Section):
    max_per_address_per_hour: Annotated[int, Field(ge=0)] = 10


class Settings(_Section):
    imap: ImapSettings | None = None
    smtp: SmtpSettings | None = None
    storage: StorageSettings = StorageSettings()
    campaign: CampaignSettings = CampaignSettings()
    archive: ArchiveSettings = ArchiveSettings()
    replies: RepliesSettings = RepliesSettings()
    digest: DigestSettings = DigestSettings()
    reminders: RemindersSettings = RemindersSettings()
    base_dir: Path = Path(".")
    """The configuration file's folder: every relative path is relative to it."""

    @property
    def database_url(self) -> str:
        """The database URL, a relative SQLite file made relative to the configuration's folder."""
        url = make_url(self.storage.database)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return self.storage.database
        return url.set(database=str(self.resolve(Path(url.database)))).render_as_string(hide_password=False)

    @property
    def files_dir(self) -> Path:
        return self.resolve(self.storage.files)

    @property
    def roster_path(self) -> Path | None:
        return self.resolve(self.campaign.roster) if self.campaign.roster else None

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    def call_rules(self) -> CallRules:
        archive = self.archive
        return CallRules(
            deadline=self.campaign.deadline,
            max_archive_bytes=int(self.campaign.max_archive_mb * MIB),
            max_message_bytes=int(self.campaign.max_message_mb * MIB),
            roles=tuple(
                Role(r.code, r.label, r.keywords, tuple(f.lower().lstrip(".") for f in r.formats))
                for r in self.campaign.roles
            ),
            limits=ArchiveLimits(
                max_members=archive.max_members,
                max_unpacked_bytes=int(archive.max_unpacked_mb * MIB),
                max_ratio=archive.max_ratio,
                timeout_seconds=archive.timeout_seconds,
                memory_bytes=archive.memory_mb * MIB,
            ),
            review_senders=tuple(entry.strip().lower() for entry in self.campaign.review_senders),
        )


def load(path: Path) -> Settings:
    """Read and check a configuration file; ConfigError lists everything wrong with it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"{path}: cannot read: {error.strerror or error}"]) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from error
    errors = []
    if "base_dir" in data:
        errors.append(f"{path}: base_dir: unknown key")
    data["base_dir"] = path.resolve().parent
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        errors += [_describe(path, e) for e in error.errors()]
    if errors:
        raise ConfigError(errors)
    return settings


def _describe(path: Path, error: object) -> str:
    assert isinstance(error, dict)
    key = ".".join(str(part) for part in error["loc"])
    message = {"missing": "required key is missing", "extra_forbidden": "unknown key"}.get(error["type"], error["msg"])
    return f"{path}: {key}: {message}"
