"""Perceptual hash (64-bit DCT pHash) so near-duplicate images can be kept in one split."""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.fft import dctn


def phash(image: Image.Image) -> str:
    """16 hex digits: signs of the 8×8 lowest DCT frequencies of a 32×32 grey thumbnail vs their median."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def near_duplicate_pairs(hashes: list[str], max_distance: int) -> list[tuple[int, int]]:
    """Index pairs whose hashes differ in at most max_distance bits.

    Pigeonhole banding: split the 64 bits into max_distance + 1 bands; two hashes within the
    distance agree exactly on at least one band, so only rows sharing a band are compared.
    """
    if max_distance < 0 or len(hashes) < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    n_bands = min(max_distance + 1, 64)
    edges = np.linspace(0, 64, n_bands + 1).astype(int)
    pairs: set[tuple[int, int]] = set()
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = np.uint64(((1 << (hi - lo)) - 1) << lo)
        buckets: dict[int, list[int]] = {}
        for i, band in enumerate((values & mask).tolist()):
            buckets.setdefault(band, []).append(i)
        for members in buckets.values():
            if len(members) < 2:
                continue
            for x, i in enumerate(members):
                for j in members[x + 1:]:
                    if (i, j) not in pairs and bin(int(values[i] ^ values[j])).count("1") <= max_distance:
                        pairs.add((i, j))
    return sorted(pairs)
