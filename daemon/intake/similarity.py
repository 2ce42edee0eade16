"""Near-duplicate texts: two enterprises sending the same write-up with a few words changed.

Each text gets a MinHash signature (datasketch) of its overlapping character n-grams: Chinese has no
spaces, so characters, not words, are the unit. A signature is a few hundred bytes, stored beside the
document, and two signatures estimate the Jaccard similarity of their n-gram sets without the texts. What
counts as "the same" is the caller's threshold, from configuration. datasketch imports scipy (60 MB), so it is
imported inside the functions, which run in the document reader's server (readers.py), never the daemon.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TypeVar

SHINGLE_CHARS = 5
PERMUTATIONS = 128
_SEED = 1
"""Fixed: signatures made with different seeds or sizes cannot be compared."""
K = TypeVar("K")


def signature(text: str) -> str:
    """The text's MinHash signature: datasketch's serialised LeanMinHash in hex (empty for a text without
    characters, which resembles nothing)."""
    from datasketch import LeanMinHash, MinHash

    compact = _compact(text)
    if not compact:
        return ""
    size = min(SHINGLE_CHARS, len(compact))
    shingles = {compact[i : i + size].encode("utf-8") for i in range(len(compact) - size + 1)}
    minhash = MinHash(num_perm=PERMUTATIONS, seed=_SEED)
    minhash.update_batch(list(shingles))
    lean = LeanMinHash(minhash)
    buffer = bytearray(lean.bytesize())
    lean.serialize(buffer)
    return bytes(buffer).hex()


def similar_pairs(signatures: Sequence[tuple[K, str]], threshold: float) -> list[tuple[K, K, float]]:
    """Every pair of keys whose texts (signatures in hex) are at least `threshold` similar, each pair once,
    in input order.

    Locality-sensitive hashing (datasketch's MinHashLSH) proposes candidates in about linear time, so ten
    thousand write-ups are not compared pairwise; each candidate's estimate is then checked.
    """
    from datasketch import LeanMinHash, MinHashLSH

    hashes = [(key, LeanMinHash.deserialize(bytes.fromhex(sig))) for key, sig in signatures if sig]
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
