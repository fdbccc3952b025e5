"""FarmHash Fingerprint64 of many byte strings at once, in numpy: the hash `tf.fingerprint(method="farmhash64")`
gives, without TensorFlow.

The split of a row is decided by this hash of its key (`split.assign`), and
it must be the same in every process that ingests, including a Beam worker
that never loads TensorFlow. This is farmhashna::Hash64 (Fingerprint64 in
FarmHash 1.1) step for step, each step on every string of a batch at once:
strings take the branch of their length, and those over 64 bytes loop as
many 64-byte blocks as the longest of them has, each string updated only
while it still has blocks. Arithmetic is on uint64, which wraps as C++'s does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

K0 = np.uint64(0xC3A5C85C97CB3127)
K1 = np.uint64(0xB492B66FBE98F273)
K2 = np.uint64(0x9AE16A3B2F90404F)
_SEED = np.uint64(81)


def fingerprint64(strings: pa.Array) -> np.ndarray:
    """Fingerprint64 of each value of a binary or string array without nulls, as uint64."""
    if len(strings) == 0:
        return np.zeros(0, np.uint64)
    strings = strings.cast(pa.large_binary())
    offsets = np.frombuffer(strings.buffers()[1], np.int64, len(strings) + 1, strings.offset * 8)
    data = np.frombuffer(strings.buffers()[2] or b"", np.uint8)[offsets[0]:offsets[-1]]
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    # Every read takes 8 bytes from where a string's text is; padding lets one that starts near the end do so.
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    text = _Text(np.lib.stride_tricks.sliding_window_view(padded, 8))
    out = np.empty(len(strings), np.uint64)
    with np.errstate(over="ignore"):
        for pick, hash_of in ((lengths <= 16, _len_0_to_16), ((lengths > 16) & (lengths <= 32), _len_17_to_32),
                              ((lengths > 32) & (lengths <= 64), _len_33_to_64), (lengths > 64, _len_over_64)):
            if pick.any():
                out[pick] = hash_of(text, starts[pick], lengths[pick].astype(np.uint64))
    return out


class _Text:
    """Little-endian reads of 8 or 4 bytes at given offsets of the batch's text."""

    def __init__(self, windows: np.ndarray):
        self.windows = windows

    def u64(self, at: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.windows[at]).view("<u8").reshape(-1)

    def u32(self, at: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.windows[at, :4]).view("<u4").reshape(-1).astype(np.uint64)

    def byte(self, at: np.ndarray) -> np.ndarray:
        return self.windows[at, 0].astype(np.uint64)


def _rotate(value: np.ndarray, shift: int) -> np.ndarray:
    return (value >> np.uint64(shift)) | (value << np.uint64(64 - shift))


def _shift_mix(value: np.ndarray) -> np.ndarray:
    return value ^ (value >> np.uint64(47))


def _hash_16(u: np.ndarray, v: np.ndarray, mul: np.ndarray) -> np.ndarray:
    a = _shift_mix((u ^ v) * mul)
    return _shift_mix((v ^ a) * mul) * mul


