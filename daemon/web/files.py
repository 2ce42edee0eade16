"""Downloads: a document or a bureau's file from the blob store, by its row's id (never by a path), the day's
summary workbook, and the reviewers' export tree as a zip. Each is sent as an attachment and logged."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO

from flask import Blueprint, Response, abort, request, send_file
from sqlmodel import Session

from ..app import audit
from ..app.queries import bureau_file, document_file, ledger
from ..app.views import StoredFile
from ..explain import SHANGHAI
from ..staff import export, workbook
from ..storage.models import now
from .console import console
from .security import user

blueprint = Blueprint("files", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@blueprint.get("/documents/<int:document_id>")
def document(document_id: int) -> Response:
    with Session(console().runtime.engine) as session:
        found = document_file(session, document_id)
    return _stored(found)


@blueprint.get("/bureau-files/<int:file_id>")
def bureau(file_id: int) -> Response:
    with Session(console().runtime.engine) as session:
        found = bureau_file(session, file_id)
    return _stored(found)


def _stored(found: StoredFile | None) -> Response:
    blobs = console().runtime.blobs
    if found is None or not blobs.has(found.sha256):
        abort(404, description="没有这个文件。")
    _log(f"{found.name}", message_id=found.message_id, enterprise_id=found.enterprise_id)
    return send_file(
        blobs.path(found.sha256), as_attachment=True, download_name=found.name, mimetype="application/octet-stream"
    )


@blueprint.get("/downloads/workbook")
def summary_workbook() -> Response:
    """Today's summary workbook: the bytes the digest attaches."""
    runtime = console().runtime
    with Session(runtime.engine) as session:
        data = workbook.build(ledger(session, runtime.rules), runtime.rules)
    name = workbook.filename(now().astimezone(SHANGHAI).date())
    _log(name)
    return send_file(io.BytesIO(data), as_attachment=True, download_name=name, mimetype=XLSX)


@blueprint.get("/downloads/export.zip")
def export_tree() -> Response:
    """The export tree (`shenbao export`) built in a temporary folder, zipped into an unnamed temporary file
    (gone once sent), streamed."""
    runtime = console().runtime
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it once sent
    try:
        with tempfile.TemporaryDirectory(prefix="shenbao-export-") as folder:
            with Session(runtime.engine) as session:
                export.export(session, runtime.blobs, runtime.rules, Path(folder), lambda *_: None)
            _zip(Path(folder), archive)
        archive.seek(0)
    except BaseException:
        archive.close()
        raise
    name = f"申报材料-{now().astimezone(SHANGHAI):%Y%m%d}.zip"
    _log(name)
    return send_file(archive, as_attachment=True, download_name=name, mimetype="application/zip")


def _zip(folder: Path, target: IO[bytes]) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(folder).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as source, bundle.open(info, "w") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)


def _log(detail: str, *, message_id: int | None = None, enterprise_id: int | None = None) -> None:
    with Session(console().runtime.engine) as session:
        audit.record(
            session,
            user().name,
            "download",
            now(),
            message_id=message_id,
            enterprise_id=enterprise_id,
            detail=detail,
            address=request.remote_addr or "",
        )
        session.commit()
