"""Duplicate lead ids across a whole file, batch by batch, with no per-row Python.

Each id is hashed to 64 bits by numpy over the bytes of its Arrow text (FNV-1a, then a
splitmix64 finaliser). The hashes of the ids accepted so far are kept sorted in a few runs
of doubling size (merged like a log-structured tree), so a batch is checked with one
binary search per run; every id whose hash was seen is then compared as text with the id
that hash belongs to, so a hash collision never rejects a lead. Memory: the accepted ids as
Arrow text plus 16 bytes per id (the hash and its position).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def id_hashes(ids: pa.Array) -> np.ndarray:
    """A 64-bit hash per id (Arrow text without nulls), computed over its UTF-8 bytes."""
    ids = ids.cast(pa.large_string()) if not pa.types.is_large_string(ids.type) else ids
    n = len(ids)
    _, offsets_buf, data_buf = ids.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[ids.offset:ids.offset + n + 1]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
            else np.zeros(1, dtype=np.uint8))
    starts, lengths = offsets[:-1], np.diff(offsets)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64) ^ lengths.astype(np.uint64)
    if n == 0:
        return h
    width = int(lengths.max())
    with np.errstate(over="ignore"):
        if width and (lengths == width).all():  # ids of one length: a byte matrix
            block = data[starts[0]:starts[0] + n * width].reshape(n, width)
            for p in range(width):
                h ^= block[:, p]
                h *= _FNV_PRIME
        else:
            for p in range(width):  # byte p of the ids that have one: a hash never
                present = lengths > p  # depends on the other ids of the batch
                rows = np.flatnonzero(present)
                h[rows] = (h[rows] ^ data.take(starts[rows] + p)) * _FNV_PRIME
    return _mix(h)


class SeenIds:
    """The ids accepted so far; :meth:`first_seen` says which ids of a batch are new."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, positions)
        self._texts: list[pa.Array] = []  # accepted ids, in order of position
        self._starts: list[int] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def first_seen(self, ids: pa.Array) -> np.ndarray:
        """Per id of the batch (Arrow text, no nulls): True the first time it appears in the
        file (this batch included), False for a repeat. The new ids are remembered."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        ids = pa.array(ids) if not isinstance(ids, pa.Array) else ids
        n = len(ids)
        if n == 0:
            return np.zeros(0, dtype=bool)
        hashes = id_hashes(ids)
        fresh = np.ones(n, dtype=bool)
        # repeats within the batch: a later row with the text of an earlier row
        codes, _ = pd.factorize(hashes)
        first_row = np.full(codes.max() + 1, n, dtype=np.int64)
        np.minimum.at(first_row, codes, np.arange(n))
        later = np.flatnonzero(first_row[codes] != np.arange(n))
        if len(later):
            same = self._same_text(ids, later, ids, first_row[codes[later]])
            fresh[later[same]] = False
            for row in later[~same]:  # a hash collision inside the batch: compare exactly
                fresh[row] = self._new_within(ids, hashes, row)
        # repeats of earlier batches (the batch's hashes searched in sorted order: the
        # binary searches then walk the runs' memory in one direction)
        order = np.argsort(hashes)
        for run_hashes, run_positions in self._runs:
            at = np.empty(n, dtype=np.int64)
            at[order] = np.searchsorted(run_hashes, hashes[order])
            at.clip(max=len(run_hashes) - 1, out=at)
            hit = np.flatnonzero(fresh & (run_hashes[at] == hashes))
            if not len(hit):
                continue
            same = self._same_stored(ids, hit, run_positions[at[hit]])
            fresh[hit[same]] = False
            for row in hit[~same]:  # collision with an earlier id: check all of that hash
                fresh[row] = not self._stored_has(ids[int(row)].as_py(), hashes[row])
        self._remember(ids.filter(pa.array(fresh)), hashes[fresh])
        return fresh

    @staticmethod
    def _same_text(a: pa.Array, rows: np.ndarray, b: pa.Array, other: np.ndarray) -> np.ndarray:
        left, right = a.take(pa.array(rows)), b.take(pa.array(other))
        return pc.equal(left, right).to_numpy(zero_copy_only=False)

    @staticmethod
    def _new_within(ids: pa.Array, hashes: np.ndarray, row: int) -> bool:
        earlier = np.flatnonzero(hashes[:row] == hashes[row])
        text = ids[int(row)].as_py()
        return all(ids[int(i)].as_py() != text for i in earlier)

    def _stored(self, positions: np.ndarray) -> pa.Array:
        chunks = np.searchsorted(self._starts, positions, side="right") - 1
        parts = [self._texts[c].take(pa.array(positions[chunks == c] - self._starts[c]))
                 for c in np.unique(chunks)]
        order = np.argsort(chunks, kind="stable")
        merged = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
        return merged.take(pa.array(np.argsort(order, kind="stable")))

    def _same_stored(self, ids: pa.Array, rows: np.ndarray, positions: np.ndarray
                     ) -> np.ndarray:
        stored = self._stored(positions)
        return pc.equal(ids.take(pa.array(rows)).cast(stored.type), stored).to_numpy(
            zero_copy_only=False)

    def _stored_has(self, text: str, hash_: np.uint64) -> bool:
        for run_hashes, run_positions in self._runs:
            lo, hi = np.searchsorted(run_hashes, [hash_, hash_], side="left")[0], \
                np.searchsorted(run_hashes, hash_, side="right")
            if hi > lo and text in self._stored(run_positions[lo:hi]).to_pylist():
                return True
        return False

    def _remember(self, ids: pa.Array, hashes: np.ndarray) -> None:
        if not len(ids):
            return
        positions = np.arange(self._count, self._count + len(ids), dtype=np.int64)
        self._texts.append(ids)
        self._starts.append(self._count)
        self._count += len(ids)
        order = np.argsort(hashes, kind="stable")
        self._runs.append((hashes[order], positions[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (h1, p1), (h2, p2) = self._runs[-2], self._runs.pop()
            both = np.concatenate([h1, h2])
            order = np.argsort(both, kind="stable")
            self._runs[-1] = (both[order], np.concatenate([p1, p2])[order])
