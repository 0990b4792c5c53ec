"""CROSSTAB statistics (`queries.epi`) as an epidemiologist checks them: orientation, labels, CIs,
zero cells and the chi-square's kind, against hand computation and scipy — on the pure function and
through in-process parties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats.contingency import odds_ratio, relative_risk

from queries.engine import run_in_process
from queries.epi import crosstab_statistics
from queries.table import normalize_frame

TABLES = [
    np.array([[60, 20], [10, 30]]),  # rows no / yes, columns 0 / 1
    np.array([[8, 3], [2, 9]]),  # small: Yates and Fisher differ visibly from Pearson
    np.array([[120, 5], [90, 14]]),
    np.array([[60, 0], [10, 30]]),  # a zero cell
    np.array([[0, 25], [12, 7]]),  # a zero cell among the reference's non-cases
]


def _by(measures: list[dict], name: str) -> dict:
    return next(m for m in measures if m["measure"] == name)


def _sites(table: np.ndarray, rows: list, cols: list, row: str = "smoking", col: str = "outcome") -> list:
    pairs = [(rows[i], cols[j]) for i in range(table.shape[0]) for j in range(table.shape[1])
             for _ in range(int(table[i, j]))]
    frame = pd.DataFrame(pairs, columns=[row, col])
    return [normalize_frame(frame.iloc[p::2].reset_index(drop=True)) for p in (0, 1)]


def test_the_reported_table_gives_the_risk_of_the_outcome_in_the_exposed_over_the_unexposed() -> None:
    """Exposure no/yes, outcome 0/1: RR = P(1 | yes) / P(1 | no) = (27/40) / (20/80) = 2.7, not the
    risk of outcome 0 in 'no' over 'yes' that sort order alone gives ((60/80) / (13/40) = 2.31)."""
    table = np.array([[60, 20], [13, 27]])
    out = crosstab_statistics(table, ["no", "yes"], [0, 1], "smoking", "outcome")
    rr, odds, rd = (_by(out["measures"], m) for m in ("RR", "OR", "RD"))
    assert rr["label"] == "RR (smoking=yes vs no, outcome=1)"
    assert rr["estimate"] == pytest.approx((27 / 40) / (20 / 80)) == pytest.approx(2.7)
    assert rr["estimate"] != pytest.approx((60 / 80) / (13 / 40))  # the misoriented ratio
    assert odds["label"] == "OR (smoking=yes vs no, outcome=1)"
    assert odds["estimate"] == pytest.approx(27 * 60 / (13 * 20))
    assert rd["label"] == "RD (smoking=yes vs no, outcome=1)" and rd["estimate"] == pytest.approx(27 / 40 - 20 / 80)
    assert (rr["exposed"], rr["reference"], rr["outcome_level"]) == ("yes", "no", 1)


@pytest.mark.parametrize("table", TABLES[:3], ids=str)
def test_or_rr_rd_and_their_cis_match_scipy_and_the_textbook_formulas(table: np.ndarray) -> None:
    d, c, b, a = table.ravel()  # row 0 the reference (non-cases, cases), row 1 the exposed
    out = crosstab_statistics(table, ["no", "yes"], [0, 1], "smoking", "outcome")
    want_or = odds_ratio([[a, b], [c, d]], kind="sample")
    got = _by(out["measures"], "OR")
    assert got["estimate"] == pytest.approx(want_or.statistic)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(want_or.confidence_interval()))
    want_rr = relative_risk(int(a), int(a + b), int(c), int(c + d))
    got = _by(out["measures"], "RR")
    assert got["estimate"] == pytest.approx(want_rr.relative_risk)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(want_rr.confidence_interval()))
    p1, p0 = a / (a + b), c / (c + d)
    half = 1.959964 * math.sqrt(p1 * (1 - p1) / (a + b) + p0 * (1 - p0) / (c + d))
    got = _by(out["measures"], "RD")
    assert (got["estimate"], got["ci_low"], got["ci_high"]) == pytest.approx((p1 - p0, p1 - p0 - half, p1 - p0 + half))


@pytest.mark.parametrize("table", TABLES, ids=str)
@pytest.mark.parametrize("yates", [False, True])
def test_chi_square_names_its_kind_and_fisher_matches_scipy(table: np.ndarray, yates: bool) -> None:
    out = crosstab_statistics(table, ["no", "yes"], [0, 1], "smoking", "outcome", yates=yates)
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=yates)
    assert (out["chi2"], out["p_value"], out["df"]) == (pytest.approx(chi2), pytest.approx(p), dof)
    assert out["chi2_test"] == ("Pearson chi-square with Yates' continuity correction" if yates
                                else "Pearson chi-square, no continuity correction")
    assert out["fisher_exact_p"] == pytest.approx(stats.fisher_exact(table).pvalue)


def test_yates_changes_the_statistic_and_is_not_claimed_beyond_one_degree_of_freedom() -> None:
    small = TABLES[1]
    plain = crosstab_statistics(small, ["no", "yes"], [0, 1], "e", "o")
    corrected = crosstab_statistics(small, ["no", "yes"], [0, 1], "e", "o", yates=True)
    assert corrected["chi2"] < plain["chi2"] and corrected["p_value"] > plain["p_value"]
    wide = np.array([[10, 20, 30], [30, 20, 10]])
    out = crosstab_statistics(wide, ["no", "yes"], ["a", "b", "c"], "e", "o", yates=True)
    assert out["chi2"] == pytest.approx(stats.chi2_contingency(wide, correction=False)[0])
    assert "no continuity correction" in out["chi2_test"] and "fisher_exact_p" not in out


def test_a_zero_cell_says_why_or_and_rr_are_absent() -> None:
    out = crosstab_statistics(TABLES[3], ["no", "yes"], [0, 1], "smoking", "outcome")
    odds, rr, rd = (_by(out["measures"], m) for m in ("OR", "RR", "RD"))
    assert odds["estimate"] is None and odds["note"] == "not estimable: the cell (smoking=no, outcome=1) is 0"
    assert rr["estimate"] is None and rr["note"] == "not estimable: the cell (smoking=no, outcome=1) is 0"
    assert math.isinf(relative_risk(30, 40, 0, 60).relative_risk)  # what scipy would print instead
    assert rd["estimate"] == pytest.approx(30 / 40) and rd["ci_low"] is not None
    out = crosstab_statistics(TABLES[4], ["no", "yes"], [0, 1], "smoking", "outcome")
    odds, rr = _by(out["measures"], "OR"), _by(out["measures"], "RR")
    assert odds["estimate"] is None and "(smoking=no, outcome=0)" in odds["note"]
    assert rr["estimate"] == pytest.approx(relative_risk(7, 19, 25, 25).relative_risk)  # RR needs only a, c > 0


def test_an_exposure_level_without_rows_and_a_degenerate_rd() -> None:
    out = crosstab_statistics(np.array([[0, 0], [10, 30]]), ["no", "yes"], [0, 1], "e", "o")
    assert all(m["estimate"] is None and m["note"] == "not estimable: no rows with e=no" for m in out["measures"])
    assert "chi2" not in out and any("two non-empty rows" in n for n in out["notes"])
    out = crosstab_statistics(np.array([[20, 0], [0, 20]]), ["no", "yes"], [0, 1], "e", "o")
    rd = _by(out["measures"], "RD")
    assert rd["estimate"] == 1.0 and rd["ci_low"] is None and "0 or 1" in rd["note"]


def test_more_levels_each_exposure_against_the_first_and_the_last_outcome_against_the_rest() -> None:
    table = np.array([[50, 10, 15], [30, 12, 20], [20, 5, 40]])
    out = crosstab_statistics(table, ["current", "former", "never"], ["a", "b", "c"], "smoking", "y")
    labels = [m["label"] for m in out["measures"]]
    assert labels == [f"{m} (smoking={lv} vs current, y=c)" for lv in ("former", "never") for m in ("OR", "RR", "RD")]
    never = _by(out["measures"][3:], "RR")
    assert never["estimate"] == pytest.approx((40 / 65) / (15 / 75))


def test_through_parties_the_released_counts_give_the_same_oriented_statistics() -> None:
    table = np.array([[60, 20], [10, 30]])
    result, _ = run_in_process(_sites(table, ["no", "yes"], [0, 1]), "CROSSTAB smoking BY outcome", yates=True)
    assert [r[1:3] for r in result.rows[:2]] == table.tolist()
    rr = _by(result.extra["measures"], "RR")
    assert rr["label"] == "RR (smoking=yes vs no, outcome=1)" and rr["estimate"] == pytest.approx(3.0)
    assert result.extra["chi2"] == pytest.approx(stats.chi2_contingency(table, correction=True)[0])
    text = result.to_table()  # Yates by hand: 120 (|60 * 30 - 20 * 10| - 60)^2 / (80 * 40 * 70 * 50) = 25.41
    assert "Pearson chi-square with Yates' continuity correction: chi2 = 25.41, df = 1, p = 4.635e-07" in text
    assert "RR (smoking=yes vs no, outcome=1): 3.000 (95% CI 1.972 to 4.564, Katz)" in text
    plain, _ = run_in_process(_sites(table, ["no", "yes"], [0, 1]), "CROSSTAB smoking BY outcome")
    assert "Pearson chi-square, no continuity correction: chi2 = 27.43" in plain.to_table()


def test_suppressed_cells_give_no_statistic() -> None:
    table = np.array([[60, 2], [10, 30]])
    result, _ = run_in_process(_sites(table, ["no", "yes"], [0, 1]), "CROSSTAB smoking BY outcome", min_cell=5)
    assert "measures" not in result.extra and "chi2" not in result.extra and "fisher_exact_p" not in result.extra
    assert "withheld" in result.extra["statistics"] and "OR" not in result.to_table()


def test_the_95_percent_normal_quantile_written_out_is_scipys() -> None:
    from queries.epi import Z95

    assert Z95 == float(stats.norm.ppf(0.975))
