"""The dealer's PRG draws are AES-256-CTR's keystream, by either path and from any thread."""

from __future__ import annotations

import hashlib
import threading

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mpc.prg import _SMALL_BLOCKS, Prg, _counter_blocks, fresh_seed
from mpc.ring import RING128


def _ctr(seed: bytes, nonce: bytes, nbytes: int) -> bytes:
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(nonce)).encryptor()
    return encryptor.update(bytes(nbytes)) + encryptor.finalize()


def _reference(seed: bytes, label: str, nbytes: int) -> bytes:
    return _ctr(seed, hashlib.sha256(b"pooled-prg|" + label.encode()).digest()[:16], nbytes)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 100, 2 * _SMALL_BLOCKS - 1, 2 * _SMALL_BLOCKS, 2 * _SMALL_BLOCKS + 1,
                               (1 << 17) + 3])
def test_draws_are_the_ctr_keystream(n: int) -> None:
    seed = fresh_seed()
    prg = Prg(seed)
    assert prg.words(f"w{n}", (n,)).tobytes() == _reference(seed, f"w{n}", 8 * n)
    assert prg.stream(f"s{n}", 8 * n + 5) == _reference(seed, f"s{n}", 8 * n + 5)
    elements = prg.ring_elements(RING128, f"r{n}", (n,))
    assert RING128.to_bytes(elements) == _reference(seed, f"r{n}", 16 * n)


@pytest.mark.parametrize("start", [(1 << 64) - 3, (1 << 128) - 3, (5 << 64) | ((1 << 64) - 1), 0])
def test_counter_blocks_carry_and_wrap_as_ctr_does(start: int) -> None:
    seed = fresh_seed()
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    keystream = ecb.update(_counter_blocks(start, 10).tobytes())
    assert keystream == _ctr(seed, start.to_bytes(16, "big"), 160)


def test_threads_drawing_from_one_prg_get_their_own_streams() -> None:
    seed = fresh_seed()
    prg = Prg(seed)
    got: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def draw(t: int) -> None:
        try:
            for i in range(200):
                label = f"{t}|{i}"
                got[label] = prg.words(label, (1 + i % 37,)).tobytes()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=draw, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(got) == 800
    assert all(v == _reference(seed, k, len(v)) for k, v in got.items())
