#!/usr/bin/env python3
"""What reading the documents adds to judging one submission: time, and memory of the reader.

    python bench/documents.py [--runs 10] [--seed 3]

Builds submissions of ordinary size (issue 11): three Word documents of about 1 MB each, a long write-up
with six photos and proof materials of seven scanned pages, and a form of six scanned pages stamped on its
last (as forms are) or, the slowest case, of seven scanned pages without a seal (every picture searched).
Each run reads the three as `pipeline` does (`readers.read_documents`: one child forked from the warm
reader server, under the document limits), and a sampler follows the reader's processes in /proc.

Prints the first run (which starts the server), the median and worst of the others, the reader's peak
resident memory (server and children), and whether the image and hashing libraries stayed out of the
daemon's side (this process builds the documents with Pillow and numpy, so its own size says nothing).
Needs Pillow, numpy, python-docx and a CJK font, as bench/make_seal_forms.py does.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import make_seal_forms as forms
from docx import Document
from docx.shared import Mm

from daemon.campaign import DocumentLimits, Reading
from daemon.intake.readers import read_documents


def build_documents(folder: Path, seed: int, stamped: bool) -> dict[Path, Reading]:
    rng = random.Random(seed)
    form = forms.build(rng, "scan-full") if stamped else scanned_pages(rng, 7)
    if stamped:  # about 1 MB: four more unstamped pages between the cover and the stamped last page
        middle = scanned_pages(rng, 4).pictures
        form.pictures = [form.pictures[0], *middle, *form.pictures[1:]]
    forms.write_docx(form, "数字化质量管控实践", folder / "申报书.docx")
    write_up = Document()
    write_up.add_heading("以数字化手段推动全员质量改进的实践", level=1)
    for _ in range(60):
        write_up.add_paragraph(forms.PARAGRAPH * 3)
    for _ in range(6):
        write_up.add_picture(io.BytesIO(forms.jpeg(forms.product_photo(rng), 95)), width=Mm(150))
    write_up.save(str(folder / "典型经验材料.docx"))
    forms.write_docx(scanned_pages(rng, 7), "证明材料", folder / "证明材料.docx")
    return {
        folder / "申报书.docx": Reading.FORM,
        folder / "典型经验材料.docx": Reading.WRITE_UP,
        folder / "证明材料.docx": Reading.PLAIN,
    }


def scanned_pages(rng: random.Random, pages: int) -> forms.Built:
    """A form of `pages` scanned pages without a seal: every picture must be searched."""
    built = forms.build(rng, "unstamped-scan")
    while len(built.pictures) < pages:
        built.pictures += forms.build(rng, "unstamped-scan").pictures
    built.pictures = built.pictures[:pages]
    return built


class Sampler(threading.Thread):
    """The largest resident set of each process below ours, sampled from /proc."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[str, int] = {}
        self.running = True

    def run(self) -> None:
        while self.running:
            for pid, name in _descendants(os.getpid()):
                rss = _status(pid, "VmRSS")
                if rss is not None:
                    self.peaks[name] = max(self.peaks.get(name, 0), rss)
            time.sleep(0.003)


def _descendants(root: int) -> list[tuple[int, str]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _status(int(entry), "PPid")
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            queue.append(child)
            depth_name = "reader server" if _status(child, "PPid") == root else "reading child"
            found.append((child, depth_name))
    return found


def _status(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    sampler = Sampler()
    sampler.start()
    for stamped in (True, False):
        with tempfile.TemporaryDirectory(prefix="bench-documents-") as folder:
            work = Path(folder)
            documents = build_documents(work, args.seed, stamped)
            sizes = "、".join(f"{path.name} {path.stat().st_size / 1e6:.2f} MB" for path in documents)
            print(
                f"{'stamped form (seal on its last page)' if stamped else 'unstamped form of 7 scanned pages'}: {sizes}"
            )
            times = []
            for _ in range(args.runs + 1):
                started = time.perf_counter()
                read_documents([(path, reading, False) for path, reading in documents.items()], work, DocumentLimits())
                times.append(time.perf_counter() - started)
        first, rest = times[0], times[1:]
        print(f"  first submission{' (starts the reader server)' if stamped else ''}: {first:.2f} s")
        print(f"  next {len(rest)}: median {statistics.median(rest):.2f} s, worst {max(rest):.2f} s per submission")
    sampler.running = False
    sampler.join()
    for name, peak in sorted(sampler.peaks.items()):
        print(f"peak resident memory, {name}: {peak / 1024:.0f} MB")
    heavy = [name for name in ("cv2", "datasketch", "scipy") if name in sys.modules]
    print(f"imported on the daemon's side (this process): {'、'.join(heavy) or 'none of cv2, datasketch, scipy'}")


if __name__ == "__main__":
    main()
