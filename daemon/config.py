"""TOML configuration -> frozen, typed settings.

Every wrong or missing key is reported at once, one line each naming the key. Relative paths (the SQLite
file included) are relative to the configuration file's folder, whatever the working directory. Secrets
never live in the file: it names the environment variables that hold them.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.engine import make_url

from .campaign import (
    DEFAULT_CALL,
    DEFAULT_ROLES,
    MIB,
    ArchiveLimits,
    Bureau,
    Call,
    CallRules,
    DocumentLimits,
    NameMatch,
    Reading,
    Role,
    SealPolicy,
)


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
    """Where each outcome's messages are moved (created when missing): one field per `Outcome`."""

    accepted: str = "已受理"
    rejected: str = "已退回"
    review: str = "待人工"
    ignored: str = "已忽略"
    pending: str = "待补齐"
    """Volumes waiting for the rest of their set; they stay here when the email completing it is filed."""
    bureau: str = "市局报送"


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
    reconnect_max_seconds: Annotated[float, Field(ge=1)] = 300.0
    """The longest wait between attempts to reach the mailbox again; the wait doubles from one second."""
    targets: TargetFolders = TargetFolders()


class SmtpTimeouts(_Section):
    """Seconds to wait for each answer, by default what RFC 5321 §4.5.3.2 recommends: a slow server is
    waited for, since giving up on the answer to the end of the data leaves the outcome unknown."""

    greeting: Annotated[float, Field(gt=0)] = 300.0
    """Connecting and the 220 greeting; also EHLO, STARTTLS, AUTH, RSET and QUIT, for which it names none."""
    mail: Annotated[float, Field(gt=0)] = 300.0
    rcpt: Annotated[float, Field(gt=0)] = 300.0
    data_command: Annotated[float, Field(gt=0)] = 120.0
    """The 354 answer to DATA."""
    data_block: Annotated[float, Field(gt=0)] = 180.0
    """The message data leaving the client: the longest time no byte of it may move."""
    data_end: Annotated[float, Field(gt=0)] = 600.0
    """The answer to the final "." of the message data."""


class SmtpSettings(_Section):
    host: str
    port: int = 465
    security: Security = Security.TLS
    username: str
    password_env: str = "SHENBAO_SMTP_PASSWORD"
    sender: str
    connections: Annotated[int, Field(ge=1, le=32)] = 4
    """SMTP connections at once, each reused for many replies: a slow answer holds up only its own."""
    timeouts: SmtpTimeouts = SmtpTimeouts()


class StorageSettings(_Section):
    database: str = "sqlite:///var/shenbao.db"
    files: Path = Path("var/files")
    reserve_mb: Annotated[float, Field(ge=0)] = 500.0
    """Free space in the files folder that downloading a message must leave."""
    give_up_seconds: Annotated[float, Field(gt=0)] = 300.0
    """How long database errors may fill every cycle before `shenbao run` stops, for systemd to restart it."""


class RoleSettings(_Section):
    code: str
    label: str
    keywords: tuple[str, ...]
    formats: tuple[str, ...] = ("doc", "docx")
    reading: Reading = Reading.PLAIN
    """form (the seal, the name, the 质量标杆名称), write_up (title, near-identical copies) or plain."""


class CallSettings(_Section):
    """One of several calls served by the mailbox (`[[campaign.calls]]`)."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    name: str
    table: str = ""
    bureau_deadline: AwareDatetime | None = None
    deadline: AwareDatetime | None = None
    """The enterprises' own deadline; a call without one gets no emails from enterprises themselves."""
    max_per_city: Annotated[int, Field(gt=0)] | None = None
    roster: Path | None = None
    online_filing: str = ""


class CampaignSettings(_Section):
    name: str = ""
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")] = DEFAULT_CALL
    """The code of the single call, when no [[campaign.calls]] are listed."""
    deadline: AwareDatetime | None = None
    opens: AwareDatetime | None = None
    roster: Path | None = None
    online_filing: str = ""
    max_archive_mb: Annotated[float, Field(gt=0)] = 200.0
    max_message_mb: Annotated[float, Field(gt=0)] = 300.0
    review_senders: tuple[str, ...] = ()
    subject_match: NameMatch = NameMatch.CONTAINS
    archive_name_match: NameMatch = NameMatch.PREFIX
    volume_window_hours: Annotated[float, Field(gt=0)] = 72.0
    calls: tuple[CallSettings, ...] = ()
    roles: tuple[RoleSettings, ...] = tuple(
        RoleSettings(code=r.code, label=r.label, keywords=r.keywords, formats=r.formats, reading=r.reading)
        for r in DEFAULT_ROLES
    )
    seal: SealPolicy = CallRules.seal
    """What a form on which no seal is seen gets: note (accepted, the receipt asks to confirm the stamp),
    review, reject, or off."""
    similar_texts: Annotated[float, Field(gt=0, le=1)] = CallRules.similar_texts

    @model_validator(mode="after")
    def _calls_are_distinct(self) -> CampaignSettings:
        codes = [call.code for call in self.calls]
        if len(set(codes)) != len(codes):
            raise ValueError("calls: two calls have the same code")
        return self


class OfficeSettings(_Section):
    """Who answers: the footer of every reply, so that nobody has to look up a phone number."""

    name: str = ""
    """The office's name (the From: display name when empty)."""
    phone: str = ""
    contact: str = ""
    address: str = ""
    notice: str = ""
    """The title of the notice the calls come from."""


