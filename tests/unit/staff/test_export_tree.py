"""The reviewers' folder tree (issue 4, point 6: `shenbao export`), from a real SQLite file and blob store.

DIR/<评选>/<市>/<企业全称>/ holds the latest accepted version's documents under their names in the archive, plus
汇总表.xlsx and manifest.sha256 listing every file with its SHA-256; nothing else. Enterprises without an
accepted version are reported and get no folder; names Windows refuses are made safe.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, RAR, ROSTER_ROWS, SHANGHAI, rar, submission
from hostile_mail import with_subject
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.app.actions import decide
from daemon.app.views import reference
from daemon.campaign import DEFAULT_CALL, Bureau, Call, CallRules
from daemon.domain import RosterEntry
from daemon.render import Renderer
from daemon.service.recorder import Recorder
from daemon.service.replies import ReplyPlanner
from daemon.service.roster_sync import import_roster
from daemon.staff import export
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database
from daemon.storage.models import DocumentRecord, MessageRecord
from daemon.text import file_name

CALL = "2022年全省质量标杆"
RULES = CallRules(calls=(Call(name=CALL, deadline=datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)),))
WINDOWS_REFUSES = re.compile(r'[\x00-\x1f<>:"/\\|?*]')

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
ZIBO = "淄博鲁中陶瓷有限责任公司"
ODD_CITY = '烟台/芝罘:开发区\\"东"'
ODD_NAME = "烟台蓝海:船舶*装备?<有限>|公司"
ROWS = [
    *ROSTER_ROWS,
    ("淄博", ZIBO, "陶瓷窑炉智能质量管控", "赵工", "13863100005", "luzhong_cc@126.com"),
    (ODD_CITY, ODD_NAME, "船舶焊接质量控制", "吴工", "13863100004", "office@lanhai-marine.cn"),
]
CONTACT = {row[1]: row[5] for row in ROWS}


def documents_in(fixture: str) -> dict[str, bytes]:
    """The files inside a committed RAR fixture, read with rarfile, independently of shenbao."""
    import rarfile

    with rarfile.RarFile(str(RAR / fixture)) as opened:
        return {Path(info.filename).name: opened.read(info) for info in opened.infolist() if info.is_file()}


def package(name: str, fixture: str = "valid.rar", body: str = "附件为申报材料") -> bytes:
    return submission(name, [(f"{name}.rar", rar(fixture))], sender=CONTACT[name], body=body)


@dataclass(frozen=True)
class Site:
    engine: Engine
    blobs: BlobStore
    recorder: Recorder
    ids: dict[str, list[int]]


def site_in(folder: Path) -> Site:
    """济南 accepted twice (valid.rar, then doc_format.rar), 青岛 once, 临沂 rejected, 淄博 silent, and the
    enterprise with the awkward city and name accepted once."""
    engine = open_database(f"sqlite:///{folder / 'shenbao.db'}")
    with Session(engine) as session:
        import_roster(session, [RosterEntry(row[1], row[0], *row[2:]) for row in ROWS], DEFAULT_CALL)
        session.commit()
    blobs = BlobStore(folder / "files")
    recorder = Recorder(engine, blobs, RULES)
    ids: dict[str, list[int]] = {}
    for name, fixture, body in [
        (JINAN, "valid.rar", "第一版"),
        (QINGDAO, "valid.rar", "附件为申报材料"),
        (LINYI, "missing_proof.rar", "附件为申报材料"),
        (ODD_NAME, "valid.rar", "附件为申报材料"),
        (JINAN, "doc_format.rar", "第二版，以此为准"),
    ]:
        ids.setdefault(name, []).append(recorder.record(package(name, fixture, body), f"{len(ids)}.eml").record_id)
    return Site(engine, blobs, recorder, ids)


def run_export(site: Site, folder: Path) -> export.Exported:
    with Session(site.engine) as session:
        return export.export(session, site.blobs, RULES, folder, lambda done, total, name: None)


@dataclass(frozen=True)
class Tree:
    root: Path
    result: export.Exported
    progress: list[tuple[int, int, str]]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    folder = tmp_path_factory.mktemp("export")
    site = site_in(folder)
    root = folder / "out"
    progress: list[tuple[int, int, str]] = []
    with Session(site.engine) as session:
        result = export.export(session, site.blobs, RULES, root, lambda *step: progress.append(step))
    return Tree(root, result, progress)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def manifest(root: Path) -> dict[str, str]:
    """path -> SHA-256, parsed as `sha256sum -c` reads it."""
    found: dict[str, str] = {}
    for line in (root / export.MANIFEST).read_text(encoding="utf-8").splitlines():
        matched = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        assert matched, f"not a sha256sum line: {line!r}"
        assert matched.group(2) not in found, f"listed twice: {matched.group(2)}"
        found[matched.group(2)] = matched.group(1)
    return found


def enterprise_folder(root: Path, name: str) -> Path:
    [folder] = [p for p in root.glob("*/*/*") if p.is_dir() and p.name == file_name(name)]
    return folder


# -- the tree -----------------------------------------------------------------------------------------------


def test_each_accepted_enterprise_has_its_call_city_and_name_folder_with_the_documents_of_the_archive(
    tree: Tree,
) -> None:
    assert [p.name for p in tree.root.iterdir() if p.is_dir()] == [CALL]
    qingdao = tree.root / CALL / "青岛" / QINGDAO

    assert qingdao.is_dir()
    expected = documents_in("valid.rar")
    assert sorted(p.name for p in qingdao.iterdir()) == sorted(expected)
    assert {p.name: p.read_bytes() for p in qingdao.iterdir()} == expected


def test_an_enterprise_with_two_accepted_versions_exports_the_later_one(tree: Tree) -> None:
    jinan = tree.root / CALL / "济南" / JINAN

    expected = documents_in("doc_format.rar")
    assert sorted(p.name for p in jinan.iterdir()) == ["典型经验材料.doc", "申报书.doc", "证明材料.doc"]
    assert {p.name: p.read_bytes() for p in jinan.iterdir()} == expected


def test_the_manifest_lists_every_file_with_a_sha256_that_matches_it_and_nothing_else_is_there(tree: Tree) -> None:
    listed = manifest(tree.root)

    assert set(listed) == files_under(tree.root) - {export.MANIFEST}
    for path, digest in listed.items():
        assert hashlib.sha256((tree.root / path).read_bytes()).hexdigest() == digest, path
    assert export.WORKBOOK in listed
    assert export.NAMES in listed
    assert len(listed) == tree.result.files == 3 * 3 + 2
    # every directory is the call, a city in it or an enterprise in that: three levels, nothing stray
    assert {len(Path(path).parts) for path in listed} == {1, 4}
    assert {Path(path).parts[0] for path in listed if len(Path(path).parts) > 1} == {CALL}
    assert {p.name for p in tree.root.iterdir() if p.is_file()} == {export.WORKBOOK, export.MANIFEST, export.NAMES}


def test_sha256sum_accepts_the_manifest(tree: Tree) -> None:
    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("coreutils' sha256sum is not installed")

    checked = subprocess.run(
        [tool, "--check", "--strict", export.MANIFEST], cwd=tree.root, capture_output=True, text=True, check=False
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == tree.result.files


def test_the_summary_workbook_in_the_tree_has_a_row_per_roster_enterprise(tree: Tree) -> None:
    book = load_workbook(io.BytesIO((tree.root / export.WORKBOOK).read_bytes()))
    assert book.sheetnames == [CALL, "全部来信"]
    sheet = book[CALL]

    header = [cell.value for cell in sheet[1]]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert [row["企业名称"] for row in rows] == [row[1] for row in ROWS]
    assert [row["状态"] for row in rows] == ["已受理", "已受理", "已退回", "未提交", "已受理"]
    assert [row["受理版本数"] for row in rows] == [2, 1, 0, 0, 1]


def test_enterprises_without_an_accepted_version_are_reported_missing_and_get_no_folder(tree: Tree) -> None:
    assert tree.result.missing == [LINYI, ZIBO]
    assert tree.result.enterprises == 3
    folders = {p.name for p in tree.root.glob("*/*/*") if p.is_dir()}
    assert folders == {JINAN, QINGDAO, file_name(ODD_NAME)}
    assert not (tree.root / CALL / "临沂").exists()
    assert not (tree.root / CALL / "淄博").exists()
    assert [(done, total) for done, total, _ in tree.progress] == [(n, len(ROWS)) for n in range(1, len(ROWS) + 1)]


def test_a_city_and_a_name_windows_refuses_are_made_safe(tree: Tree) -> None:
    odd = enterprise_folder(tree.root, ODD_NAME)

    relative = odd.relative_to(tree.root)
    assert len(relative.parts) == 3
    for part in relative.parts:
        assert not WINDOWS_REFUSES.search(part), part
        assert part == part.strip(" .")
    assert relative.parts == (CALL, "烟台_芝罘_开发区__东_", "烟台蓝海_船舶_装备__有限__公司")
    assert {p.name: p.read_bytes() for p in odd.iterdir()} == documents_in("valid.rar")
    assert all(not WINDOWS_REFUSES.search(part) for path in manifest(tree.root) for part in Path(path).parts)


# -- what counts is a person's decision --------------------------------------------------------------------


def test_a_version_a_person_rejected_is_not_exported(tmp_path: Path) -> None:
    site = site_in(tmp_path)
    planner = ReplyPlanner(Renderer("科技处 <kejichu2019@shandong.cn>"), RULES, "质量标杆", 10)
    moment = datetime(2022, 7, 1, 9, 0, tzinfo=SHANGHAI)
    with Session(site.engine) as session:
        for record_id, note in [(site.ids[JINAN][-1], "第二版缺少公章"), (site.ids[QINGDAO][0], "非本企业材料")]:
            decide(
                session, planner, site.recorder, reference(record_id), accept=False, note=note, actor="", moment=moment
            )
        session.commit()

    result = run_export(site, tmp_path / "out")

    jinan = tmp_path / "out" / CALL / "济南" / JINAN
    assert {p.name: p.read_bytes() for p in jinan.iterdir()} == documents_in("valid.rar")  # back to version 1
    assert result.missing == [QINGDAO, LINYI, ZIBO]
    assert not (tmp_path / "out" / CALL / "青岛").exists()


def test_a_call_without_a_name_is_exported_under_its_code(tmp_path: Path) -> None:
    unnamed = CallRules(calls=(Call(code="benchmark"),))
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    with Session(engine) as session:
        import_roster(session, [RosterEntry(QINGDAO, "青岛")], "benchmark")
        session.commit()
    blobs = BlobStore(tmp_path / "files")
    Recorder(engine, blobs, unnamed).record(package(QINGDAO), "1.eml")

    with Session(engine) as session:
        result = export.export(session, blobs, unnamed, tmp_path / "out", lambda *step: None)

    assert (result.enterprises, result.missing) == (1, [])
    qingdao = tmp_path / "out" / "benchmark" / "青岛" / QINGDAO
    assert {p.name: p.read_bytes() for p in qingdao.iterdir()} == documents_in("valid.rar")


def test_a_bureaus_letter_and_table_go_to_its_citys_folder_beside_its_enterprises(tmp_path: Path) -> None:
    bureaus = FIXTURES / "bureaus"
    rules = CallRules(
        calls=(Call("province", CALL, "附件3", datetime(2022, 6, 26, 23, 59, 59, tzinfo=SHANGHAI), own_emails=False),),
        bureaus=(Bureau("青岛", ("qdeit.qingdao.gov.cn",)),),
    )
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    blobs = BlobStore(tmp_path / "files")
    recorder = Recorder(engine, blobs, rules)
    for name in ("01-three-emails-1-letter-table.eml", "02-three-emails-2-archives.eml"):
        recorder.record((bureaus / "messages" / name).read_bytes(), name)

    with Session(engine) as session:
        result = export.export(session, blobs, rules, tmp_path / "out", lambda *step: None)

    qingdao = tmp_path / "out" / CALL / "青岛"
    letter = "青岛市工业和信息化局关于推荐2022年全省质量标杆的函.pdf"
    table = "附件3-2022年全省质量标杆申报汇总表（青岛市）.xlsx"
    assert (qingdao / letter).read_bytes() == (bureaus / "letters" / letter).read_bytes()
    assert (qingdao / table).read_bytes() == (bureaus / "tables" / table).read_bytes()
    assert sorted(p.name for p in qingdao.iterdir() if p.is_dir()) == sorted(
        ["青岛即墨纺机装备有限公司", "青岛黄岛港航物流科技有限公司"]
    )
    assert result.missing == ["青岛崂山矿泉饮品有限公司", "青岛胶东数控刀具有限公司"]
    assert f"{CALL}/青岛/{letter}" in manifest(tmp_path / "out")


# -- names and subjects from mail (issue 8, finding 5) -------------------------------------------------------


def test_a_stored_file_damaged_since_it_arrived_fails_the_manifests_check(tmp_path: Path) -> None:
    """The manifest vouches for what was received, not for what the disk holds now."""
    site = site_in(tmp_path)
    with Session(site.engine) as session:
        form = session.exec(select(DocumentRecord).where(DocumentRecord.message_id == site.ids[QINGDAO][0])).first()
    assert form is not None
    stored = site.blobs.path(form.sha256)
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"damaged")

    run_export(site, tmp_path / "out")

    listed = manifest(tmp_path / "out")
    copies = {path for path, digest in listed.items() if digest == form.sha256}  # the same form, several senders
    assert f"{CALL}/青岛/{QINGDAO}/{form.name}" in copies
    for path in copies:
        assert hashlib.sha256((tmp_path / "out" / path).read_bytes()).hexdigest() != form.sha256
    tool = shutil.which("sha256sum")
    if tool is not None:
        checked = subprocess.run(
            [tool, "--check", "--quiet", export.MANIFEST], cwd=tmp_path / "out", capture_output=True
        )
        assert checked.returncode != 0
        assert set(checked.stdout.decode().splitlines()) == {f"{path}: FAILED" for path in copies}


def names_file(root: Path) -> dict[str, list[str]]:
    """Exported path -> [call, city, enterprise, name in the archive], as the names file lists them."""
    header, *rows = [line.split("\t") for line in (root / export.NAMES).read_text(encoding="utf-8").splitlines()]
    assert tuple(header) == export.NAMES_HEADER
    return {row[0]: row[1:] for row in rows}


def check_with_sha256sum(root: Path) -> None:
    tool = shutil.which("sha256sum")
    if tool is not None:
        checked = subprocess.run([tool, "--check", "--strict", export.MANIFEST], cwd=root, capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def rename_documents(site: Site, message_id: int, names: dict[str, str]) -> None:
    """Give documents on record the names a sender's archive could have held (the database keeps any)."""
    with Session(site.engine) as session:
        for document in session.exec(select(DocumentRecord).where(DocumentRecord.message_id == message_id)):
            if document.name in names:
                document.name = names[document.name]
                session.add(document)
        session.commit()


