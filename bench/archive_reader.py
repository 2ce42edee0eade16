"""Milliseconds per archive inspection: the isolated reader against `unrar t` on the same archive.

    python bench/archive_reader.py [--count N] [FIXTURE.rar ...]

For each fixture (default: valid.rar, nested.rar, solid.rar, the three-volume set from tests/fixtures/rar),
it times N calls of `inspect_archive` (the whole check: private folder, isolated child, unrar, hashing,
content sniffing) and N runs of `unrar t -inul` (the floor: the tool alone), and prints the medians. The
first call is timed apart: it starts the reader's warm server. Figures, not pass/fail.

It uses only what every version of the reader offers (`inspect_archive`, `find_archives`), so it measures
an older one too: `git archive <commit> daemon | tar -x -C /tmp/old` and run it with PYTHONPATH=/tmp/old.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from daemon.campaign import ArchiveLimits
from daemon.domain import ArchiveFile, Attachment
from daemon.intake.archive import inspect_archive
from daemon.intake.attachments import find_archives

RAR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rar"
DEFAULT = ["valid.rar", "nested.rar", "solid.rar", "volumes.part1.rar+volumes.part2.rar+volumes.part3.rar"]


def archive(folder: Path, names: list[str]) -> ArchiveFile:
    attachments = []
    for name in names:
        path = folder / name  # under its own name, so that `unrar t` finds a set's next volumes
        shutil.copyfile(RAR / name, path)
        data = path.read_bytes()
        attachments.append(
            Attachment(name, "application/octet-stream", path, len(data), hashlib.sha256(data).hexdigest(), data[:16])
        )
    (found,) = find_archives(tuple(attachments))
    return found


def timed(action: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    action(*args)
    return (time.perf_counter() - started) * 1000


def measure(names: list[str], count: int) -> tuple[float, float, float]:
    """(first inspection, median inspection, median `unrar t`), in milliseconds."""
    inspections = []
    tests = []
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as folder:
        root = Path(folder)
        subject = archive(root, names)
        for round_ in range(count + 1):
            work = root / f"work-{round_}"
            work.mkdir()
            inspections.append(timed(_inspect, subject, work))
            shutil.rmtree(work)
            test = ["unrar", "t", "-inul", str(subject.volumes[0].path)]
            tests.append(timed(_test, test))
    return inspections[0], statistics.median(inspections[1:]), statistics.median(tests)


def _inspect(subject: ArchiveFile, work: Path) -> None:
    status = inspect_archive(subject, work, ArchiveLimits()).status
    if str(status) != "ok":
        raise SystemExit(f"the inspection did not succeed: {status}")


def _test(command: list[str]) -> None:
    subprocess.run(command, check=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("fixtures", nargs="*", default=DEFAULT, help="fixture names; '+' joins the volumes of a set")
    args = parser.parse_args(argv)
    print(f"reader: {Path(inspect_archive.__code__.co_filename).parent}")
    print(f"{'archive':<22} {'first ms':>9} {'median ms':>10} {'unrar t ms':>11}   ({args.count} runs each)")
    for fixture in args.fixtures:
        first, median, floor = measure(fixture.split("+"), args.count)
        label = fixture.split("+")[0].replace(".part1", " (3 volumes)")
        print(f"{label:<22} {first:>9.1f} {median:>10.1f} {floor:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
