"""The AES-CTR PRG: deterministic per (seed, label), independent across labels and seeds."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.prg import Prg, fresh_seed
from mpc.ring import RING64, RING128


def test_same_seed_and_label_give_the_same_stream() -> None:
    seed = fresh_seed()
    assert Prg(seed).stream("s|1|triple|a", 1000) == Prg(seed).stream("s|1|triple|a", 1000)


def test_labels_and_seeds_separate_streams() -> None:
    seed = fresh_seed()
    assert Prg(seed).stream("a", 64) != Prg(seed).stream("b", 64)
    assert Prg(seed).stream("a", 64) != Prg(fresh_seed()).stream("a", 64)


def test_a_longer_stream_extends_a_shorter_one() -> None:
    prg = Prg(fresh_seed())
    assert prg.stream("x", 4096)[:100] == prg.stream("x", 100)


def test_ring_elements_look_uniform() -> None:
    words = Prg(fresh_seed()).ring_elements(RING64, "u", (200_000,))
    bits = np.unpackbits(words.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 0.005
    top = (words >> np.uint64(63)).mean()
    assert abs(top - 0.5) < 0.01
    big = Prg(fresh_seed()).ring_elements(RING128, "u", (500,))
    assert sum(int(v) >> 127 for v in big) in range(180, 320)


def test_bad_seed_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Prg(b"short")
