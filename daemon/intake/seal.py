"""Is there a company seal (公章) on any picture of the form?

A seal is a thin ring of red ink (grey in a black-and-white scan), 38–45 mm across with a line of 1–1.5 mm,
holding the company's name along its arc and usually a star in the middle. The pictures that look most like
one are red logos (filled discs, squares, red names), 红头 headings and rules, charts (red bars, pies,
donut rings), product photos (red machines, valve wheels: a thin ring with spokes), quality marks (a thick
ring around a big Q), and scans of text. What tells them apart is measured in the ring's own frame:

1. Ink: red hue of any strength, from dark red to faded pink, after the paper's tone, the light's colour
   cast and uneven lighting are divided out; in a picture without colour, dark grey ink.
2. Candidates: Hough circles on the ink (at half size), and ellipses fitted to the outlines of the largest
   blobs of ink (an oval seal, which Hough's circles miss).
3. Each candidate's ring is fitted as an ellipse through the ink along it, in a band narrowing round it
   (a photo's perspective squashes a round seal; a signature or a line across the ring must not pull the
   fit), mapped back to a circle and unwrapped into polar coordinates. A seal's ring is thin (its
   line under a ninth of its radius; a quality mark's is a sixth or more), goes round most of the
   circumference, has little ink just outside it, and holds characters spread around the band inside it,
   while the disc is not filled and no spokes run from the centre to the ring (a valve wheel's do). Each
   condition scores 0 to 1 with a margin around its limit, and the ring's score is their product.

Large pictures are scaled down first, so each takes a bounded time (well under a second).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ..domain import SealStatus
from .word import WORK_SIDE, Picture

MAX_PIXELS = 60_000_000
_CANON = 64
"""Radius of the ring once mapped to a circle, in pixels."""
_ANGLES = 180
_THRESHOLD = 0.5
_CANDIDATES = 40
_OUTLINES = 10
_TRIES = 40

Mask = NDArray[np.uint8]
Channel = NDArray[np.float32]
Ellipse = tuple[tuple[float, float], tuple[float, float], float]
"""Centre, full axes along its own x and y, and the rotation in degrees, as OpenCV gives it."""


@dataclass(frozen=True)
class SealResult:
    status: SealStatus
    picture: str | None
    """The picture holding the seal (the best candidate when none was found)."""
    score: float
    """How seal-like the best ring is, 0 to 1; `found` from 0.5."""


@dataclass(frozen=True)
class Ring:
    """What the polar view of one candidate shows, the ring's radius being 1."""

    coverage: float
    """Share of the circumference with ink on the ring."""
    thickness: float
    """The ring's line width over its radius."""
    outside: float
    """Share of the circumference with ink just outside the ring."""
    band: float
    """Share of directions with ink in the band inside the ring, where the characters are."""
    fill: float
    """Share of the disc inside the ring covered with ink."""
    spokes: int
    """Directions inked nearly all the way from near the centre to the ring, as a valve wheel's spokes are;
    a seal's star and characters leave gaps."""
    roundness: float
    """Minor over major axis of the fitted ellipse."""

    @property
    def contrast(self) -> float:
        """How the ring stands out: a circle drawn through a page of text finds ink on it and beside it alike."""
        return self.coverage - 2 * self.outside

    @property
    def score(self) -> float:
        """Each condition scores 0 to 1 with a margin around its limit; the product is the ring's score."""
        return (
            _above(self.coverage, 0.7, 0.1)
            * _above(self.contrast, 0.56, 0.1)
            * _below(self.thickness, 0.11, 0.02)
            * _below(self.outside, 0.2, 0.1)
            * _above(self.band, 0.25, 0.1)
            * _below(self.fill, 0.35, 0.1)
            * _below(self.spokes, 2.5, 1)
            * _above(self.roundness, 0.6, 0.1)
        )


