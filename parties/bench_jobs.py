"""Benchmark jobs for the nonlinear protocols: one public-input vector, one protocol.

Inputs are public (party 0 holds the encoded vector, the others zeros — a valid sharing)
so every party can regenerate them and the benchmark can check the output against
numpy; the protocol's cost is the same as on private inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from parties.jobs import Job, SiteData
from protocols.compare import ltz
from protocols.division import reciprocal
from protocols.exp_log import exp
from protocols.roots import sqrt
from protocols.select import select
from protocols.sigmoid import sigmoid

Protocol = Callable[[PartyContext, Share], Share]
OPS: dict[str, tuple[Protocol, Callable[[np.ndarray], np.ndarray], tuple[float, float]]] = {
    "comparison": (ltz, lambda x: (x < 0).astype(np.float64), (-100.0, 100.0)),
    "select": (lambda ctx, x: select(ctx, ltz(ctx, x), x, -x), lambda x: np.where(x < 0, x, -x), (-100.0, 100.0)),
    "reciprocal": (reciprocal, lambda x: 1 / x, (1.0, 1000.0)),
    "sqrt": (sqrt, np.sqrt, (0.01, 10000.0)),
    "exp": (exp, np.exp, (-10.0, 5.0)),
    "sigmoid": (sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-40.0, 40.0)),
}
"""Name -> (protocol, numpy oracle, input range)."""


def op_inputs(op: str, size: int, seed: int) -> np.ndarray:
    lo, hi = OPS[op][2]
    return np.random.default_rng(seed).uniform(lo, hi, size)


def _prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> tuple[str, Share]:
    op, size, seed = str(params["op"]), int(params["size"]), int(params.get("seed", 0))
    fp = ctx.fixed
    data = fp.encode(op_inputs(op, size, seed)) if ctx.is_leader else fp.ring.zeros((size,))
    return op, Share(data, fp.ring, fp.frac)


def _compute(ctx: PartyContext, prepared: tuple[str, Share]) -> list[Share]:
    op, x = prepared
    return [OPS[op][0](ctx, x)]


def _elements(params: dict[str, Any]) -> int:
    op = str(params["op"])
    if op not in OPS:
        raise ValueError(f"unknown op {op!r} (known: {', '.join(OPS)})")
    size = int(params["size"])
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return size


def bench_op_job() -> Job:
    return Job("bench_op", _prepare, _compute, "one nonlinear protocol on a public vector (benchmarks)",
               elements=_elements)
