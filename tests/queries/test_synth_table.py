"""The synthetic cohort (deterministic, unequal sites, its known logistic model) and loading a
party's table (CSV and Parquet, kinds, NULLs, schema encoding and agreement)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import statsmodels.api as sm

from queries.errors import SchemaError
from queries.synth import TRUE_LOGIT, cohort, split, write_synthetic
from queries.table import Schema, check_schemas, load_table, normalize_frame, schema_of


def test_cohort_is_deterministic_given_the_seed() -> None:
    pd.testing.assert_frame_equal(cohort(300, seed=4), cohort(300, seed=4))
    assert not cohort(300, seed=4).equals(cohort(300, seed=5))
    parts = split(cohort(300, seed=4), 3, seed=4)
    again = split(cohort(300, seed=4), 3, seed=4)
    for p, q in zip(parts, again):
        pd.testing.assert_frame_equal(p, q)


def test_split_is_unequal_complete_and_never_empty() -> None:
    frame = cohort(1000, seed=1)
    parts = split(frame, 4, seed=1)
    sizes = [len(p) for p in parts]
    assert sum(sizes) == 1000 and min(sizes) >= 1 and len(set(sizes)) > 1
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame)
    assert [len(p) for p in split(frame.iloc[:3], 3)] == [1, 1, 1]
    with pytest.raises(ValueError):
        split(frame.iloc[:2], 3)


def test_cohort_columns_missing_values_and_known_model() -> None:
    frame = cohort(20000, seed=7)
    assert schema_of(frame).columns == (
        ("age", "int"), ("sex", "category"), ("bmi", "float"), ("smoking", "category"),
        ("diabetes", "int"), ("sbp", "int"), ("chol", "float"), ("outcome", "int"),
    )
    assert 0.02 < frame.bmi.isna().mean() < 0.06 and frame.age.notna().all()
    data = frame.dropna(subset=["bmi", "sbp"])
    x = pd.DataFrame(
        {
            "age": data.age.astype(float), "sex[M]": (data.sex == "M").astype(float), "bmi": data.bmi.astype(float),
            "smoking[current]": (data.smoking == "current").astype(float),
            "smoking[former]": (data.smoking == "former").astype(float),
            "diabetes": data.diabetes.astype(float), "sbp": data.sbp.astype(float),
        }
    )
    fit = sm.Logit(data.outcome.astype(float).to_numpy(), sm.add_constant(x).to_numpy()).fit(disp=0)
    names = ["intercept", *x.columns]
    for name, est, se in zip(names, fit.params, fit.bse):
        assert abs(est - TRUE_LOGIT[name]) < 4 * se, name  # the outcome follows the stated model


def test_write_synthetic_round_trips_through_load_table(tmp_path: Path) -> None:
    paths = write_synthetic(200, 3, tmp_path / "cohort", seed=2)
    assert [p.name for p in paths] == ["site_1.csv", "site_2.csv", "site_3.csv"]
    loaded = [load_table(p) for p in paths]
    for got, want in zip(loaded, split(cohort(200, seed=2), 3, seed=2)):
        assert schema_of(got) == schema_of(want)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    check_schemas([schema_of(f) for f in loaded])


def test_parquet_and_kind_inference(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {"i": [1.0, None, 3.0], "f": [0.5, 1.0, None], "s": ["a", None, "b"], "empty": [None, None, None]}
    )
    raw.to_parquet(tmp_path / "t.parquet")
    raw.to_csv(tmp_path / "t.csv", index=False)
    for name in ("t.parquet", "t.csv"):
        frame = load_table(tmp_path / name)
        kinds = dict(schema_of(frame).columns)
        assert kinds == {"i": "int", "f": "float", "s": "category", "empty": "empty"}, name
        assert frame.i.isna().tolist() == [False, True, False] and frame.s.isna().sum() == 1
    with pytest.raises(SchemaError, match="unsupported"):
        (tmp_path / "t.xlsx").write_text("x")
        load_table(tmp_path / "t.xlsx")
    with pytest.raises(SchemaError, match="not found"):
        load_table(tmp_path / "missing.csv")


def test_schema_encoding_and_agreement() -> None:
    a = schema_of(normalize_frame(pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5], "s": ["u", "v"]})))
    assert Schema.from_json(a.to_json()) == a
    assert a.fingerprint() == Schema.from_json(a.to_json()).fingerprint() and len(a.fingerprint()) == 64
    whole = schema_of(normalize_frame(pd.DataFrame({"x": [1.5, 2.0], "y": [1.0, 2.0], "s": ["w", None]})))
    merged = check_schemas([a, whole])
    assert dict(merged.columns) == {"x": "float", "y": "float", "s": "category"}  # int + float agree as float
    empty = schema_of(normalize_frame(pd.DataFrame({"x": [None], "y": [None], "s": [None]})))
    assert check_schemas([a, empty]) == a  # a party with no values in a column agrees with any kind
    renamed = Schema((("x", "int"), ("y", "float"), ("t", "category")))
    merged = check_schemas([a, renamed], ["h1", "h2"])
    assert merged.names == ("x", "y") and dict(merged.missing) == {"s": ("h2",), "t": ("h1",)}
    with pytest.raises(SchemaError, match="'s' is not in the table at h2") as info:
        merged.kind("s")
    assert not any(word in str(info.value) for word in ("int", "float", "category", "'t'"))  # no kinds
    retyped = Schema((("x", "category"), ("y", "float"), ("s", "category")))
    with pytest.raises(SchemaError, match="type of column 'x'"):
        check_schemas([a, a, retyped])
