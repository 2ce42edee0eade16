"""Near-duplicate texts: two enterprises sending the same write-up with a few words changed.

Each text gets a MinHash signature (datasketch) of its overlapping character n-grams: Chinese has no
spaces, so characters, not words, are the unit. A signature is a few hundred bytes, stored beside the
document, and two signatures estimate the Jaccard similarity of their n-gram sets without the texts. What
counts as "the same" is the caller's threshold, from configuration.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from datasketch import LeanMinHash, MinHash, MinHashLSH

SHINGLE_CHARS = 5
PERMUTATIONS = 128
_SEED = 1
"""Fixed: signatures made with different seeds or sizes cannot be compared."""
K = TypeVar("K")


@dataclass(frozen=True)
class Signature:
    data: bytes
    """datasketch's serialised LeanMinHash; empty for a text with no characters."""

    def hex(self) -> str:
        return self.data.hex()

    @classmethod
    def from_hex(cls, text: str) -> Signature:
        return cls(bytes.fromhex(text))


def signature(text: str) -> Signature:
    compact = _compact(text)
    if not compact:
        return Signature(b"")
    size = min(SHINGLE_CHARS, len(compact))
    shingles = {compact[i : i + size].encode("utf-8") for i in range(len(compact) - size + 1)}
    minhash = MinHash(num_perm=PERMUTATIONS, seed=_SEED)
    minhash.update_batch(list(shingles))
    lean = LeanMinHash(minhash)
    buffer = bytearray(lean.bytesize())
    lean.serialize(buffer)
    return Signature(bytes(buffer))


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the two texts' n-gram sets, 0.0 to 1.0; an empty text resembles nothing."""
    if not a.data or not b.data:
        return 0.0
    return float(LeanMinHash.deserialize(a.data).jaccard(LeanMinHash.deserialize(b.data)))


def near_duplicates(a: Signature, b: Signature, threshold: float) -> bool:
    return similarity(a, b) >= threshold


def similar_pairs(signatures: Sequence[tuple[K, Signature]], threshold: float) -> list[tuple[K, K, float]]:
    """Every pair of keys whose texts are at least `threshold` similar, each pair once, in input order.

    Locality-sensitive hashing (datasketch's MinHashLSH) proposes candidates in about linear time, so ten
    thousand write-ups are not compared pairwise; each candidate's estimate is then checked.
    """
    hashes = [(key, LeanMinHash.deserialize(sig.data)) for key, sig in signatures if sig.data]
    lsh = MinHashLSH(threshold=threshold, num_perm=PERMUTATIONS)
    for index, (_key, minhash) in enumerate(hashes):
        lsh.insert(index, minhash, check_duplication=False)
    found = []
    for index, (key, minhash) in enumerate(hashes):
        for other in sorted(i for i in lsh.query(minhash) if i > index):
            score = float(minhash.jaccard(hashes[other][1]))
            if score >= threshold:
                found.append((key, hashes[other][0], score))
    return found


def _compact(text: str) -> str:
    """NFKC without white space, so that line breaks, full-width forms and spacing change nothing."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"))