def test_the_names_file_maps_every_exported_document_to_its_city_enterprise_and_name_in_the_archive(
    tree: Tree,
) -> None:
    listed = names_file(tree.root)

    assert set(listed) == set(manifest(tree.root)) - {export.WORKBOOK, export.NAMES}
    assert listed[f"{CALL}/青岛/{QINGDAO}/申报书.docx"][:4] == [CALL, "青岛", QINGDAO, "申报书.docx"]
    odd = enterprise_folder(tree.root, ODD_NAME).relative_to(tree.root).as_posix()
    assert listed[f"{odd}/证明材料.docx"][:4] == [CALL, ODD_CITY, ODD_NAME, "证明材料.docx"]


def test_the_names_file_gives_each_documents_title_length_pictures_and_seal(tree: Tree) -> None:
    header = list(export.NAMES_HEADER[1:])
    form = dict(zip(header, names_file(tree.root)[f"{CALL}/青岛/{QINGDAO}/申报书.docx"], strict=True))
    proof = dict(zip(header, names_file(tree.root)[f"{CALL}/青岛/{QINGDAO}/证明材料.docx"], strict=True))

    assert (form["图片数"], form["公章"]) == ("1", "已识别到公章")
    assert int(form["字数"]) > 0 and form["页数"] == ""
    assert (proof["图片数"], proof["公章"]) == ("0", "")
    assert form["质量标杆名称"] == proof["质量标杆名称"] != ""


