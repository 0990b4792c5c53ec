"""LOGISTIC's rounds, counted by the engine: breast_cancer with 10 features over 3 parties."""

from __future__ import annotations

import numpy as np

from benchmarks.references import OUTCOME, breast_cancer_frame, columns, reference_fit
from queries.engine import run_in_process


def test_breast_cancer_ten_features_fits_in_at_most_600_rounds() -> None:
    frame = breast_cancer_frame()
    parts = [frame.iloc[idx].reset_index(drop=True) for idx in np.array_split(np.arange(len(frame)), 3)]
    result, plan = run_in_process(parts, f"LOGISTIC {OUTCOME} ~ " + " + ".join(columns(10)))
    model = result.extra["model"]
    assert model["converged"] and model["iterations"] == 9
    # setup and checks 31; the first iteration 112 (a reciprocal, a cold inverse of 34 steps of 2 rounds);
    # 8 warm iterations of 44 (eta 2, sigmoid 13, w 2, g and H 1, lift 5, scaling 2, 5 steps of 2 + 1,
    # delta and the decrement 2, the convergence bit 6); the final pass 96
    assert plan.cost["rounds"] == 591 <= 600
    x = np.column_stack([np.ones(len(frame)), frame[columns(10)].to_numpy(np.float64)])
    ref_coef, ref_se, _ = reference_fit(x, frame[OUTCOME].to_numpy(np.float64))
    table = result.to_pandas()
    assert np.max(np.abs(table["coef"].to_numpy() / ref_coef - 1)) < 2e-3
    assert np.max(np.abs(table["std_err"].to_numpy() / ref_se - 1)) < 1e-4
