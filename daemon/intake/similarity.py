"""Near-duplicate texts: two enterprises sending the same write-up with a few words changed.

Each text gets a MinHash signature (datasketch) of its overlapping character n-grams: Chinese has no
spaces, so characters, not words, are the unit. A signature is a few hundred bytes, stored beside the
document, and two signatures estimate the Jaccard similarity of their n-gram sets without the texts. What
counts as "the same" is the caller's threshold, from configuration.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from datasketch import LeanMinHash, MinHash

SHINGLE_CHARS = 5
PERMUTATIONS = 128
_SEED = 1
"""Fixed: signatures made with different seeds or sizes cannot be compared."""


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


def _compact(text: str) -> str:
    """NFKC without white space, so that line breaks, full-width forms and spacing change nothing."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"))
