"""Peer frameworks measured on this machine next to Pooled: CrypTen 0.4.1 and MPyC 0.11.

An optional part of the benchmarks: nothing in Pooled's engine or default tests imports it.
Install the peers with `bash benchmarks/peers/setup.sh` (or `pip install -e '.[peers]'`
followed by the script's `crypten --no-deps` step). Each measurement starts the peer's own
party processes on 127.0.0.1 (ephemeral ports, one compute thread each, bounded by a
timeout, killed by process group when done) and returns one dict.

    run_peer("crypten", "mul", parties=3, size=1_000_000, repeats=5)
    run_peer("mpyc", "comparison", parties=3, size=10_000, repeats=3)

Pooled's own benchmark command calls `run_peer` between its own runs to interleave them.
By hand: `python -m benchmarks.peers --peer crypten --op mul --parties 3 --size 1000000`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

PEERS = ("crypten", "mpyc")
ALIASES = {"multiply": "mul", "comparison": "lt", "less": "lt", "logistic": "logreg", "regression": "logreg"}
"""Names Pooled's benchmarks use -> the harness's op names."""


def available(peer: str) -> bool:
    """Whether `peer`'s packages are importable here (without importing them)."""
    if peer == "crypten":
        return all(importlib.util.find_spec(m) is not None for m in ("torch", "crypten", "omegaconf", "yaml"))
    if peer == "mpyc":
        return importlib.util.find_spec("mpyc") is not None
    raise ValueError(f"peer must be one of {PEERS}, got {peer!r}")


def peer_ops(peer: str) -> tuple[str, ...]:
    """The operations `peer` can be asked for (after ALIASES)."""
    from benchmarks.peers import crypten_bench, mpyc_bench

    return {"crypten": crypten_bench.OPS, "mpyc": mpyc_bench.OPS}[peer]


def run_peer(peer: str, op: str, parties: int, size: int | None, repeats: int, **options: Any) -> dict[str, Any]:
    """Measure `op` of `size` elements in `peer` with `parties` parties, `repeats` timed runs.

    For op "logreg" (alias "logistic"), `size` is the number of breast_cancer features: 10
    or 30. `size=None` takes the peer's default size. `options` go to the peer's `run`
    (CrypTen: provider="TTP"|"TFP", seed, epochs, reciprocal_range, timeout; MPyC: seed,
    reciprocal_range, timeout). Raises `benchmarks.peers._procs.PeerRunError` when the
    peer's processes fail or time out (they are killed either way).
    """
    op = ALIASES.get(op, op)
    if peer == "crypten":
        from benchmarks.peers import crypten_bench

        return crypten_bench.run(op, parties, size, repeats, **options)
    if peer == "mpyc":
        from benchmarks.peers import mpyc_bench

        return mpyc_bench.run(op, parties, size, repeats, **options)
    raise ValueError(f"peer must be one of {PEERS}, got {peer!r}")
