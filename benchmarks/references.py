"""Plaintext references the suites check Pooled's logistic regressions against, and the breast_cancer table.

* `newton_logit`: a float64 Newton fit of the pooled rows (`queries.plaintext`), with
  standard errors; the reference of the scale suite, and of the regression suite when
  statsmodels is not installed.
* `reference_fit`: statsmodels' Logit when importable, else `newton_logit`, saying which.
* `breast_cancer_frame`: sklearn's breast_cancer as the regression suite's parties hold it
  (standardized, underscores for spaces in the column names, outcome `y`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from queries.plaintext import logit_newton, logit_standard_errors

OUTCOME = "y"


def newton_logit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients, standard errors) of the float64 Newton fit; `x` includes the intercept column.

    Raises numpy.linalg.LinAlgError (singular Hessian) or ArithmeticError (no convergence).
    """
    beta = logit_newton(x, y, tol=1e-12, max_iter=100, strict=True)
    return beta, logit_standard_errors(x, beta)


def reference_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(coefficients, standard errors, what computed them) on the pooled rows; None and the reason on failure."""
    try:
        import statsmodels.api as sm
    except ImportError:
        sm = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation makes statsmodels and numpy warn before they fail
        try:
            if sm is not None:
                fit = sm.Logit(y, x).fit(disp=0)
                return np.asarray(fit.params), np.asarray(fit.bse), "statsmodels Logit"
            coef, se = newton_logit(x, y)
            return coef, se, "plaintext float64 Newton fit (statsmodels not importable)"
        except Exception as exc:  # noqa: BLE001 - the reference's own failure is part of the record
            what = "statsmodels Logit" if sm is not None else "plaintext float64 Newton fit"
            return None, None, f"{what} failed: {type(exc).__name__}: {exc}"


def feature_names(features: int) -> list[str]:
    """breast_cancer's column names for the 10 `mean ...` features or all 30, as sklearn spells them."""
    from sklearn.datasets import load_breast_cancer

    names = list(load_breast_cancer().feature_names)
    if features == 10:
        return [n for n in names if n.startswith("mean ")]
    if features == 30:
        return names
    raise ValueError(f"features must be 10 or 30, got {features}")


def columns(features: int) -> list[str]:
    """The column names of `feature_names(features)` in `breast_cancer_frame`."""
    return [c.replace(" ", "_") for c in feature_names(features)]


def breast_cancer_frame() -> pd.DataFrame:
    """All 30 features standardized (ddof 1), spaces in their names replaced by underscores, and `y`."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    x = data.data
    frame = (x - x.mean()) / x.std()
    frame.columns = [c.replace(" ", "_") for c in x.columns]
    frame[OUTCOME] = data.target
    return frame
