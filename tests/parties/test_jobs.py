"""The node's jobs, run in-process against numpy, and their material plans match reality."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.inprocess import make_contexts, run_parties
from mpc.material import MaterialRequest, Secrets
from mpc.share import reconstruct
from parties.jobs import Job, SiteData, bench_inputs, core_jobs, private_vector, simple_job, with_jobs
from protocols.material import KINDS

NAMES = ["a", "b", "c", "d", "e"]


class _Recording:
    """A material source that remembers every request (to check a job's plan)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seen: list[MaterialRequest] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get(self, request: MaterialRequest) -> Secrets:
        self.seen.append(request)
        return self._inner.get(request)


def _run(job: Job, n: int, params: dict[str, Any]) -> tuple[list[np.ndarray], list[_Recording], int]:
    ctxs = make_contexts(n, kinds=KINDS)
    for ctx in ctxs:
        ctx.material = _Recording(ctx.material)

    def program(ctx: PartyContext) -> Any:
        return job.compute(ctx, job.prepare(ctx, params, SiteData(NAMES[ctx.rank])))

    per_party = run_parties(n, program, contexts=ctxs)
    outputs = [ctxs[0].fixed.decode(reconstruct(output), output[0].frac) for output in zip(*per_party, strict=True)]
    return outputs, [c.material for c in ctxs], ctxs[0].stats.rounds  # type: ignore[misc]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_product_matches_numpy(n: int) -> None:
    (z,), recs, rounds = _run(core_jobs()["product"], n, {"size": 50, "seed": 4})
    assert np.abs(z - private_vector(4, "a", 50) * private_vector(4, "b", 50)).max() < 1e-3
    assert rounds == 2  # the Beaver round, the truncation round (inputs shared by pairwise seeds: no round)


@pytest.mark.parametrize("n", [2, 3])
def test_secure_sum_matches_numpy(n: int) -> None:
    (s,), _, rounds = _run(core_jobs()["secure_sum"], n, {"size": 20, "seed": 9})
    assert np.abs(s - sum(private_vector(9, p, 20) for p in NAMES[:n])).max() < 1e-5
    assert rounds == 0  # inputs shared by pairwise seeds; the sum is local


def test_benchmark_jobs_match_numpy() -> None:
    jobs = core_jobs()
    (z,), _, _ = _run(jobs["bench_mul"], 3, {"size": 40, "seed": 1})
    assert np.abs(z - bench_inputs(1, 40) * bench_inputs(2, 40)).max() < 1e-3
    (m,), _, rounds = _run(jobs["bench_matmul"], 3, {"rows": 6, "cols": 5, "seed": 2})
    assert np.abs(m - bench_inputs(2, 6, 5) @ bench_inputs(3, 5, 1)).max() < 1e-3 and rounds == 2
    (o,), _, rounds = _run(jobs["bench_open"], 2, {"size": 10, "seed": 3})
    assert np.abs(o - bench_inputs(3, 10)).max() < 1e-6 and rounds == 1
    (r,), _, rounds = _run(jobs["repeat_mul"], 2, {"size": 10, "seed": 5, "repeat": 3})
    assert np.abs(r - bench_inputs(5, 10) * bench_inputs(6, 10)).max() < 1e-3 and rounds == 6


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("product", {"size": 30}),
        ("bench_mul", {"size": 30}),
        ("bench_matmul", {"rows": 4, "cols": 3}),
        ("repeat_mul", {"size": 8, "repeat": 2}),
        ("secure_sum", {"size": 3}),
    ],
)
def test_material_plans_list_exactly_the_requests_made(name: str, params: dict[str, Any]) -> None:
    job = core_jobs()[name]
    _, recs, _ = _run(job, 3, params)
    plan = job.plan(params, 3) if job.plan else []
    assert [r.to_json() for r in recs[-1].seen] == [r.to_json() for r in plan]


def test_registry_is_explicit_and_read_only() -> None:
    jobs = core_jobs()
    assert {"product", "secure_sum", "bench_mul", "bench_matmul", "bench_open"} <= set(jobs)
    with pytest.raises(TypeError):
        jobs["x"] = jobs["product"]  # type: ignore[index]
    extra = simple_job("noop", lambda ctx, params, site: [])
    assert "noop" in with_jobs(jobs, extra) and "noop" not in jobs
    with pytest.raises(ValueError, match="twice"):
        with_jobs(jobs, jobs["product"])