def find_seal(pictures: Iterable[Picture]) -> SealResult:
    """The document's verdict: the first picture with a seal, else the best score seen; `unreadable` when
    there are pictures and none could be decoded (a document without pictures has no seal)."""
    best: SealResult | None = None
    undecodable = False
    for picture in pictures:
        score = picture_score(picture.data)
        if score is None:
            undecodable = True
        elif score >= _THRESHOLD:
            return SealResult(SealStatus.FOUND, picture.name, score)
        elif best is None or score > best.score:
            best = SealResult(SealStatus.NOT_FOUND, picture.name, score)
    if best is None:
        return SealResult(SealStatus.UNREADABLE if undecodable else SealStatus.NOT_FOUND, None, 0.0)
    return best


def picture_score(data: bytes) -> float | None:
    """The best candidate ring's score in one picture, or None when it cannot be decoded."""
    rgb = _load(data)
    if rgb is None:
        return None
    flat = _flatten(rgb)
    hsv = np.asarray(cv2.cvtColor(flat, cv2.COLOR_RGB2HSV), np.float32)  # hue 0-360, saturation and value 0-1
    hue, saturation, value = (np.asarray(channel, np.float32) for channel in cv2.split(hsv))
    inks = [Ink(_red_strength(hue, saturation, value), strong=0.16, faint=0.08, wheels=True)]
    if _achromatic(saturation, value):
        inks.append(Ink(_grey_strength(flat), strong=0.28, faint=0.15, text=0.6))
    return max(_best_ring(ink) for ink in inks)


def _load(data: bytes) -> NDArray[np.uint8] | None:
    try:
        with Image.open(io.BytesIO(data)) as file:
            if file.width * file.height > MAX_PIXELS:
                return None
            file.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG decodes at 1/2, 1/4 or 1/8 size: faster
            image = file.convert("RGBA") if file.mode in ("RGBA", "LA", "P", "PA") else file.convert("RGB")
            if image.mode == "RGBA":  # a transparent electronic seal lies on white paper
                image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    scale = WORK_SIDE / max(rgb.shape[:2])
    if scale < 1:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
    return rgb


def _flatten(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Divides each channel by the local paper colour, so paper is white under any light or cast."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    paper = cv2.GaussianBlur(cv2.dilate(small, kernel), (0, 0), 3)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    flat: NDArray[np.float32] = np.clip(rgb.astype(np.float32) / np.maximum(paper, 16), 0, 1)
    return flat


@dataclass(frozen=True)
class Ink:
    """How strongly each pixel looks like seal ink (0-255), and the levels that count as ink."""

    strength: Mask
    strong: float
    """The level of a well-inked ring, fraction of 255; a faint ring sets its own, down to `faint`."""
    faint: float
    """The level of thin characters, whose colour JPEG and scaling wash out."""
    text: float | None = None
    """In a grey scan, the level of black text: a seal's grey is usually lighter, so rings are also sought
    among the ink below it, where a page of text does not drown them."""
    wheels: bool = False
    """Whether spokes are looked for: red ink holds no black text, whose lines and underlines would cross a
    seal like spokes, and a valve wheel is a red, not a grey, look-alike."""

    def masks(self) -> tuple[Mask, Mask]:
        return _mask(self.strength >= self.strong * 255), _mask(self.strength >= self.faint * 255)

    def graded(self) -> list[Mask]:
        """Strong ink white, faint ink grey, the rest black: circles of both show in one picture; and the
        same without black text when it is told apart."""
        level = np.clip(self.strength.astype(np.float32) / (self.strong * 255), 0, 1)
        graded = (np.where(self.strength >= self.faint * 255, 0.4 + 0.6 * level, 0) * 255).astype(np.uint8)
        if self.text is None:
            return [graded]
        return [graded, np.where(self.strength < self.text * 255, graded, 0).astype(np.uint8)]


def _red_strength(hue: Channel, saturation: Channel, value: Channel) -> Mask:
    """Saturation where the hue is red (incl. pink and crimson) and the pixel not black."""
    red = ((hue <= 20) | (hue >= 320)) & (value >= 0.25)
    return (np.where(red, saturation, 0) * 255).astype(np.uint8)


def _achromatic(saturation: Channel, value: Channel) -> bool:
    """A picture without colour ink: a greyscale scan, or a colour scan of black text only."""
    return float(np.mean(saturation * value > 0.2)) < 0.002  # saturation times value: max - min


def _grey_strength(flat: NDArray[np.float32]) -> Mask:
    return ((1 - cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY)) * 255).astype(np.uint8)


