"""Named computations a node can run, in an explicit registry.

A `Job` is what an analyst asks the consortium to compute: every node runs the same job
in a new session and returns its shares of the outputs; the analyst reconstructs them.
A job has two phases so that timings mean something: `prepare(ctx, params, site)` does
the party's local work (load and encode its private data) and `compute(ctx, prepared)`
runs the MPC protocols and returns the output shares. `simple_job` turns a plain
`job(ctx, params, site) -> list[Share]` into one.

Jobs only use `mpc/` and `protocols/`, so they also run in-process (`mpc.inprocess`).
The registry is a read-only mapping built with `with_jobs`. A node started from its
configuration registers only the query job; `core_jobs()` (the demo computations and the
core-protocol benchmarks) are registered only on a node started with `--bench-jobs`
(tests and benchmarks). Every job a node runs passes its gate (`parties.gate`): a job
other than the query declares its size (`Job.elements`) so the gate can bound it.

Demo data: `private_vector(seed, party, size)` is a party's private vector for the
`product` and `secure_sum` jobs, drawn deterministically from (seed, party name) so a
test can compute the numpy answer; it stands in for data a site would load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.registry import extended
from mpc.share import Share
from protocols.aggregate import secure_sum
from protocols.beaver import fixed_matmul, fixed_mul
from protocols.opening import open_arith
from protocols.sharing import public, share_from


@dataclass(frozen=True)
class SiteData:
    """What a node holds locally: its party name and where its data lives (`data_dir`, `data_file`)."""

    party: str
    data_dir: Path | None = None
    data_file: Path | None = None


Prepare = Callable[[PartyContext, dict[str, Any], SiteData], Any]
Compute = Callable[[PartyContext, Any], "list[Share] | tuple[list[Share], dict[str, Any]]"]
"""Returns the output shares, or (shares, public facts for the analyst)."""
MaterialPlan = Callable[[dict[str, Any], int], list[MaterialRequest]]
"""(params, number of parties) -> the dealer requests the job will make, in order."""
OnFailure = Callable[[dict[str, Any], str, BaseException, bool], None]
"""(params, session, the exception, aborted by another party) -> None: called once when a job fails."""
Sizer = Callable[[dict[str, Any]], int]
"""params -> the elements of the job's largest input."""
MAX_REPEAT = 1000
"""Most products `repeat_mul` runs in sequence."""


@dataclass(frozen=True)
class Job:
    """A named computation; `plan`, if given, lets the last party prefetch dealer material."""

    name: str
    prepare: Prepare
    compute: Compute
    summary: str = ""
    plan: MaterialPlan | None = None
    on_failure: OnFailure | None = None
    """Told when the job fails at any point after it was started here (e.g. to audit it)."""
    elements: Sizer | None = None
    """The elements of the job's largest input, from its params (ValueError, KeyError or
    TypeError: params the job cannot take); the node's gate refuses the job above its
    limit, and refuses a gated job that does not say."""
    checks_policy: bool = False
    """The job itself decides by the site policy, counts and audits (the query job, which
    must parse the query to decide); the node's gate lets it through untouched."""


def simple_job(
    name: str, fn: Callable[[PartyContext, dict[str, Any], SiteData], list[Share]], summary: str = ""
) -> Job:
    """A job with no separate local phase."""
    return Job(name, lambda ctx, params, site: (params, site), lambda ctx, st: fn(ctx, *st), summary)


def with_jobs(base: Mapping[str, Job], *extra: Job) -> Mapping[str, Job]:
    """A new read-only registry: `base` plus `extra` jobs (names must be new)."""
    return extended(base, extra, "job")


# -- demo data ------------------------------------------------------------------------------------
def private_vector(seed: int, party: str, size: int) -> np.ndarray:
    """Party `party`'s private demo vector: uniform in [-100, 100), from (seed, party)."""
    tag = int.from_bytes(hashlib.sha256(party.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed), tag]).uniform(-100.0, 100.0, int(size))


def bench_inputs(seed: int, *shape: int) -> np.ndarray:
    """Public benchmark inputs (every party can regenerate them)."""
    return np.random.default_rng(int(seed)).normal(0.0, 10.0, shape)


def _size(params: dict[str, Any], key: str = "size") -> int:
    size = int(params[key])
    if size < 1:
        raise ValueError(f"{key} must be positive, got {size}")
    return size


def _repeat_size(params: dict[str, Any]) -> int:
    """`repeat_mul`'s input size, once its repeat count is known to be in range."""
    repeat = int(params.get("repeat", 1))
    if not 1 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat must be between 1 and {MAX_REPEAT}, got {repeat}")
    return _size(params)


# -- product: party 0's vector times party 1's --------------------------------------------------
def _fixed_mul_plan(params: dict[str, Any], n: int) -> list[MaterialRequest]:
    """What `protocols.beaver.fixed_mul` asks of the dealer for two vectors of `params["size"]`."""
    size = _size(params)
    return [
        MaterialRequest("triple", {"shape": [size], "ring": 64}),
        MaterialRequest("trunc", {"shape": [size], "f": 20, "ring": 64}),
    ]


def _product_prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> tuple[int, np.ndarray | None]:
    size = _size(params)
    mine = ctx.fixed.encode(private_vector(params.get("seed", 0), site.party, size)) if ctx.rank < 2 else None
    return size, mine