def _len_0_to_16(text: _Text, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    out = np.full(len(s), K2, np.uint64)
    mul = K2 + n * np.uint64(2)
    end = s + n.astype(np.int64)
    long = n >= 8
    a = text.u64(s[long]) + K2
    b = text.u64(end[long] - 8)
    out[long] = _hash_16(_rotate(b, 37) * mul[long] + a, (_rotate(a, 25) + b) * mul[long], mul[long])
    mid = (n >= 4) & ~long
    out[mid] = _hash_16(n[mid] + (text.u32(s[mid]) << np.uint64(3)), text.u32(end[mid] - 4), mul[mid])
    short = (n > 0) & (n < 4)
    ss, ns = s[short], n[short]
    y = text.byte(ss) + (text.byte(ss + (ns >> np.uint64(1)).astype(np.int64)) << np.uint64(8))
    z = ns + (text.byte(end[short] - 1) << np.uint64(2))
    out[short] = _shift_mix(y * K2 ^ z * K0) * K2
    return out


def _len_17_to_32(text: _Text, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    mul = K2 + n * np.uint64(2)
    end = s + n.astype(np.int64)
    a, b = text.u64(s) * K1, text.u64(s + 8)
    c, d = text.u64(end - 8) * mul, text.u64(end - 16) * K2
    return _hash_16(_rotate(a + b, 43) + _rotate(c, 30) + d, a + _rotate(b + K2, 18) + c, mul)


def _len_33_to_64(text: _Text, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    mul = K2 + n * np.uint64(2)
    end = s + n.astype(np.int64)
    a, b = text.u64(s) * K2, text.u64(s + 8)
    c, d = text.u64(end - 8) * mul, text.u64(end - 16) * K2
    y = _rotate(a + b, 43) + _rotate(c, 30) + d
    z = _hash_16(y, a + _rotate(b + K2, 18) + c, mul)
    e, f = text.u64(s + 16) * mul, text.u64(s + 24)
    g, h = (y + text.u64(end - 32)) * mul, (z + text.u64(end - 24)) * mul
    return _hash_16(_rotate(e + f, 43) + _rotate(g, 30) + h, e + _rotate(f + a, 18) + g, mul)


def _weak_32(text: _Text, at: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, x, y, z = (text.u64(at + k) for k in (0, 8, 16, 24))
    a = a + w
    b = _rotate(b + a + z, 21)
    c = a
    a = a + x + y
    return a + z, b + _rotate(a, 44) + c


def _len_over_64(text: _Text, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    count = len(s)
    y = np.full(count, _SEED * K1 + np.uint64(113), np.uint64)
    z = np.full(count, _shift_mix(y[:1] * K2 + np.uint64(113))[0] * K2, np.uint64)
    x = np.full(count, _SEED * K2, np.uint64) + text.u64(s)
    v1, v2, w1, w2 = (np.zeros(count, np.uint64) for _ in range(4))
    blocks = ((n - np.uint64(1)) // np.uint64(64)).astype(np.int64)
    for block in range(int(blocks.max())):
        on = blocks > block
        p = np.where(on, s + block * 64, s)  # a string out of blocks reads its first (and the result is not kept)
        nx = _rotate(x + y + v1 + text.u64(p + 8), 37) * K1 ^ w2
        ny = _rotate(y + v2 + text.u64(p + 48), 42) * K1 + v1 + text.u64(p + 40)
        nz = _rotate(z + w1, 33) * K1
        nv1, nv2 = _weak_32(text, p, v2 * K1, nx + w1)
        nw1, nw2 = _weak_32(text, p + 32, nz + w2, ny + text.u64(p + 16))
        # std::swap(z, x) ends each block
        x, y, z = np.where(on, nz, x), np.where(on, ny, y), np.where(on, nx, z)
        v1, v2, w1, w2 = (np.where(on, new, old) for new, old in ((nv1, v1), (nv2, v2), (nw1, w1), (nw2, w2)))
    mul = K1 + ((z & np.uint64(0xFF)) << np.uint64(1))
    last = s + n.astype(np.int64) - 64
    w1 = w1 + ((n - np.uint64(1)) & np.uint64(63))
    v1 = v1 + w1
    w1 = w1 + v1
    nx = _rotate(x + y + v1 + text.u64(last + 8), 37) * mul ^ (w2 * np.uint64(9))
    ny = _rotate(y + v2 + text.u64(last + 48), 42) * mul + v1 * np.uint64(9) + text.u64(last + 40)
    nz = _rotate(z + w1, 33) * mul
    v1, v2 = _weak_32(text, last, v2 * mul, nx + w1)
    w1, w2 = _weak_32(text, last + 32, nz + w2, ny + text.u64(last + 16))
    x, z = nz, nx
    return _hash_16(_hash_16(v1, w1, mul) + _shift_mix(ny) * K0 + z, _hash_16(v2, w2, mul) + x, mul)