class ArchiveSettings(_Section):
    max_members: Annotated[int, Field(gt=0)] = ArchiveLimits.max_members
    max_unpacked_mb: Annotated[float, Field(gt=0)] = ArchiveLimits.max_unpacked_bytes / MIB
    max_ratio: Annotated[float, Field(gt=1)] = ArchiveLimits.max_ratio
    timeout_seconds: Annotated[float, Field(gt=0)] = ArchiveLimits.timeout_seconds
    memory_mb: Annotated[int, Field(ge=256)] = ArchiveLimits.memory_bytes // MIB
    message_timeout_seconds: Annotated[float, Field(gt=0)] = CallRules.judging_seconds
    document_timeout_seconds: Annotated[float, Field(gt=0)] = DocumentLimits.timeout_seconds
    document_memory_mb: Annotated[int, Field(ge=1024)] = DocumentLimits.memory_bytes // MIB


class DigestSettings(_Section):
    recipients: tuple[str, ...] = ()
    time: dt.time = dt.time(8, 30)
    """Time of day in Asia/Shanghai."""


class AlertsSettings(_Section):
    """Who hears when the mailbox breaks, and how soon."""

    recipients: tuple[str, ...] = ()
    webhook: str = ""
    """A group robot's URL (企业微信, 钉钉) or any endpoint taking a JSON POST; it does not need the mailbox."""
    after_minutes: Annotated[float, Field(gt=0)] = 15.0
    """How long IMAP or SMTP may fail, or no sync succeed, before staff are told."""
    min_free_mb: Annotated[float, Field(ge=0)] = 1024.0
    """Free space in the files folder below which staff are told at once."""


class RemindersSettings(_Section):
    days: tuple[Annotated[int, Field(ge=0)], ...] = (7, 3, 1)
    """Days before the deadline on which each enterprise still missing is reminded."""
    time: dt.time = dt.time(9, 0)


class RepliesSettings(_Section):
    max_per_address_per_hour: Annotated[int, Field(ge=0)] = 10


class WebSettings(_Section):
    """The web console (`shenbao web`)."""

    listen: Annotated[str, Field(pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):[0-9]{1,5}$")] = "127.0.0.1:8080"
    """host:port (an IPv6 host in brackets). Behind nginx, keep it on loopback."""
    secure_cookies: bool = False
    """Mark the session cookie Secure: set it when people reach the console over HTTPS."""
    behind_proxy: bool = False
    """Take the client's address and scheme from X-Forwarded-For/-Proto set by a proxy on loopback (nginx)."""
    secret_env: str = "SHENBAO_WEB_SECRET"
    """The environment variable holding the key that signs session cookies (unset: a new key at each start,
    so everyone logs in again after a restart)."""
    metrics_token_env: str = ""
    """An environment variable holding a token that Prometheus may send (Authorization: Bearer) for /metrics
    when the console is not bound to loopback."""
    session_hours: Annotated[float, Field(gt=0)] = 8.0
    """How long a login lasts."""

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _port_in_range(self) -> WebSettings:
        if not 0 < self.port < 65536:
            raise ValueError(f"listen: port {self.port} is not between 1 and 65535")
        return self


class Settings(_Section):
    imap: ImapSettings | None = None
    smtp: SmtpSettings | None = None
    storage: StorageSettings = StorageSettings()
    campaign: CampaignSettings = CampaignSettings()
    bureaus: dict[str, tuple[str, ...]] = {}
    """City -> the addresses (with @) or domains that speak for its bureau."""
    office: OfficeSettings = OfficeSettings()
    alerts: AlertsSettings = AlertsSettings()
    archive: ArchiveSettings = ArchiveSettings()
    replies: RepliesSettings = RepliesSettings()
    digest: DigestSettings = DigestSettings()
    reminders: RemindersSettings = RemindersSettings()
    web: WebSettings = WebSettings()
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

    def roster_paths(self) -> dict[str, Path]:
        """Each call's roster file: its own `roster`, else the campaign's for the call enterprises write to."""
        rules = self.call_rules()
        found = {c.code: self.resolve(c.roster) for c in self.campaign.calls if c.roster}
        own = rules.own_call
        if self.roster_path is not None:
            for call in (own,) if own else rules.calls:
                found.setdefault(call.code, self.roster_path)
        return found

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    def call_rules(self) -> CallRules:
        archive = self.archive
        campaign = self.campaign
        calls = tuple(
            Call(
                code=c.code,
                name=c.name,
                table=c.table,
                bureau_deadline=c.bureau_deadline,
                deadline=c.deadline,
                own_emails=c.deadline is not None,
                max_per_city=c.max_per_city,
                online_filing=c.online_filing,
            )
            for c in campaign.calls
        ) or (
            Call(
                code=campaign.code, name=campaign.name, deadline=campaign.deadline, online_filing=campaign.online_filing
            ),
        )
        return CallRules(
            calls=calls,
            max_archive_bytes=int(self.campaign.max_archive_mb * MIB),
            max_message_bytes=int(self.campaign.max_message_mb * MIB),
            roles=tuple(
                Role(r.code, r.label, r.keywords, tuple(f.lower().lstrip(".") for f in r.formats), r.reading)
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
            bureaus=tuple(Bureau(city, tuple(senders)) for city, senders in self.bureaus.items()),
            subject_match=campaign.subject_match,
            archive_name_match=campaign.archive_name_match,
            volume_window=dt.timedelta(hours=campaign.volume_window_hours),
            judging_seconds=archive.message_timeout_seconds,
            seal=campaign.seal,
            similar_texts=campaign.similar_texts,
            document_limits=DocumentLimits(archive.document_timeout_seconds, archive.document_memory_mb * MIB),
            listed_only=bool(self.bureaus or campaign.roster or any(c.roster for c in campaign.calls)),
        )


class MissingSecret(Exception):
    pass


def secret(variable: str) -> str:
    """A password from the environment variable the file names (password_env)."""
    value = os.environ.get(variable)
    if value is None:
        raise MissingSecret(f"the environment variable {variable} (named by password_env) is not set")
    return value


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
