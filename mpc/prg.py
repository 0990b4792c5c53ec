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

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mpc.ring import Ring

SEED_BYTES = 32
_ZEROS = memoryview(bytes(1 << 20))  # plaintext of the keystream, encrypted a block at a time (sliced, not copied)


def fresh_seed() -> bytes:
    """A new uniformly random seed from the operating system."""
    return os.urandom(SEED_BYTES)


class Prg:
    """AES-256-CTR keyed by `seed`; `stream(label, n)` is n bytes unique to that label."""

    __slots__ = ("_aes",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
        self._aes = algorithms.AES(bytes(seed))  # the key, checked once (a draw is mostly fixed cost)

    def stream(self, label: str | bytes, nbytes: int) -> bytes:
        label_bytes = label.encode() if isinstance(label, str) else label
        nonce = hashlib.sha256(b"pooled-prg|" + label_bytes).digest()[:16]
        encryptor = Cipher(self._aes, modes.CTR(nonce)).encryptor()
        return encryptor.update(bytes(nbytes)) + encryptor.finalize()

    def _words_into(self, label: str, n: int) -> np.ndarray:
        """The first 8n bytes of `stream(label, 8n)` as n uint64, written in place.

        Same keystream as `stream`, without its temporary copies (large draws are most of
        the dealer's work): AES-CTR encrypts a constant zero block straight into the array.
        `update_into` wants 15 spare bytes after what it writes, so the last 64 bytes go
        through `update`.
        """
        nonce = hashlib.sha256(b"pooled-prg|" + label.encode()).digest()[:16]
        encryptor = Cipher(self._aes, modes.CTR(nonce)).encryptor()
        out = np.empty(n, dtype=np.uint64)
        view = out.view(np.uint8).data
        bulk = max(0, 8 * n - 64)
        for pos in range(0, bulk, len(_ZEROS)):
            take = min(len(_ZEROS), bulk - pos)
            encryptor.update_into(_ZEROS if take == len(_ZEROS) else _ZEROS[:take], view[pos:])
        view[bulk:] = encryptor.update(_ZEROS[: 8 * n - bulk])
        return out

    def ring_elements(self, ring: Ring, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform elements of `ring` of the given shape."""
        if ring.native:
            return self._words_into(label, math.prod(shape)).reshape(shape)
        return ring.from_random_bytes(self.stream(label, ring.nbytes(shape)), shape)

    def words(self, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform uint64 words (64 independent random bits each)."""
        return self._words_into(label, math.prod(shape)).reshape(shape)


def random_ring_elements(ring: Ring, shape: tuple[int, ...]) -> np.ndarray:
    """Fresh uniform ring elements keyed by a one-off OS seed (for sharing inputs)."""
    return Prg(fresh_seed()).ring_elements(ring, "fresh", shape)
