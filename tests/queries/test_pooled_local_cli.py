"""`pooled synth` and `pooled local` as a user runs them: real processes, mTLS, JSON out.

The first test runs both commands as their own processes; the others run the commands' code in
this process (`run_here`: the same exit code and output, no interpreter to start), each
`pooled local` still starting its dealer and nodes as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from queries.synth import write_synthetic
from tests.parties.deployment import run_here


def _pooled(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The `pooled` command as its own process."""
    return subprocess.run([sys.executable, "-m", "parties", *args], capture_output=True, text=True, timeout=timeout)


def _here(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The `pooled` command's code in this process."""
    return run_here(args, timeout=timeout)


@pytest.mark.network
def test_synth_then_local_matches_pandas(tmp_path: Path) -> None:
    made = _pooled("synth", "--rows", "600", "--parties", "3", "--out", str(tmp_path), "--seed", "4")
    assert made.returncode == 0, made.stderr
    files = sorted(tmp_path.glob("site_*.csv"))
    assert len(files) == 3
    data = [arg for f in files for arg in ("--data", str(f))]
    run = _pooled("local", *data, "--format", "json", "SELECT COUNT(*), AVG(bmi), STDDEV(sbp) GROUP BY sex")
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["columns"] == ["sex", "count", "avg(bmi)", "stddev(sbp)"]
    pooled = pd.concat([pd.read_csv(f) for f in files])
    for sex, n, mean, sd in body["rows"]:
        part = pooled[pooled.sex == sex]
        assert n == len(part)
        assert mean == pytest.approx(part.bmi.mean(), rel=1e-8)
        assert sd == pytest.approx(part.sbp.std(), rel=1e-8)
    assert body["suppressed"] == [False, False]


@pytest.mark.network
def test_data_names_the_dataset_that_from_reads(tmp_path: Path) -> None:
    made = _here("synth", "--rows", "500", "--parties", "2", "--out", str(tmp_path / "cohort"), "--seed", "6")
    assert made.returncode == 0, made.stderr
    files = sorted((tmp_path / "cohort").glob("site_*.csv"))
    data = [arg for f in files for arg in ("--data", f"cohort={f}")]
    run = _here("local", *data, "--format", "json",
                  "SELECT sex, COUNT(*) AS n, AVG(bmi) FROM cohort WHERE age >= 50 GROUP BY sex")
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    pooled = pd.concat([pd.read_csv(f) for f in files])
    older = pooled[pooled.age >= 50]
    assert body["columns"] == ["sex", "n", "avg(bmi)"]
    for sex, n, mean in body["rows"]:
        assert n == int((older.sex == sex).sum())
        assert mean == pytest.approx(older[older.sex == sex].bmi.mean(), rel=1e-8)
    unnamed = _here("local", "--data", *(str(f) for f in files), "SELECT COUNT(*) FROM cohort")
    assert unnamed.returncode != 0 and "no dataset 'cohort'" in unnamed.stderr  # a bare file is named site_1


def test_a_bad_dataset_name_is_refused_before_any_process_starts(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from parties.cli import main

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for p in (a, b):
        p.write_text("x\n1\n2\n")
    for bad in ("1cohort", "co hort", "co-hort"):
        assert main(["local", "--data", f"{bad}={a}", "--data", f"cohort={b}", "SELECT COUNT(*) FROM cohort"]) == 2
        assert f"bad dataset name {bad!r}" in capsys.readouterr().err
    assert main(["local", "--data", "cohort=", "--data", f"cohort={b}", "SELECT COUNT(*) FROM cohort"]) == 2
    assert "no file or URL after cohort=" in capsys.readouterr().err
    assert main(["local", "--data", f"cohort={tmp_path / 'nope.csv'}", "--data", f"cohort={b}",
                 "SELECT COUNT(*) FROM cohort"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_query_exits_non_zero_with_the_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before any process starts: the command's own code, run in this process."""
    from parties.cli import main

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for p in (a, b):
        p.write_text("x\n1\n2\n")
    assert main(["local", "--data", str(a), "--data", str(b), "SELECT AVG(x) WHERE x >"]) == 2
    err = capsys.readouterr().err
    assert "position 24" in err and "^" in err
    assert main(["local", "--data", str(a), "--data", str(tmp_path / "nope.csv"), "SELECT COUNT(*)"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.network
def test_python_api_local_consortium_query(tmp_path: Path) -> None:
    from parties.local import LocalConsortium

    files = write_synthetic(400, 2, tmp_path, seed=9)
    sites = dict(zip(["h1", "h2"], files))
    with LocalConsortium(["h1", "h2"], data=sites, node_args=["--allow-extremes"]) as consortium:
        frame = consortium.query("SELECT COUNT(*), MAX(chol) GROUP BY diabetes").to_pandas()
    pooled = pd.concat([pd.read_csv(f) for f in files])
    want = pooled.groupby("diabetes").agg(n=("age", "size"), m=("chol", "max"))
    assert frame["count"].tolist() == want.n.tolist()
    assert frame["max(chol)"].tolist() == pytest.approx(want.m.tolist(), rel=1e-9)


@pytest.mark.network
def test_logistic_through_pooled_local_matches_statsmodels(tmp_path: Path) -> None:
    import statsmodels.formula.api as smf

    files = write_synthetic(1500, 2, tmp_path, seed=8)  # what `pooled synth` writes
    data = [arg for f in files for arg in ("--data", str(f))]
    run = _here("local", *data, "--format", "json", "LOGISTIC outcome ~ age + bmi + C(smoking)", timeout=300)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["columns"][:4] == ["term", "coef", "std_err", "z"] and "odds_ratio" in body["columns"]
    pooled = pd.concat([pd.read_csv(f) for f in files]).dropna(subset=["outcome", "age", "bmi", "smoking"])
    ref = smf.logit("outcome ~ age + bmi + C(smoking)", data=pooled).fit(disp=0)
    for term, coef, se, *_ in body["rows"]:
        assert coef == pytest.approx(ref.params[term], rel=1e-3, abs=1e-4)
        assert se == pytest.approx(ref.bse[term], rel=1e-3, abs=1e-4)
    assert body["model"]["n"] == int(ref.nobs) and body["model"]["converged"]


@pytest.mark.network
def test_pooled_local_releases_no_single_patients_value(tmp_path: Path) -> None:
    """Five rows match the condition but only one has an sbp (a patient's 187.5): nothing reveals it."""
    files = write_synthetic(400, 2, tmp_path, seed=6)  # what `pooled synth` writes
    for f, sbps in zip(files, (["187.5", "", ""], ["", ""])):
        table = pd.read_csv(f)
        extra = table.iloc[: len(sbps)].copy()
        extra["age"] = 104
        extra["sbp"] = [float(v) if v else None for v in sbps]
        pd.concat([table, extra]).to_csv(f, index=False)
    data = [arg for f in files for arg in ("--data", str(f))]
    query = "SELECT COUNT(*), AVG(sbp), MIN(sbp), MEDIAN(sbp) WHERE age > 100"
    refused = _here("local", *data, query)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "policy does not release extremes" in refused.stderr and "allow_extremes = false" in refused.stderr
    allowed = _here("local", *data, "--allow-extremes", "--format", "json", query)
    assert allowed.returncode == 0, allowed.stderr
    body = json.loads(allowed.stdout)
    assert body["rows"] == [[5, None, None, None]]
    assert body["suppressed_cells"] == [[False, True, True, True]]
    assert "187" not in allowed.stdout


@pytest.mark.network
def test_crosstab_csv_with_yates_through_pooled_local(tmp_path: Path) -> None:
    """Real processes: the CSV's counts are pandas' crosstab, integers, and its comment lines carry
    the Yates-corrected chi-square, Fisher's p and the oriented measures."""
    import io

    from scipy import stats

    files = write_synthetic(800, 2, tmp_path, seed=5)  # what `pooled synth` writes
    data = [arg for f in files for arg in ("--data", str(f))]
    run = _here("local", *data, "--yates", "--format", "csv", "CROSSTAB diabetes BY outcome")
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(io.StringIO(run.stdout), comment="#")
    pooled = pd.concat([pd.read_csv(f) for f in files])
    want = pd.crosstab(pooled.diabetes, pooled.outcome)
    assert table.iloc[:2, 1:3].to_numpy().tolist() == want.to_numpy().tolist()
    assert ".0," not in run.stdout.split("#", 1)[0]
    comments = "\n".join(line[2:] for line in run.stdout.splitlines() if line.startswith("# "))
    found = pd.read_csv(io.StringIO(comments)).set_index("statistic")
    chi2 = stats.chi2_contingency(want.to_numpy(), correction=True)[0]
    assert float(found.loc["chi2", "value"]) == pytest.approx(chi2)
    assert found.loc["chi2_test", "value"] == "Pearson chi-square with Yates' continuity correction"
    assert float(found.loc["fisher_exact_p", "value"]) == pytest.approx(stats.fisher_exact(want.to_numpy()).pvalue)
    (d, c), (b, a) = want.to_numpy()
    rr = float(found.loc["RR (diabetes=1 vs 0, outcome=1)", "value"])
    assert rr == pytest.approx((a / (a + b)) / (c / (c + d)))


@pytest.mark.network
def test_a_refused_model_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    """LOGISTIC on an outcome coded 1/2: refused in MPC, the reason on stderr, nothing on stdout, exit 1."""
    files = write_synthetic(300, 2, tmp_path, seed=5)  # what `pooled synth` writes
    for f in files:
        table = pd.read_csv(f)
        table["outcome"] = table["outcome"] + 1
        table.to_csv(f, index=False)
    data = [arg for f in files for arg in ("--data", str(f))]
    run = _here("local", *data, "--format", "json", "LOGISTIC outcome ~ age + C(sex)")
    assert run.returncode == 1 and run.stdout == ""
    assert "refused (outcome_not_binary)" in run.stderr and "coded 0/1" in run.stderr


@pytest.mark.network
def test_poisson_through_pooled_local_matches_statsmodels(tmp_path: Path) -> None:
    """Real processes: incidence rates with an offset; a zero exposure refuses with exit code 1."""
    import numpy as np
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(12)
    files = []
    for i, n in enumerate((260, 140)):
        age = rng.choice(["40-59", "60-79", "80+"], n)
        smoker = rng.integers(0, 2, n)
        years = rng.uniform(100, 3000, n).round(1)
        rate = np.exp(-6 + 0.4 * smoker + np.select([age == "60-79", age == "80+"], [0.9, 1.7], 0.0))
        frame = pd.DataFrame({"deaths": rng.poisson(rate * years), "smoker": smoker, "agegroup": age,
                              "person_years": years})
        files.append(tmp_path / f"site_{i}.csv")
        frame.to_csv(files[-1], index=False)
    data = [arg for f in files for arg in ("--data", str(f))]
    query = "POISSON deaths ~ smoker + C(agegroup) + offset(np.log(person_years))"
    run = _here("local", *data, "--format", "json", query, timeout=300)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["columns"][:4] == ["term", "coef", "std_err", "z"] and "irr" in body["columns"]
    pooled = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    ref = smf.glm("deaths ~ smoker + C(agegroup)", data=pooled, family=sm.families.Poisson(),
                  offset=np.log(pooled.person_years)).fit(tol=1e-12)
    for term, coef, se, *_ in body["rows"]:
        assert coef == pytest.approx(ref.params[term], rel=1e-6)
        assert se == pytest.approx(ref.bse[term], rel=1e-6)
    assert body["model"]["n"] == len(pooled) and body["model"]["converged"]
    assert body["model"]["dispersion"] == pytest.approx(ref.pearson_chi2 / ref.df_resid, rel=1e-4)
    table = pd.read_csv(files[1])
    table.loc[0, "person_years"] = 0.0
    table.to_csv(files[1], index=False)
    refused = _here("local", *data, query, timeout=300)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "refused (offset_not_positive)" in refused.stderr and "person_years" in refused.stderr
