"""A cryptographically secure pseudo-random generator: AES-256 in counter mode.

Shares are masks, and a mask drawn from numpy's generators (PCG64, Mersenne Twister)
can be predicted from a few outputs; so every random value that protects a secret
comes from here. A `Prg` is keyed by a 32-byte seed and produces independent streams
addressed by a label (session, request number, component), which lets a party and the
dealer that share a seed generate the same stream without talking and without keeping
their positions in step.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mpc.ring import Ring

SEED_BYTES = 32
_SMALL_BLOCKS = 1 << 12  # a draw of at most this many AES blocks (64 KiB) takes the ECB path
_ZEROS = memoryview(bytes(1 << 20))  # plaintext of a large draw's keystream, encrypted a slice at a time
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
_STEPS = np.arange(_SMALL_BLOCKS, dtype=np.uint64)  # 0, 1, 2, ...: the low words' offsets (never written)
_STEPS.flags.writeable = False
_INT_BLOCKS = 32  # a draw of at most this many blocks writes its counters as one integer's bytes
_INT_SERIES = tuple((sum(1 << (128 * k) for k in range(c)), sum(i << (128 * (c - 1 - i)) for i in range(c)))
                    for c in range(_INT_BLOCKS + 1))  # per count: (1 + B + ... + B^(c-1), the steps 0, 1, ...)


def fresh_seed() -> bytes:
    """A new uniformly random seed from the operating system."""
    return os.urandom(SEED_BYTES)


class Prg:
    """AES-256-CTR keyed by `seed`; `stream(label, n)` is n bytes unique to that label.

    CTR's keystream is AES of the counter blocks nonce, nonce + 1, ... (a 128-bit big-endian
    counter, as OpenSSL's CTR mode counts). A draw is mostly fixed cost for the small arrays most
    material is made of, and most of that cost is a new cipher object per label; so the counter
    blocks are written with numpy and encrypted by one ECB context per thread, kept on the `Prg`
    (a context is not safe to share between threads). A large draw takes a CTR context of its own.
    The bytes are those of AES-256-CTR.
    """

    __slots__ = ("_aes", "_local")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
        self._aes = algorithms.AES(bytes(seed))  # the key, checked once (a draw is mostly fixed cost)
        self._local = threading.local()

    def stream(self, label: str | bytes, nbytes: int) -> bytes:
        words = self._words_into(label, -(-nbytes // 8))
        return words.view(np.uint8)[:nbytes].tobytes()

    def _ecb(self) -> Any:
        ecb = getattr(self._local, "ecb", None)
        if ecb is None:
            ecb = self._local.ecb = Cipher(self._aes, modes.ECB()).encryptor()
        return ecb

    def _words_into(self, label: str | bytes, n: int) -> np.ndarray:
        """The first 8n bytes of label's AES-256-CTR keystream as n uint64, written in place.

        A small draw encrypts its counter blocks with the thread's ECB context; a large one (where
        a cipher object's cost is nothing beside the AES) encrypts a constant zero block with a CTR
        context, straight into the array. `update_into` wants 15 spare bytes after what it writes:
        the array has 16 (the slice returned leaves them out).
        """
        label_bytes = label.encode() if isinstance(label, str) else label
        nonce = hashlib.sha256(b"pooled-prg|" + label_bytes).digest()[:16]
        blocks = -(-n // 2)
        out = np.empty(2 * blocks + 2, dtype=np.uint64)
        view = out.view(np.uint8).data
        if blocks <= _SMALL_BLOCKS:
            self._ecb().update_into(_counter_bytes(int.from_bytes(nonce, "big"), blocks), view)
            return out[:n]
        encryptor = Cipher(self._aes, modes.CTR(nonce)).encryptor()
        for pos in range(0, 16 * blocks, len(_ZEROS)):
            take = min(len(_ZEROS), 16 * blocks - pos)
            encryptor.update_into(_ZEROS if take == len(_ZEROS) else _ZEROS[:take], view[pos:])
        return out[:n]

    def ring_elements(self, ring: Ring, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform elements of `ring` of the given shape."""
        count = math.prod(shape)
        if ring.native:
            return self._words_into(label, count).reshape(shape)
        words = self._words_into(label, count * ring.element_bytes // 8)  # the stream's bytes, not copied
        return ring.from_bytes(words.data, shape)  # as from_random_bytes, which takes bytes

    def words(self, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform uint64 words (64 independent random bits each)."""
        return self._words_into(label, math.prod(shape)).reshape(shape)


def _counter_bytes(start: int, count: int) -> bytes | np.ndarray:
    """CTR's counter blocks start, start + 1, ..., mod 2^128, as the bytes of big-endian 16-byte blocks.

    A few blocks are one integer's bytes: start * (1 + B + ... + B^(count-1)) + (count-1 + (count-2) B + ...
    + 0 B^(count-1)) with B = 2^128 writes block i as start + i, the carry from the low word into the high
    one included, as long as no block reaches 2^128 (else numpy's blocks, which wrap). For a handful of
    blocks that is a tenth of numpy's per-call cost; beyond `_INT_BLOCKS` numpy is the faster."""
    if count <= _INT_BLOCKS and start + count <= 1 << 128:
        ones, steps = _INT_SERIES[count]
        return (start * ones + steps).to_bytes(16 * count, "big")
    return _counter_blocks(start, count).view(np.uint8).reshape(-1)


def _counter_blocks(start: int, count: int) -> np.ndarray:
    """CTR's counter blocks start, start + 1, ..., mod 2^128, as big-endian 16-byte blocks (count x 2 words).

    Most draws are small and their cost is numpy's per-call overhead, so the common case (no carry
    out of the low word) is three operations: the high words, the low words added to a constant
    0, 1, 2, ... into place, and one byte swap of the whole array."""
    start &= _M128
    hi, lo = start >> 64, start & _M64
    if count <= _SMALL_BLOCKS and lo + count - 1 <= _M64:
        blocks = np.empty((count, 2), dtype=np.uint64)
        blocks[:, 0] = hi
        np.add(_STEPS[:count], lo, out=blocks[:, 1])
        return blocks.byteswap(inplace=True).view(">u8")
    low = np.arange(count, dtype=np.uint64)
    low += np.uint64(lo)  # wraps mod 2^64; a wrapped low word carries one into the high word
    carried = np.empty((count, 2), dtype=">u8")
    carried[:, 1] = low
    carried[:, 0] = np.uint64(hi)
    carried[:, 0] += (low < np.uint64(lo)).astype(np.uint64)  # the high word wraps mod 2^64 too
    return carried


def random_ring_elements(ring: Ring, shape: tuple[int, ...]) -> np.ndarray:
    """Fresh uniform ring elements keyed by a one-off OS seed (for sharing inputs)."""
    return Prg(fresh_seed()).ring_elements(ring, "fresh", shape)
