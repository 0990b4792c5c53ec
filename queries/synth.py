"""A synthetic cohort for tests, demos and benchmarks — never real patient data.

Columns: age, sex, bmi, smoking, diabetes, sbp (systolic blood pressure), chol (total
cholesterol) and a binary `outcome` drawn from a known logistic model of them
(`TRUE_LOGIT`), with a few percent of values missing. Rows are split over the parties in
unequal shares. Data generation uses numpy's generator, seeded: this is simulation, not
cryptography.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TRUE_LOGIT = {
    "intercept": -7.0,
    "age": 0.04,
    "sex[M]": 0.35,
    "bmi": 0.06,
    "smoking[current]": 0.7,
    "smoking[former]": 0.25,
    "diabetes": 0.55,
    "sbp": 0.012,
}
"""The coefficients `outcome` is drawn from (log-odds scale)."""


def diabetes_risk(age: np.ndarray, bmi: np.ndarray) -> np.ndarray:
    """P(diabetes = 1 | age, bmi), the logistic model the cohort draws `diabetes` from."""
    return 1 / (1 + np.exp(-(-6.5 + 0.04 * age + 0.1 * bmi)))


def cohort(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` synthetic patients."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 91, rows)
    sex = rng.choice(["F", "M"], rows)
    bmi = np.clip(rng.normal(27.0 + 0.03 * (age - 50), 4.5, rows), 15, 55).round(1)
    smoking = rng.choice(["never", "former", "current"], rows, p=[0.55, 0.25, 0.20])
    diabetes = (rng.random(rows) < diabetes_risk(age, bmi)).astype(np.int64)
    sbp = np.round(100 + 0.5 * age + 0.8 * (bmi - 25) + rng.normal(0, 12, rows)).astype(np.int64)
    chol = np.round(rng.normal(200 + 0.4 * (age - 50), 35, rows), 1)
    logit = (
        TRUE_LOGIT["intercept"]
        + TRUE_LOGIT["age"] * age
        + TRUE_LOGIT["sex[M]"] * (sex == "M")
        + TRUE_LOGIT["bmi"] * bmi
        + TRUE_LOGIT["smoking[current]"] * (smoking == "current")
        + TRUE_LOGIT["smoking[former]"] * (smoking == "former")
        + TRUE_LOGIT["diabetes"] * diabetes
        + TRUE_LOGIT["sbp"] * sbp
    )
    outcome = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            "age": pd.array(age, dtype="Int64"),
            "sex": pd.array(sex, dtype="string"),
            "bmi": pd.array(bmi, dtype="Float64"),
            "smoking": pd.array(smoking, dtype="string"),
            "diabetes": pd.array(diabetes, dtype="Int64"),
            "sbp": pd.array(sbp, dtype="Int64"),
            "chol": pd.array(chol, dtype="Float64"),
            "outcome": pd.array(outcome, dtype="Int64"),
        }
    )
    for col, rate in (("bmi", 0.04), ("sbp", 0.03), ("chol", 0.05)):
        frame.loc[rng.random(rows) < rate, col] = pd.NA
    return frame


def split(frame: pd.DataFrame, parties: int, seed: int = 0) -> list[pd.DataFrame]:
    """Unequal contiguous shares of the rows, one per party (each at least one row)."""
    if parties < 1 or parties > len(frame):
        raise ValueError(f"cannot split {len(frame)} rows over {parties} parties")
    weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, parties)
    cuts = np.floor(np.cumsum(weights) / weights.sum() * len(frame)).astype(int)[:-1]
    cuts = np.maximum(cuts, np.arange(1, parties))
    pieces = np.split(np.arange(len(frame)), cuts)
    return [frame.iloc[idx].reset_index(drop=True) for idx in pieces]


def write_synthetic(rows: int, parties: int, out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write one CSV per party (site_1.csv, ...) and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(split(cohort(rows, seed), parties, seed), start=1):
        path = out / f"site_{i}.csv"
        part.to_csv(path, index=False)
        paths.append(path)
    return paths


def follow_up(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """`frame` with a survival outcome added: `months` of follow-up (whole months, at most 60) and `died`
    (1: died then, 0: censored then). Monthly hazard 0.004 x exp(0.03 (age - 50) + 0.5 [current smoker]
    + 0.2 [former smoker]); censoring uniform over 6 to 60 months. Drawn from its own generator, so the
    cohort's other columns are unchanged."""
    rng = np.random.default_rng([seed, 17])
    age = frame["age"].astype(float).to_numpy()
    smoking = frame["smoking"].astype(str).to_numpy()
    rate = 0.004 * np.exp(0.03 * (age - 50) + 0.5 * (smoking == "current") + 0.2 * (smoking == "former"))
    death = rng.exponential(1.0 / rate)
    censor = rng.uniform(6.0, 60.0, len(frame))
    months = np.ceil(np.minimum(death, censor)).astype(np.int64)
    return frame.assign(months=pd.array(months, dtype="Int64"), died=pd.array((death <= censor).astype(np.int64),
                                                                             dtype="Int64"))


def propensity_weights(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `ipw` added: inverse-probability-of-treatment weights for diabetes, 1 / p for a patient
    with diabetes and 1 / (1 - p) for one without, p = `diabetes_risk(age, bmi)`, the true propensity the
    cohort draws diabetes from (NULL where age, bmi or diabetes is). Weighted by `ipw`, patients with and
    without diabetes have the same age and bmi mix, so `LOGISTIC outcome ~ diabetes WEIGHT ipw ROBUST`
    estimates diabetes's marginal log odds ratio free of their confounding. Draws nothing: the other
    columns are unchanged."""
    p = diabetes_risk(frame["age"].astype(float).to_numpy(), frame["bmi"].astype(float).to_numpy())
    treated = frame["diabetes"].astype(float).to_numpy()
    ipw = np.where(treated == 1, 1 / p, 1 / (1 - p))
    return frame.assign(ipw=pd.array(np.where(np.isnan(treated), np.nan, ipw), dtype="Float64"))