def _product_compute(ctx: PartyContext, prepared: tuple[int, np.ndarray | None]) -> list[Share]:
    """[x * y] for x private to party 0 and y to party 1.

    Two rounds: the Beaver opening and the truncation. The inputs cost none, as each is
    shared through pairwise seeds (`protocols.sharing.share_from`). Measured for 2, 3 and 5
    parties by `tests/parties/test_jobs.py::test_product_matches_numpy`.
    """
    size, mine = prepared
    fp = ctx.fixed
    x = share_from(ctx, 0, mine if ctx.rank == 0 else None, (size,), fp.ring, fp.frac)
    y = share_from(ctx, 1, mine if ctx.rank == 1 else None, (size,), fp.ring, fp.frac)
    return [fixed_mul(ctx, x, y)]


# -- secure sum of every party's vector ------------------------------------------------------------
def _sum_prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> np.ndarray:
    return ctx.fixed.encode(private_vector(params.get("seed", 0), site.party, _size(params)))


def _sum_compute(ctx: PartyContext, encoded: np.ndarray) -> list[Share]:
    """[sum of all parties' vectors].

    No round: every input is shared through pairwise seeds (`protocols.sharing.share_inputs`)
    and the sum of the shares is local. Measured by
    `tests/parties/test_jobs.py::test_secure_sum_matches_numpy`.
    """
    return [secure_sum(ctx, encoded, ctx.fixed.ring, ctx.fixed.frac)]


# -- benchmarks of the core protocols (inputs public, trivially shared: timing is the same) -------
def _public_shares(ctx: PartyContext, *arrays: Callable[[], np.ndarray], shapes: list[tuple[int, ...]]) -> list[Share]:
    """Trivial sharings of public inputs: party 0 encodes them, the others hold zeros."""
    fp = ctx.fixed
    if ctx.is_leader:
        return [Share(fp.encode(make()), fp.ring, fp.frac) for make in arrays]
    return [Share(fp.ring.zeros(shape), fp.ring, fp.frac) for shape in shapes]


def _bench_mul_prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> list[Share]:
    size, seed = _size(params), int(params.get("seed", 0))
    x, y = (lambda: bench_inputs(seed, size)), (lambda: bench_inputs(seed + 1, size))
    return _public_shares(ctx, x, y, shapes=[(size,)] * 2)


def _bench_mul_compute(ctx: PartyContext, xy: list[Share]) -> list[Share]:
    return [fixed_mul(ctx, xy[0], xy[1])]


def _repeat_prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> tuple[int, list[Share]]:
    return int(params.get("repeat", 1)), _bench_mul_prepare(ctx, params, site)


def _repeat_compute(ctx: PartyContext, prepared: tuple[int, list[Share]]) -> list[Share]:
    """`repeat` products in sequence (2 rounds each, `test_benchmark_jobs_match_numpy`): a long computation,
    for failure tests."""
    repeat, (x, y) = prepared
    z = x
    for _ in range(repeat):
        z = fixed_mul(ctx, x, y)
    return [z]


def _bench_matmul_prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> list[Share]:
    rows, cols, seed = _size(params, "rows"), _size(params, "cols"), int(params.get("seed", 0))
    a, b = (lambda: bench_inputs(seed, rows, cols)), (lambda: bench_inputs(seed + 1, cols, 1))
    return _public_shares(ctx, a, b, shapes=[(rows, cols), (cols, 1)])


def _matmul_plan(params: dict[str, Any], n: int) -> list[MaterialRequest]:
    rows, cols = _size(params, "rows"), _size(params, "cols")
    return [
        MaterialRequest("matmul_triple", {"shape_a": [rows, cols], "shape_b": [cols, 1], "ring": 64}),
        MaterialRequest("trunc", {"shape": [rows], "f": 20, "ring": 64}),
    ]


def _bench_matmul_compute(ctx: PartyContext, ab: list[Share]) -> list[Share]:
    return [fixed_matmul(ctx, ab[0], ab[1])]


def _bench_open_compute(ctx: PartyContext, xs: list[Share]) -> list[Share]:
    (opened,) = open_arith(ctx, xs, "bench-open")
    return [public(ctx, opened, xs[0].ring, xs[0].frac)]


def _bench_open_prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> list[Share]:
    size, seed = _size(params), int(params.get("seed", 0))
    return _public_shares(ctx, lambda: bench_inputs(seed, size), shapes=[(size,)])


def _repeat_plan(params: dict[str, Any], n: int) -> list[MaterialRequest]:
    return _fixed_mul_plan(params, n) * int(params.get("repeat", 1))


def core_jobs() -> Mapping[str, Job]:
    """The demo computations and the core-protocol benchmarks (only on nodes started with `--bench-jobs`)."""
    return with_jobs(
        {},
        Job("product", _product_prepare, _product_compute, "fixed-point x*y, x private to party 0, y to party 1",
            _fixed_mul_plan, elements=_size),
        Job("secure_sum", _sum_prepare, _sum_compute, "elementwise sum of every party's private vector",
            elements=_size),
        Job("bench_mul", _bench_mul_prepare, _bench_mul_compute, "fixed_mul of two public vectors (benchmark)",
            _fixed_mul_plan, elements=_size),
        Job("repeat_mul", _repeat_prepare, _repeat_compute,
            "fixed_mul repeated `repeat` times (long-running, for failure tests)", _repeat_plan,
            elements=_repeat_size),
        Job("bench_matmul", _bench_matmul_prepare, _bench_matmul_compute,
            "fixed_matmul rows x cols by cols x 1 (benchmark)", _matmul_plan,
            elements=lambda params: _size(params, "rows") * _size(params, "cols")),
        Job("bench_open", _bench_open_prepare, _bench_open_compute, "open one vector (benchmark)", elements=_size),
    )