def _mask(selected: NDArray[np.bool_]) -> Mask:
    return selected.astype(np.uint8) * 255


def _best_ring(ink: Ink) -> float:
    best = 0.0
    strong, faint = ink.masks()
    circles = [circle for graded in ink.graded() for circle in _circles(graded)]
    for mask in (strong, faint):  # a faded seal shows whole only in the faint mask
        guesses = itertools.chain(  # the costlier sampled guesses come last, and only when needed
            (_ring_guess(mask, x, y, r) for x, y, r in circles),
            _outlines(mask),
            (_sampled_guess(mask, x, y, r) for x, y, r in circles),
        )
        for guess in guesses:
            ellipse = _refine(mask, guess) if guess is not None else None
            if ellipse is not None:
                best = max(best, _measure(ink, ellipse).score)
            if best >= _THRESHOLD:
                return best
    return best


def _outlines(mask: Mask) -> list[Ellipse | None]:
    """Ellipses fitted to the outlines of the largest blobs of ink (an oval seal, which Hough's circles
    miss), kept when the outline follows its ellipse: two overlapping wheels make a blob an ellipse fits badly."""
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    smallest = max(15, min(mask.shape) // 30)
    ellipses: list[Ellipse | None] = []
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:_OUTLINES]:
        if len(contour) < 5:  # fitEllipse needs five points
            continue
        (x, y), (major, minor), angle = cv2.fitEllipse(contour)
        if min(major, minor) < 2 * smallest:
            continue
        ellipse = (float(x), float(y)), (float(major), float(minor)), float(angle)
        band = np.zeros(mask.shape, np.uint8)
        cv2.ellipse(band, ellipse, 255, max(3, round(0.05 * (major + minor))))
        points = contour.reshape(-1, 2)
        if np.mean(band[points[:, 1], points[:, 0]] > 0) >= 0.9:
            ellipses.append(ellipse)
    return ellipses


