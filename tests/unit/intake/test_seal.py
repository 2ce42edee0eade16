"""Finding the company seal (公章) on a form's pictures, and not on what only looks like one (issue 11)."""

from __future__ import annotations

import io
import time

import pytest
from conftest import FIXTURES
from PIL import Image

from daemon.domain import SealStatus
from daemon.intake.seal import Ring, SealResult, find_seal, picture_score
from daemon.intake.word import Picture, read_word

SEALS = FIXTURES / "seals"
STAMPED = ["scan-page", "e-seal", "grey-scan", "photo"]
LOOK_ALIKES = ["red-logo", "chart", "photo-product", "quality-logo", "signature"]


def pictures_of(name: str) -> tuple[Picture, ...]:
    return read_word(SEALS / f"{name}.docx").pictures


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", STAMPED)
def test_a_stamped_form_is_found_on_the_picture_with_the_seal(kind: str) -> None:
    result = find_seal(pictures_of(kind))
    assert result == SealResult(SealStatus.FOUND, "word/media/image1." + ("png" if kind == "e-seal" else "jpg"), 1.0)


@pytest.mark.parametrize("kind", LOOK_ALIKES)
def test_a_picture_that_only_looks_like_a_seal_is_not_one(kind: str) -> None:
    result = find_seal(pictures_of(kind))
    assert result.status == SealStatus.NOT_FOUND
    assert result.picture == "word/media/image1." + ("png" if kind == "red-logo" else "jpg")
    assert result.score < 0.2


def test_the_seal_is_reported_on_its_own_picture_among_others() -> None:
    pictures = pictures_of("chart") + pictures_of("photo-product") + pictures_of("e-seal")
    renamed = [Picture(f"p{i}", p.data, p.format, p.width, p.height) for i, p in enumerate(pictures)]
    assert find_seal(renamed).picture == "p2"


def test_a_form_without_pictures_has_no_seal() -> None:
    assert find_seal(pictures_of("none")) == SealResult(SealStatus.NOT_FOUND, None, 0.0)


def test_a_form_whose_pictures_cannot_be_decoded_is_unreadable() -> None:
    broken = Picture("word/media/image1.jpg", b"\xff\xd8\xff\xe0broken", "JPEG", 10, 10)
    assert find_seal([broken]) == SealResult(SealStatus.UNREADABLE, None, 0.0)
    assert picture_score(b"not a picture") is None


def test_one_readable_picture_is_enough_for_a_verdict() -> None:
    broken = Picture("word/media/image1.jpg", b"broken", "JPEG", 10, 10)
    assert find_seal([broken, *pictures_of("red-logo")]).status == SealStatus.NOT_FOUND


def test_blank_and_tiny_pictures_have_no_seal() -> None:
    assert picture_score(png(Image.new("RGB", (600, 800), "white"))) == 0.0
    assert picture_score(png(Image.new("RGB", (3, 3), "red"))) == 0.0


def test_a_transparent_seal_counts_over_white_not_over_black() -> None:
    (seal,) = pictures_of("e-seal")
    with Image.open(io.BytesIO(seal.data)) as image:
        assert image.mode == "RGBA"
    assert picture_score(seal.data) == 1.0


def test_a_picture_over_the_pixel_cap_is_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("daemon.intake.seal.MAX_PIXELS", 100)
    assert picture_score(pictures_of("scan-page")[0].data) is None


def test_a_page_takes_well_under_a_second() -> None:
    data = pictures_of("grey-scan")[0].data
    start = time.perf_counter()
    picture_score(data)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("ring", "seal"),
    [
        (Ring(coverage=1.0, thickness=0.06, outside=0.0, band=0.6, fill=0.2, spokes=0, roundness=0.98), True),
        (Ring(coverage=1.0, thickness=0.16, outside=0.0, band=0.6, fill=0.3, spokes=0, roundness=0.99), False),
        (Ring(coverage=1.0, thickness=0.08, outside=0.0, band=0.2, fill=0.2, spokes=4, roundness=0.9), False),
        (Ring(coverage=1.0, thickness=1.0, outside=0.0, band=1.0, fill=0.9, spokes=0, roundness=1.0), False),
        (Ring(coverage=0.55, thickness=0.05, outside=0.2, band=0.8, fill=0.3, spokes=0, roundness=0.95), False),
        (Ring(coverage=0.8, thickness=0.04, outside=0.15, band=0.9, fill=0.2, spokes=0, roundness=0.9), False),
        (Ring(coverage=0.8, thickness=0.07, outside=0.05, band=0.4, fill=0.2, spokes=0, roundness=0.7), True),
    ],
    ids=[
        "seal",
        "thick ring of a quality mark",
        "valve wheel",
        "filled disc",
        "circle through text",
        "circle through a dense table",
        "worn oval seal in perspective",
    ],
)
def test_each_look_alike_fails_a_ring_condition_a_seal_meets(ring: Ring, seal: bool) -> None:
    assert (ring.score >= 0.5) is seal
