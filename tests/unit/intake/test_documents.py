"""Which file plays which role, and whether it is really a Word document (issue 2, point 5)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES

from daemon.campaign import DEFAULT_ROLES, Role
from daemon.domain import Code, Document, Problem
from daemon.intake.documents import Content, Member, check_documents, roles_of, sniff


def codes_of(roles: tuple[Role, ...]) -> list[str]:
    return [role.code for role in roles]


def member(name: str, content: Content = Content.DOCX, size: int = 1000) -> Member:
    return Member(name, size, hashlib.sha256(name.encode()).hexdigest(), content, "member-00000")


def complete_set(**replace: Member) -> list[Member]:
    """The three standard documents, each replaceable by role code (or removed with None)."""
    members = {
        "application_form": member("申报书.docx"),
        "experience": member("典型经验材料.docx"),
        "proof": member("证明材料.docx"),
    }
    members.update(replace)
    return [m for m in members.values() if m is not None]


# -- roles_of ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("申报书.docx", "application_form"),
        ("1-申报书（盖章）.docx", "application_form"),
        ("典型经验材料.docx", "experience"),
        ("证明材料.docx", "proof"),
    ],
)
def test_a_file_plays_the_role_whose_keyword_its_name_contains(name: str, role: str) -> None:
    assert codes_of(roles_of(name, DEFAULT_ROLES)) == [role]


def test_a_file_with_no_keyword_takes_the_role_of_its_folder() -> None:
    assert codes_of(roles_of("济南明湖软件科技有限公司/证明材料/营业执照.pdf", DEFAULT_ROLES)) == ["proof"]


def test_a_file_takes_the_role_of_its_nearest_folder_that_names_one() -> None:
    assert codes_of(roles_of("申报书/典型经验/附件/正文.docx", DEFAULT_ROLES)) == ["experience"]


def test_the_file_name_wins_over_the_folder_name() -> None:
    assert codes_of(roles_of("证明材料/申报书.docx", DEFAULT_ROLES)) == ["application_form"]


@pytest.mark.parametrize("name", ["公司简介.docx", "济南明湖软件科技有限公司/正文.docx", "readme.txt", ""])
def test_a_name_without_any_keyword_plays_no_role(name: str) -> None:
    assert roles_of(name, DEFAULT_ROLES) == ()


def test_one_name_can_play_two_roles() -> None:
    assert set(codes_of(roles_of("申报书及证明材料.docx", DEFAULT_ROLES))) == {"application_form", "proof"}


def test_roles_come_from_the_configured_keywords() -> None:
    budget = Role("budget", "经费预算表", ("预算", "经费"), ("xlsx",))
    assert roles_of("项目经费明细.xlsx", (budget,)) == (budget,)
    assert roles_of("申报书.docx", (budget,)) == ()


# -- check_documents ----------------------------------------------------------------------------------------


def test_the_three_genuine_documents_satisfy_every_role_and_are_all_listed() -> None:
    members = complete_set()
    documents, problems = check_documents(members, DEFAULT_ROLES)
    assert problems == []
    assert [(d.role, d.name) for d in documents] == [
        ("application_form", "申报书.docx"),
        ("experience", "典型经验材料.docx"),
        ("proof", "证明材料.docx"),
    ]
    assert all(d.is_word for d in documents)
    assert [(d.size, d.sha256) for d in documents] == [(m.size, m.sha256) for m in members]


@pytest.mark.parametrize("absent", ["application_form", "experience", "proof"])
def test_an_absent_document_is_missing_document_with_its_role(absent: str) -> None:
    _documents, problems = check_documents(complete_set(**{absent: None}), DEFAULT_ROLES)
    assert problems == [Problem(Code.MISSING_DOCUMENT, role=absent)]


def test_no_members_at_all_means_every_role_is_missing() -> None:
    documents, problems = check_documents([], DEFAULT_ROLES)
    assert documents == []
    assert [(p.code, p.role) for p in problems] == [
        (Code.MISSING_DOCUMENT, "application_form"),
        (Code.MISSING_DOCUMENT, "experience"),
        (Code.MISSING_DOCUMENT, "proof"),
    ]


def test_files_that_play_no_role_are_neither_listed_nor_a_problem() -> None:
    documents, problems = check_documents([*complete_set(), member("公司简介.docx")], DEFAULT_ROLES)
    assert problems == []
    assert "公司简介.docx" not in {d.name for d in documents}


@pytest.mark.parametrize(
    ("name", "content"),
    [("申报书.pdf", Content.PDF), ("申报书.wps", Content.DOC), ("申报书.jpg", Content.OTHER)],
)
def test_a_role_with_only_non_word_files_is_not_word_document(name: str, content: Content) -> None:
    documents, problems = check_documents(complete_set(application_form=member(name, content)), DEFAULT_ROLES)
    assert [(p.code, p.role) for p in problems] == [(Code.NOT_WORD_DOCUMENT, "application_form")]
    assert name in (problems[0].detail or "")
    assert (name, False) in {(d.name, d.is_word) for d in documents}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("典型经验材料.docx", Content.OTHER),
        ("典型经验材料.docx", Content.ZIP),
        ("典型经验材料.docx", Content.DOC),
        ("典型经验材料.doc", Content.OTHER),
        ("典型经验材料.doc", Content.OLE),
        ("典型经验材料.doc", Content.DOCX),
    ],
)
def test_a_word_name_without_word_content_is_invalid_document(name: str, content: Content) -> None:
    _documents, problems = check_documents(complete_set(experience=member(name, content)), DEFAULT_ROLES)
    assert [(p.code, p.role) for p in problems] == [(Code.INVALID_DOCUMENT, "experience")]
    assert name in (problems[0].detail or "")


def test_a_genuine_legacy_doc_satisfies_its_role() -> None:
    _documents, problems = check_documents(complete_set(proof=member("证明材料.doc", Content.DOC)), DEFAULT_ROLES)
    assert problems == []


def test_a_pdf_scan_beside_a_genuine_docx_is_allowed_and_both_are_listed() -> None:
    scan = member("申报书（盖章扫描件）.pdf", Content.PDF, size=442)
    members = [*complete_set(), scan]
    documents, problems = check_documents(members, DEFAULT_ROLES)
    assert problems == []
    forms = [d for d in documents if d.role == "application_form"]
    assert {(d.name, d.is_word) for d in forms} == {("申报书.docx", True), ("申报书（盖章扫描件）.pdf", False)}
    assert Document("application_form", scan.name, 442, scan.sha256, False) in documents


def test_one_genuine_docx_satisfies_a_role_even_beside_a_broken_one() -> None:
    broken = member("证明材料（旧）.docx", Content.OTHER)
    _documents, problems = check_documents([*complete_set(), broken], DEFAULT_ROLES)
    assert problems == []


def test_a_file_named_for_two_roles_is_listed_under_both() -> None:
    both = member("申报书及证明材料.docx")
    documents, problems = check_documents([both, member("典型经验材料.docx")], DEFAULT_ROLES)
    assert problems == []
    assert {d.role for d in documents if d.name == both.name} == {"application_form", "proof"}


def test_every_role_gets_its_own_problem_in_one_pass() -> None:
    members = [member("申报书.pdf", Content.PDF), member("典型经验材料.docx", Content.OTHER)]
    _documents, problems = check_documents(members, DEFAULT_ROLES)
    assert [(p.code, p.role) for p in problems] == [
        (Code.NOT_WORD_DOCUMENT, "application_form"),
        (Code.INVALID_DOCUMENT, "experience"),
        (Code.MISSING_DOCUMENT, "proof"),
    ]


def test_custom_roles_use_their_own_keywords_and_formats() -> None:
    roles = (
        Role("budget", "经费预算表", ("预算",), ("xlsx", "xls")),
        Role("summary", "项目摘要", ("摘要",), ("pdf",)),
        Role("form", "申报书", ("申报书",)),
    )
    members = [
        member("项目预算.xlsx", Content.ZIP),
        member("项目摘要.docx", Content.DOCX),
    ]
    documents, problems = check_documents(members, roles)
    assert [(p.code, p.role) for p in problems] == [
        (Code.NOT_WORD_DOCUMENT, "summary"),
        (Code.MISSING_DOCUMENT, "form"),
    ]
    assert {(d.role, d.name) for d in documents} == {("budget", "项目预算.xlsx"), ("summary", "项目摘要.docx")}


def test_a_custom_role_accepting_only_docx_refuses_a_doc() -> None:
    roles = (Role("form", "申报书", ("申报书",), ("docx",)),)
    _documents, problems = check_documents([member("申报书.doc", Content.DOC)], roles)
    assert [(p.code, p.role) for p in problems] == [(Code.NOT_WORD_DOCUMENT, "form")]


def test_extension_case_does_not_matter() -> None:
    _documents, problems = check_documents(complete_set(proof=member("证明材料.DOCX")), DEFAULT_ROLES)
    assert problems == []


# -- sniff -------------------------------------------------------------------------------------------------


def write_zip(path: Path, parts: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


MINIMAL_DOCX = {
    "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
    "_rels/.rels": '<?xml version="1.0"?><Relationships/>',
    "word/document.xml": '<?xml version="1.0"?><w:document xmlns:w="urn:w"><w:body/></w:document>',
}


def test_sniff_recognises_a_minimal_docx(tmp_path: Path) -> None:
    assert sniff(str(write_zip(tmp_path / "a.docx", MINIMAL_DOCX))) is Content.DOCX


def test_sniff_calls_a_zip_without_word_document_xml_a_zip(tmp_path: Path) -> None:
    parts = {k: v for k, v in MINIMAL_DOCX.items() if k != "word/document.xml"}
    assert sniff(str(write_zip(tmp_path / "a.docx", parts))) is Content.ZIP


def test_sniff_calls_a_zip_without_content_types_a_zip(tmp_path: Path) -> None:
    parts = {k: v for k, v in MINIMAL_DOCX.items() if k != "[Content_Types].xml"}
    assert sniff(str(write_zip(tmp_path / "a.docx", parts))) is Content.ZIP


def test_sniff_recognises_a_genuine_word_97_doc(tmp_path: Path) -> None:
    path = tmp_path / "sample.doc"
    path.write_bytes((FIXTURES / "src" / "sample.doc").read_bytes())
    assert sniff(str(path)) is Content.DOC


def test_sniff_recognises_a_pdf_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "scan.docx"
    path.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n")
    assert sniff(str(path)) is Content.PDF


@pytest.mark.parametrize(
    "data",
    [
        "这是一份纯文本，不是 Word 文档。".encode(),
        b"",
        b"PK\x03\x04 but not really a zip file at all",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
        b"\xd0\xcf\x11\xe0",
    ],
    ids=["text", "empty", "pk-prefix-garbage", "ole-magic-garbage", "half-ole-magic"],
)
def test_sniff_calls_anything_else_other_and_never_raises(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.docx"
    path.write_bytes(data)
    assert sniff(str(path)) is Content.OTHER