def _circles(graded: Mask) -> list[tuple[float, float, float]]:
    """Hough circles on the ink at half size: enough to place a candidate, four times faster on a page of text."""
    if graded.max() < 64 or min(graded.shape) < 40:
        return []
    half = cv2.resize(graded, (graded.shape[1] // 2, graded.shape[0] // 2), interpolation=cv2.INTER_AREA)
    side = min(half.shape)
    circles = cv2.HoughCircles(
        cv2.GaussianBlur(half, (3, 3), 1),
        cv2.HOUGH_GRADIENT_ALT,
        dp=1,
        minDist=max(5, side // 12),
        param1=100,
        param2=0.5,
        minRadius=max(8, side // 30),
        maxRadius=int(side * 0.55),
    )
    found = [] if circles is None else circles[0][:_CANDIDATES]
    return [(2 * float(x), 2 * float(y), 2 * float(r)) for x, y, r in found]


def _measure(ink: Ink, ellipse: Ellipse) -> Ring:
    strength = _polar(_rectify(ink.strength, ellipse))
    low, high = int(_CANON * 0.85), int(_CANON * 1.15)
    peak = low + int(np.argmax(strength[:, low:high].mean(axis=0)))
    near_ring = strength[:, peak - 2 : peak + 3].max(axis=1)
    level = float(np.median(near_ring))
    on_ring = near_ring >= max(ink.faint * 255, 0.4 * level)  # a ring lighter on one side is still a ring
    strong = strength >= max(ink.faint * 255, min(ink.strong * 255, 0.5 * level))
    faint = strength >= min(ink.faint * 255, max(0.66 * ink.faint * 255, 0.5 * level))  # a faded ring's text too
    profile = strong.mean(axis=0)
    disc = strong[:, : int(peak * 0.85)]
    weights = np.arange(disc.shape[1]) + 0.5  # an annulus's area grows with its radius
    radial = strong[:, int(peak * 0.2) : int(peak * 0.85)].mean(axis=1) >= 0.75
    (_centre, (major, minor), _angle) = ellipse
    return Ring(
        coverage=float(on_ring.mean()),
        thickness=_thickness(strength, peak, on_ring) / peak,
        outside=float(profile[int(peak * 1.15) : int(peak * 1.4)].mean()),
        band=float(faint[:, int(peak * 0.55) : int(peak * 0.88)].any(axis=1).mean()),
        fill=float((disc * weights).sum() / (weights.sum() * disc.shape[0])),
        spokes=int(np.count_nonzero(radial & ~np.roll(radial, 1))) if ink.wheels else 0,
        roundness=min(major, minor) / max(major, minor),
    )


def _polar(canvas: Mask) -> Mask:
    """Rows: directions; columns: distance from the centre, one pixel each, to 1.45 radii."""
    reach = _CANON * 1.45
    centre = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    return np.asarray(cv2.warpPolar(canvas, (int(reach), _ANGLES), centre, reach, cv2.WARP_POLAR_LINEAR), np.uint8)


def _ring_guess(mask: Mask, x: float, y: float, r: float) -> Ellipse | None:
    """A first ellipse for a Hough circle: through the ink nearest, in each direction, to the outermost radius
    at which nearly as many directions have ink as at the best one (bold characters can rival a worn ring)."""
    size = int(r * 1.35)
    border = (size, size, size, size)
    padded = cv2.copyMakeBorder(mask, *border, cv2.BORDER_CONSTANT, value=0)  # warpPolar mirrors at the edges
    ink = cv2.warpPolar(padded, (size, _ANGLES), (x + size, y + size), size, cv2.WARP_POLAR_LINEAR) > 96
    low, high = int(r * 0.75), min(size, int(r * 1.3))
    if high - low < 5:
        return None
    window = ink[:, low:high]
    has = window.any(axis=1)
    if has.mean() < 0.6:
        return None
    coverage = cv2.dilate(window.astype(np.uint8), np.ones((1, 5), np.uint8)).mean(axis=0)
    ring = int(np.flatnonzero(coverage >= 0.75 * coverage.max())[-1])  # the ring encloses the characters
    ring = max(0, ring - 3) + int(np.argmax(coverage[max(0, ring - 3) : ring + 1]))
    distance = np.abs(np.arange(high - low) - ring)
    nearest = np.argmin(np.where(window, distance[None, :], np.inf), axis=1)
    theta = np.deg2rad(np.arange(_ANGLES) * 360 / _ANGLES)
    return _ellipse_through(_cartesian(x, y, theta[has], nearest[has] + low))


def _sampled_guess(mask: Mask, x: float, y: float, r: float) -> Ellipse | None:
    """A second first ellipse for a Hough circle, for a ring crossed by a signature or lines: ellipses through
    five stroke edges in five directions round the circle, drawn at random (with a fixed seed), and the one
    that the most directions agree with."""
    size = int(r * 1.5)
    border = (size, size, size, size)
    padded = cv2.copyMakeBorder(mask, *border, cv2.BORDER_CONSTANT, value=0)
    ink = cv2.warpPolar(padded, (size, _ANGLES), (x + size, y + size), size, cv2.WARP_POLAR_LINEAR) > 96
    low = int(r * 0.7)
    edges = ink[:, low:] & ~np.roll(ink[:, low:], -1, axis=1)  # the outer edge of each stroke
    by_direction = [np.flatnonzero(row) + low for row in edges]
    if sum(1 for found in by_direction if found.size) < _ANGLES * 0.6:
        return None
    theta = np.deg2rad(np.arange(_ANGLES) * 360 / _ANGLES)
    rows, columns = np.nonzero(edges)
    points = _cartesian(x, y, theta[rows], columns + low)
    random = np.random.default_rng(0)
    best, agreeing = None, 0
    for _ in range(_TRIES):
        start = int(random.integers(_ANGLES))
        picks = []
        for k in range(5):
            direction = (start + k * _ANGLES // 5) % _ANGLES
            if by_direction[direction].size:
                picks.append((direction, int(random.choice(by_direction[direction]))))
        if len(picks) < 5:
            continue
        sample = _cartesian(x, y, theta[[d for d, _ in picks]], np.array([c for _, c in picks]))
        ellipse = _ellipse_through(sample)
        if ellipse is None or not 1.2 * r < sum(ellipse[1]) / 2 < 3 * r:
            continue
        near = np.abs(_radial_offset(ellipse, points)) < 0.04
        directions = np.unique(rows[near]).size
        if directions > agreeing:
            best, agreeing = ellipse, directions
    return best


def _radial_offset(ellipse: Ellipse, points: NDArray[np.float64]) -> NDArray[np.float64]:
    """How far each point lies outside (positive) or inside the ellipse, as a share of its radius there."""
    (x, y), (major, minor), angle = ellipse
    theta = np.deg2rad(angle)
    dx, dy = points[:, 0] - x, points[:, 1] - y
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / (major / 2)
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / (minor / 2)
    offset: NDArray[np.float64] = np.hypot(u, v) - 1
    return offset


def _refine(mask: Mask, ellipse: Ellipse) -> Ellipse | None:
    """The ellipse through all the ink in a band along the last one, three times, leaving out text, lines and
    signatures beside the ring; None when that ink does not go round at least half of it."""
    for share in (0.06, 0.03, 0.02):  # a band narrowing round the ring: strokes crossing it count less each time
        (x, y), (major, minor), angle = ellipse
        if max(major, minor) > 2.5 * max(mask.shape):
            return None
        reach = int(max(major, minor) * 0.6) + 2
        left, top = max(0, int(x) - reach), max(0, int(y) - reach)
        crop = mask[top : int(y) + reach + 1, left : int(x) + reach + 1]
        band = np.zeros_like(crop)
        cv2.ellipse(band, ((x - left, y - top), (major, minor), angle), 255, max(3, round(share * (major + minor))))
        rows, columns = np.nonzero(crop & band)
        directions = np.arctan2(rows + top - y, columns + left - x)
        if np.unique(((directions + np.pi) * _ANGLES / (2 * np.pi)).astype(int)).size < _ANGLES * 0.5:
            return None
        refined = _ellipse_through(np.stack([columns + left, rows + top], axis=1).astype(np.float64))
        if refined is None:
            return None
        ellipse = refined
    return ellipse


def _cartesian(x: float, y: float, theta: NDArray[np.float64], radius: NDArray[np.int64]) -> NDArray[np.float64]:
    return np.stack([x + radius * np.cos(theta), y + radius * np.sin(theta)], axis=1)


def _ellipse_through(points: NDArray[np.float64]) -> Ellipse | None:
    (ex, ey), (major, minor), angle = cv2.fitEllipse(points.astype(np.float32))
    if not (major > 0 and minor > 0 and np.isfinite([ex, ey, major, minor]).all()):
        return None
    return (float(ex), float(ey)), (float(major), float(minor)), float(angle)


def _rectify(image: Mask, ellipse: Ellipse) -> Mask:
    """Maps the ellipse onto a circle of radius _CANON at the centre of a new canvas."""
    (x, y), (major, minor), angle = ellipse
    side = int(_CANON * 3)
    theta = np.deg2rad(angle)
    rotation = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    linear = rotation.T @ np.diag([2 * _CANON / major, 2 * _CANON / minor]) @ rotation
    offset = np.array([side / 2, side / 2]) - linear @ np.array([x, y])
    matrix = np.hstack([linear, offset[:, None]])
    return np.asarray(cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR), np.uint8)


def _thickness(strength: Mask, peak: int, on_ring: NDArray[np.bool_]) -> float:
    """Median width of the ring at half its strength in each direction where it is inked (blur-proof)."""
    rows = strength[on_ring].astype(np.int32)
    if rows.size == 0:
        return float(peak)
    centre = peak - 3 + np.argmax(rows[:, peak - 3 : peak + 4], axis=1)
    index = np.arange(rows.shape[0])
    half = rows[index, centre] / 2
    width = np.ones(rows.shape[0])
    for step in (-1, 1):
        going = np.ones(rows.shape[0], dtype=bool)
        for k in range(1, peak // 2):
            position = np.clip(centre + step * k, 0, rows.shape[1] - 1)
            going &= rows[index, position] >= half
            width += going
    return float(np.median(width))


def _above(value: float, limit: float, margin: float) -> float:
    return float(np.clip((value - limit) / margin + 0.5, 0, 1))


def _below(value: float, limit: float, margin: float) -> float:
    return float(np.clip((limit - value) / margin + 0.5, 0, 1))
