#!/usr/bin/env python3
"""How well does `daemon.intake.seal` find company seals, against a naive count of red pixels?

    python bench/seals.py FOLDER [--errors]

FOLDER holds `docs/*.docx` and `labels.json` (the format of `../shared/seals/labels.json`, or what
`bench/make_seal_forms.py` writes). For the detector and for the anchor it prints the true-positive rate
(stamped forms called stamped), the false-positive rate (unstamped forms called stamped), each kind's
results, and the time per document (wall clock and processor time: the machine may be shared). `--errors`
lists the forms each got wrong.

The anchor calls a form stamped when any of its pictures has at least 0.3 % red pixels (red hue,
saturation ≥ 0.35, value ≥ 0.3): what one would write first, and what the detector has to beat.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.domain import SealStatus
from daemon.intake.seal import find_seal
from daemon.intake.word import Picture, read_word

ANCHOR_SHARE = 0.003


@dataclass
class Outcome:
    name: str
    kind: str
    truth: bool
    called: bool
    seconds: float
    cpu: float
    """Processor time: unlike the wall time, it hardly moves when other work shares the machine."""
    right_picture: bool = True


def red_share(picture: Picture) -> float:
    with Image.open(io.BytesIO(picture.data)) as image:
        image.draft("RGB", (1000, 1000))
        rgb = np.asarray(image.convert("RGB"))
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)  # hue 0-179
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    red = ((hue <= 10) | (hue >= 160)) & (saturation >= 90) & (value >= 77)
    return float(red.mean())


def run(folder: Path) -> tuple[list[Outcome], list[Outcome], list[float]]:
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    detector, anchor, reading = [], [], []
    for name, label in sorted(labels.items()):
        start = time.perf_counter()
        pictures = read_word(folder / "docs" / name).pictures
        reading.append(time.perf_counter() - start)
        start, cpu = time.perf_counter(), time.process_time()
        result = find_seal(pictures)
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        called = result.status == SealStatus.FOUND
        right = not called or result.picture in label["seal_images"]
        detector.append(Outcome(name, label["kind"], label["seal"], called, elapsed, used, right))
        start, cpu = time.perf_counter(), time.process_time()
        called = any(red_share(p) >= ANCHOR_SHARE for p in pictures)
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        anchor.append(Outcome(name, label["kind"], label["seal"], called, elapsed, used))
    return detector, anchor, reading


def rates(outcomes: list[Outcome]) -> str:
    stamped = [o for o in outcomes if o.truth]
    unstamped = [o for o in outcomes if not o.truth]
    tp = sum(o.called for o in stamped)
    fp = sum(o.called for o in unstamped)
    return (
        f"TPR {tp}/{len(stamped)} = {tp / max(1, len(stamped)):.1%}   "
        f"FPR {fp}/{len(unstamped)} = {fp / max(1, len(unstamped)):.1%}"
    )


def report(title: str, outcomes: list[Outcome], errors: bool) -> None:
    times = [o.seconds for o in outcomes]
    cpu = [o.cpu for o in outcomes]
    print(
        f"{title}: {rates(outcomes)}   time/doc mean {statistics.mean(times):.3f} s, max {max(times):.3f} s "
        f"(CPU mean {statistics.mean(cpu):.3f} s, max {max(cpu):.3f} s)"
    )
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.kind].append(outcome)
    for kind, group in sorted(by_kind.items(), key=lambda item: (not item[1][0].truth, item[0])):
        called = sum(o.called for o in group)
        what = "found" if group[0].truth else "called stamped"
        print(f"    {kind:16} {called:3}/{len(group):<3} {what}")
    wrong_picture = [o.name for o in outcomes if not o.right_picture]
    if wrong_picture:
        print(f"    stamped, but the seal reported on a picture without one: {', '.join(wrong_picture)}")
    if errors:
        for outcome in outcomes:
            if outcome.called != outcome.truth:
                print(f"    {'missed' if outcome.truth else 'false alarm'}: {outcome.name} ({outcome.kind})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--errors", action="store_true", help="list the forms each got wrong")
    args = parser.parse_args()
    detector, anchor, reading = run(args.folder)
    print(f"{args.folder}: {len(detector)} forms; reading a form's pictures took {statistics.mean(reading):.3f} s")
    report("detector", detector, args.errors)
    report(f"anchor (≥ {ANCHOR_SHARE:.1%} red pixels)", anchor, args.errors)


if __name__ == "__main__":
    main()
