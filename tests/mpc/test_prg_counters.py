"""A small draw's counter blocks, written as one integer's bytes, are CTR's: carries and the 2^128 wrap included."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mpc.prg import _INT_BLOCKS, Prg, _counter_bytes, fresh_seed

EDGES = [0, 1, (1 << 64) - 1, (1 << 64) - 5, (7 << 64) | ((1 << 64) - 2), (1 << 128) - 1, (1 << 128) - 6,
         (1 << 128) - _INT_BLOCKS, 0x0123456789ABCDEF_FEDCBA9876543210]


def _ctr(seed: bytes, nonce: bytes, nbytes: int) -> bytes:
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(nonce)).encryptor()
    return encryptor.update(bytes(nbytes)) + encryptor.finalize()


@pytest.mark.parametrize("start", EDGES)
def test_counter_bytes_are_ctrs_blocks_for_every_count_either_side_of_the_integer_path(start: int) -> None:
    seed = fresh_seed()
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    for count in range(_INT_BLOCKS + 3):
        counters = bytes(_counter_bytes(start, count))
        assert len(counters) == 16 * count
        assert ecb.update(counters) == _ctr(seed, start.to_bytes(16, "big"), 16 * count), count


def test_draws_of_every_small_size_are_the_ctr_keystream() -> None:
    seed = fresh_seed()
    prg = Prg(seed)
    for n in range(2 * _INT_BLOCKS + 4):
        label = f"s|{n}|kind|a"
        nonce = hashlib.sha256(b"pooled-prg|" + label.encode()).digest()[:16]
        assert prg.words(label, (n,)).tobytes() == _ctr(seed, nonce, 8 * n), n
