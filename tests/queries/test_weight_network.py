"""WEIGHT through `pooled local`: real node processes, mTLS, JSON out.

The command's code runs in this process (`run_here`: its exit code and output, no interpreter to
start; tests/queries/test_pooled_local_cli.py runs `pooled local` as its own process), each
`pooled local` still starting its dealer and nodes as real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.parties.deployment import run_here


def _pooled(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The `pooled` command's code in this process."""
    return run_here(args, timeout=timeout)


@pytest.mark.network
def test_weights_through_pooled_local_match_statsmodels(tmp_path: Path) -> None:
    """LINEAR ... WEIGHT ipw ROBUST matches WLS + HC0, a weighted SELECT DescrStatsW; a negative weight
    refuses with exit code 1."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.weightstats import DescrStatsW

    rng = np.random.default_rng(21)
    files = []
    for i, n in enumerate((240, 130)):
        age = rng.uniform(30, 80, n).round(1)
        treated = rng.integers(0, 2, n)
        frame = pd.DataFrame({"sbp": (100 + 0.6 * age - 5 * treated + rng.normal(0, 10, n)).round(1), "age": age,
                              "treated": treated, "ipw": (1 / rng.uniform(0.2, 0.8, n)).round(4)})
        files.append(tmp_path / f"site_{i}.csv")
        frame.to_csv(files[-1], index=False)
    data = [arg for f in files for arg in ("--data", str(f))]
    run = _pooled("local", *data, "--format", "json", "LINEAR sbp ~ age + treated WEIGHT ipw ROBUST")
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["columns"][:4] == ["term", "coef", "std_err", "z"]
    pooled = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    ref = smf.wls("sbp ~ age + treated", data=pooled, weights=pooled.ipw).fit(cov_type="HC0")
    for term, coef, se, *_ in body["rows"]:
        assert coef == pytest.approx(ref.params[term], rel=1e-6)
        assert se == pytest.approx(ref.bse[term], rel=1e-6)
    assert body["model"]["n"] == len(pooled) and body["model"]["cov_type"] == "HC0"

    run = _pooled("local", *data, "--format", "json", "SELECT treated, COUNT(*) AS n, AVG(sbp), STDDEV(sbp) "
                  "GROUP BY treated WEIGHT ipw")
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    for treated, n, avg, sd in body["rows"]:
        group = pooled[pooled.treated == treated]
        stats = DescrStatsW(group.sbp.to_numpy(), weights=group.ipw.to_numpy(), ddof=1)
        assert n == pytest.approx(stats.sum_weights) and avg == pytest.approx(stats.mean, rel=1e-9)
        assert sd == pytest.approx(stats.std, rel=1e-6)

    bad = pd.read_csv(files[1])
    bad.loc[0, "ipw"] = -1.0
    bad.to_csv(files[1], index=False)
    run = _pooled("local", *data, "--format", "json", "LINEAR sbp ~ age + treated WEIGHT ipw ROBUST")
    assert run.returncode == 1 and run.stdout == ""
    assert "refused (bad_weights)" in run.stderr and "'ipw' must be a finite number >= 0" in run.stderr
    run = _pooled("local", *data, "--format", "json", "SELECT AVG(sbp) WEIGHT ipw")
    assert run.returncode != 0 and run.stdout == ""
    assert "the weight 'ipw' must be a finite number >= 0" in run.stderr