LONG = "证明材料" + "（附件）" * 400
"""4,812 bytes of UTF-8: the name of a file in a sender's archive, which no file system takes."""
SUBJECTS = {"vertical tab": "济南明湖\x0b软件科技有限公司", "NUL": "济南明湖软件\x00科技有限公司"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree exported after 青岛's documents were renamed to two 4,800-byte names the same in their first
    255 bytes, the odd enterprise's 申报书 to a name with control characters, and 济南 sent two messages
    whose subjects hold a vertical tab and a NUL."""
    folder = tmp_path_factory.mktemp("hostile")
    site = site_in(folder)
    rename_documents(site, site.ids[QINGDAO][0], {"证明材料.docx": f"{LONG}甲.docx", "申报书.docx": f"{LONG}乙.docx"})
    rename_documents(site, site.ids[ODD_NAME][0], {"申报书.docx": "申报书\x1b[31m\x00\u202e.docx"})
    recorder = Recorder(site.engine, site.blobs, RULES)
    for subject in SUBJECTS.values():
        record_id = recorder.record(with_subject(subject, sender=CONTACT[JINAN]), "control.eml").record_id
        with Session(site.engine) as session:
            row = session.get(MessageRecord, record_id)
            assert row is not None
            assert row.subject == subject  # the database keeps the original
    result = run_export(site, folder / "out")
    assert result.enterprises == 3  # ENAMETOOLONG or IllegalCharacterError stopped the export of every one
    return folder / "out"


def test_a_4800_byte_member_name_is_exported_under_a_name_that_fits_and_listed_in_full(hostile: Path) -> None:
    qingdao = hostile / CALL / "青岛" / QINGDAO
    exported = {p.name: p.read_bytes() for p in qingdao.iterdir()}
    assert all(len(name.encode()) <= 255 for name in exported)
    first, second = sorted(name for name in exported if name.startswith("证明材料"))
    assert second.endswith("（2）.docx")  # the same once cut: two files all the same
    assert first.endswith(".docx")
    listed = names_file(hostile)
    originals = {listed[f"{CALL}/青岛/{QINGDAO}/{name}"][3]: exported[name] for name in (first, second)}
    expected = documents_in("valid.rar")
    assert originals == {f"{LONG}甲.docx": expected["证明材料.docx"], f"{LONG}乙.docx": expected["申报书.docx"]}
    check_with_sha256sum(hostile)


def test_control_characters_in_member_names_become_underscores_and_stay_in_the_names_file(hostile: Path) -> None:
    odd = enterprise_folder(hostile, ODD_NAME)
    assert "申报书_[31m__.docx" in {p.name for p in odd.iterdir()}
    row = names_file(hostile)[f"{odd.relative_to(hostile).as_posix()}/申报书_[31m__.docx"]
    assert row[3] == "申报书\\x1b[31m\\x00\\u202e.docx"


def test_subjects_with_control_characters_are_shown_escaped_in_the_workbook(hostile: Path) -> None:
    log = load_workbook(hostile / export.WORKBOOK)["全部来信"]
    subjects = [row[3] for row in log.iter_rows(min_row=2, values_only=True)]
    assert subjects[-2:] == ["济南明湖\\x0b软件科技有限公司", "济南明湖软件\\x00科技有限公司"]


def test_an_enterprise_with_a_4800_byte_name_gets_a_folder_that_fits(tmp_path: Path) -> None:
    long = "山东" + "很长很长的企业名称" * 180 + "有限公司"
    assert len(long.encode()) > 4800
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    with Session(engine) as session:
        import_roster(
            session, [RosterEntry(long, "济南", "长名称", "钱工", "13863100009", "long@example.cn")], DEFAULT_CALL
        )
        session.commit()
    blobs = BlobStore(tmp_path / "files")
    recorder = Recorder(engine, blobs, RULES)
    raw = submission(long, [(f"{long}.rar", rar("valid.rar"))], sender="long@example.cn")
    assert recorder.record(raw, "long.eml").outcome.value == "accepted"

    with Session(engine) as session:
        result = export.export(session, blobs, RULES, tmp_path / "out", lambda done, total, name: None)

    assert result.enterprises == 1
    [folder] = (tmp_path / "out" / CALL / "济南").iterdir()
    assert len(folder.name.encode()) <= 255
    assert long.startswith(folder.name)
    assert {row[2] for row in names_file(tmp_path / "out").values()} == {long}
    check_with_sha256sum(tmp_path / "out")
