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
            counters = _counter_blocks(int.from_bytes(nonce, "big"), blocks)
            self._ecb().update_into(counters.view(np.uint8).reshape(-1), view)
            return out[:n]
        encryptor = Cipher(self._aes, modes.CTR(nonce)).encryptor()
        for pos in range(0, 16 * blocks, len(_ZEROS)):
            take = min(len(_ZEROS), 16 * blocks - pos)
            encryptor.update_into(_ZEROS if take == len(_ZEROS) else _ZEROS[:take], view[pos:])
        return out[:n]

    def ring_elements(self, ring: Ring, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform elements of `ring` of the given shape."""
        if ring.native:
            return self._words_into(label, math.prod(shape)).reshape(shape)
        return ring.from_random_bytes(self.stream(label, ring.nbytes(shape)), shape)

    def words(self, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform uint64 words (64 independent random bits each)."""
        return self._words_into(label, math.prod(shape)).reshape(shape)


def _counter_blocks(start: int, count: int) -> np.ndarray:
    """CTR's counter blocks start, start + 1, ..., mod 2^128, as big-endian 16-byte blocks (count x 2 words)."""
    start &= (1 << 128) - 1
    hi, lo = np.uint64(start >> 64), np.uint64(start & _M64)
    low = np.arange(count, dtype=np.uint64)
    low += lo  # wraps mod 2^64; a wrapped low word carries one into the high word
    blocks = np.empty((count, 2), dtype=">u8")
    blocks[:, 1] = low
    blocks[:, 0] = hi
    if int(lo) + count - 1 > _M64:
        blocks[:, 0] += (low < lo).astype(np.uint64)
    return blocks


def random_ring_elements(ring: Ring, shape: tuple[int, ...]) -> np.ndarray:
    """Fresh uniform ring elements keyed by a one-off OS seed (for sharing inputs)."""
    return Prg(fresh_seed()).ring_elements(ring, "fresh", shape)
