"""`pooled demo`, the README's main job: every query answered over real processes, the models'
coefficients (and, where the plaintext prints them, standard errors) equal to the plaintext fits it
prints beside them, and every process stopped; and the demo's plaintext references themselves equal to
statsmodels' on the same rows."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from parties.commands.demo import QUERIES
from queries.plaintext import cox_breslow_newton, weighted_logit_hc0
from queries.synth import cohort, diabetes_risk, follow_up, propensity_weights

NUMBER = r"-?[\d.]+(?:e-?\d+)?"


def _sections(out: str) -> dict[str, str]:
    """The demo's output cut at each `>>> query` line: {query: what follows, up to the next one}."""
    parts = re.split(r"^>>> (.*)$", out, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def _estimates(section: str) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, ...]]]:
    """A model's pooled (coef, std_err) by term, read from its table, and its plaintext (coef[, std_err, ...])
    by term, read from its reference lines."""
    pooled_part, plain_part = section.split("--- plaintext")
    pooled = {m[1]: (float(m[2]), float(m[3]))
              for m in re.finditer(rf"^\s*(\S+)\s+({NUMBER})\s+([\d.]+(?:e-?\d+)?)\s", pooled_part, re.M)}
    plain = {m[1]: tuple(float(v) for v in m[2].split())
             for m in re.finditer(rf"^(\S+)((?:\s+{NUMBER})+)$", plain_part, re.M)}
    return pooled, plain


@pytest.mark.network
def test_the_demo_answers_every_query_as_the_plaintext_does_and_stops_its_processes() -> None:
    run = subprocess.run([sys.executable, "-m", "parties", "demo", "--rows", "600"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    sections = _sections(run.stdout)
    assert list(sections) == list(QUERIES)
    for query, section in sections.items():
        assert "[pooled in MPC:" in section and "refused" not in section, query
    models = [q for q in QUERIES if q.startswith(("LOGISTIC", "POISSON", "COX"))]
    assert any(q.startswith("COX") for q in models) and any(" WEIGHT " in q for q in models)
    for query in models:
        pooled, plain = _estimates(sections[query])
        assert set(plain) <= set(pooled) and len(plain) >= 2, (query, pooled, plain)
        for term, values in plain.items():
            assert pooled[term][0] == pytest.approx(values[0], rel=2e-3, abs=1e-4), (query, term)
            if query.startswith("COX") or " WEIGHT " in query:  # their references print standard errors too
                assert pooled[term][1] == pytest.approx(values[1], rel=2e-3, abs=1e-5), (query, term)
    cox = next(sections[q] for q in models if q.startswith("COX"))
    weighted = next(sections[q] for q in models if " WEIGHT " in q)
    assert "breslow" in cox and "hazard_ratio" in cox
    assert "inverse-probability" in weighted and "HC0" in weighted
    assert run.stdout.rstrip().endswith("all processes stopped")


def _demo_rows(rows: int = 1200) -> pd.DataFrame:
    return propensity_weights(follow_up(cohort(rows, 7), 7))


def test_the_cox_reference_is_statsmodels_phreg_with_breslow_ties() -> None:
    phreg = pytest.importorskip("statsmodels.duration.hazard_regression")
    data = _demo_rows()
    x = np.column_stack([data.age, data.smoking == "former", data.smoking == "never"]).astype(float)
    time, event = data.months.to_numpy(dtype=float), data.died.to_numpy(dtype=float)
    beta, se = cox_breslow_newton(time, event, x)
    ref = phreg.PHReg(time, x, status=event, ties="breslow").fit()
    np.testing.assert_allclose(beta, ref.params, rtol=1e-8)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-8)


def test_the_weighted_reference_is_statsmodels_glm_var_weights_hc0() -> None:
    sm = pytest.importorskip("statsmodels.api")
    data = _demo_rows().dropna(subset=["ipw", "outcome", "diabetes"])
    x = np.column_stack([np.ones(len(data)), data.diabetes]).astype(float)
    y, w = data.outcome.to_numpy(dtype=float), data.ipw.to_numpy(dtype=float)
    beta, se = weighted_logit_hc0(x, y, w)
    ref = sm.GLM(y, x, family=sm.families.Binomial(), var_weights=w).fit(cov_type="HC0")
    np.testing.assert_allclose(beta, ref.params, rtol=1e-8)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-8)


def test_the_propensity_weights_add_a_column_and_change_no_other() -> None:
    frame = follow_up(cohort(800, 3), 3)
    weighted = propensity_weights(frame)
    pd.testing.assert_frame_equal(weighted.drop(columns="ipw"), frame)
    p = diabetes_risk(frame.age.to_numpy(dtype=float), frame.bmi.to_numpy(dtype=float, na_value=np.nan))
    expected = np.where(frame.diabetes.to_numpy(dtype=float) == 1, 1 / p, 1 / (1 - p))
    np.testing.assert_array_equal(weighted.ipw.isna(), frame.bmi.isna())
    np.testing.assert_allclose(weighted.ipw.dropna().to_numpy(dtype=float), expected[frame.bmi.notna().to_numpy()])
