"""Which file in the archive plays which role, and is it really a Word document?

Role assignment is by name: a file whose name contains a role's keyword plays that role; a file whose own
name names no role takes the role of the nearest folder that does. `sniff` looks at content, so a text file
renamed .docx is told apart from a Word document; it runs inside the archive worker, under its limits.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from ..campaign import Role
from ..domain import Code, Document, Problem
from .signatures import RAR_SIGNATURES


class Content(StrEnum):
    DOCX = "docx"
    DOC = "doc"
    ENCRYPTED_OFFICE = "encrypted_office"
    ZIP = "zip"
    RAR = "rar"
    OLE = "ole"
    PDF = "pdf"
    OTHER = "other"


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DOCX_PARTS = frozenset({"[Content_Types].xml", "word/document.xml"})
_EXPECTED_CONTENT = {"docx": Content.DOCX, "doc": Content.DOC}
_CONTENT_WORDS = {
    Content.ENCRYPTED_OFFICE: "文档设有打开密码",
    Content.ZIP: "是压缩包而不是 Word 文档",
    Content.RAR: "是压缩包而不是 Word 文档",
    Content.OLE: "不是 Word 文档（可能是 WPS 或其他 Office 格式）",
    Content.PDF: "实为 PDF 文件",
    Content.OTHER: "不是有效的 Word 文档",
    Content.DOCX: "实为 .docx 格式",
    Content.DOC: "实为 .doc 格式",
}


def sniff(path: str) -> Content:
    """What a file really is, whatever its name says. Never raises on malformed input."""
    with open(path, "rb") as stream:
        head = stream.read(8)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return Content.OTHER
        return Content.DOCX if names >= _DOCX_PARTS else Content.ZIP
    if head == _OLE_MAGIC:
        return _sniff_ole(path)
    if head.startswith(b"%PDF"):
        return Content.PDF
    if head.startswith(RAR_SIGNATURES):  # an inner archive (the bureaus send one per enterprise)
        return Content.RAR
    return Content.OTHER


def _sniff_ole(path: str) -> Content:
    import olefile  # only the archive worker needs it

    try:
        with olefile.OleFileIO(path) as ole:
            if ole.exists("WordDocument"):
                return Content.DOC
            if ole.exists("EncryptedPackage"):
                return Content.ENCRYPTED_OFFICE
    except Exception:  # noqa: BLE001 - olefile raises many types on damaged files
        return Content.OTHER
    return Content.OLE


@dataclass(frozen=True)
class Member:
    """A regular file read from the archive."""

    name: str
    """Its path inside the archive, '/'-separated."""
    size: int
    sha256: str
    content: Content
    stored_as: str = ""
    """Where the worker wrote it, relative to its output folder."""

    @property
    def extension(self) -> str:
        return PurePosixPath(self.name).suffix.lower().lstrip(".")


def roles_of(name: str, roles: Sequence[Role]) -> tuple[Role, ...]:
    """The roles a file plays, by its own name first, else by its nearest folder that names one."""
    parts = PurePosixPath(name).parts
    for part in reversed(parts):
        found = tuple(role for role in roles if any(k in part for k in role.keywords))
        if found:
            return found
    return ()


def check_documents(members: Iterable[Member], roles: Sequence[Role]) -> tuple[list[Document], list[Problem]]:
    """Documents found for each role, and a problem for each role not satisfied by a real Word file."""
    by_role: dict[str, list[Member]] = {role.code: [] for role in roles}
    for member in members:
        for role in roles_of(member.name, roles):
            by_role[role.code].append(member)
    documents: list[Document] = []
    problems: list[Problem] = []
    for role in roles:
        files = by_role[role.code]
        in_format = [m for m in files if m.extension in role.formats]
        genuine = [m for m in in_format if _is_genuine(m)]
        documents += [Document(role.code, m.name, m.size, m.sha256, m in genuine) for m in files]
        if not files:
            problems.append(Problem(Code.MISSING_DOCUMENT, role=role.code))
        elif not in_format:
            problems.append(Problem(Code.NOT_WORD_DOCUMENT, role=role.code, detail=_names(files)))
        elif not genuine:
            detail = "；".join(f"{m.name}：{_CONTENT_WORDS[m.content]}" for m in in_format)
            problems.append(Problem(Code.INVALID_DOCUMENT, role=role.code, detail=detail))
    return documents, problems


def _is_genuine(member: Member) -> bool:
    expected = _EXPECTED_CONTENT.get(member.extension)
    return expected is None or member.content == expected


def _names(members: Iterable[Member]) -> str:
    return "、".join(m.name for m in members)
