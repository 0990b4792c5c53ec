"""A session's persistent draws, kept for the session's later requests.

A persistent component (an owner's mask A, `mpc.material.Component.persistent`) is the same
array in every request of a session: its stream is addressed by name, not by request number.
Protocols that publish a matrix masked by A ask for material against A in every iteration, and
without a cache the owner and the dealer would each redraw A from AES on every request, and the
dealer would split it into BLAS limbs again for every product c = A b. `PersistentDraws` keeps
each draw (read-only, so no caller can change what later requests see) and, on the dealer's side,
its Z_2^64 limbs, for the life of one `DealerEngine` or `SeededMaterial` (one session); `clear`
drops them when the session ends. The values are those of a fresh draw, so the material is the
same bits with or without the cache.

Memory is bounded by `budget` bytes (a draw plus its limbs): the least recently used entries are
dropped first, a dropped one is simply drawn again, and one larger than the budget is never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from mpc.ring import Limbs

_LIMB_FACTOR = 3  # Limbs: three float64 arrays the size of the uint64 matrix


class PersistentDraws:
    """Persistent draws (and their limbs) of one session, least recently used dropped beyond `budget` bytes."""

    DEFAULT_BUDGET = 64 << 20

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._draws: OrderedDict[Hashable, tuple[np.ndarray, Limbs | None]] = OrderedDict()
        self._bytes = 0

    @property
    def held(self) -> tuple[int, int]:
        """How many draws are kept, and their bytes (limbs included)."""
        with self._lock:
            return len(self._draws), self._bytes

    def draw(self, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The array drawn for `key` (a label that fixes its values), drawn by `make` the first time; read-only."""
        with self._lock:
            found = self._draws.get(key)
            if found is not None:
                self._draws.move_to_end(key)
                return found[0]
        out = make()
        out.setflags(write=False)
        self._keep(key, out, None)
        return out

    def limbs(self, key: Hashable, array: np.ndarray) -> Limbs:
        """The Z_2^64 limbs of `array`, the draw kept for `key` (split the first time it is asked for)."""
        with self._lock:
            found = self._draws.get(key)
            if found is not None and found[1] is not None and found[0] is array:
                self._draws.move_to_end(key)
                return found[1]
        split = Limbs.of(array)
        self._keep(key, array, split)
        return split

    def clear(self) -> None:
        """Drop every kept draw (the session is over)."""
        with self._lock:
            self._draws.clear()
            self._bytes = 0

    def _keep(self, key: Hashable, array: np.ndarray, split: Limbs | None) -> None:
        size = array.nbytes * (1 + (_LIMB_FACTOR if split is not None else 0))
        if size > self._budget:
            return
        with self._lock:
            old = self._draws.pop(key, None)
            if old is not None:
                self._bytes -= old[0].nbytes * (1 + (_LIMB_FACTOR if old[1] is not None else 0))
            self._draws[key] = (array, split)
            self._bytes += size
            while self._bytes > self._budget:
                _, (a, s) = self._draws.popitem(last=False)
                self._bytes -= a.nbytes * (1 + (_LIMB_FACTOR if s is not None else 0))
