"""A site's declared schema ([data.schema], [data.domains]) applied to its table: convert or refuse clearly."""

from __future__ import annotations

import pandas as pd
import pytest

from queries.errors import SchemaError
from queries.table import conform, normalize_frame, schema_of


def _frame() -> pd.DataFrame:
    return normalize_frame(pd.DataFrame({"age": [40, 50, None], "sbp": [120, 130, 140], "sex": ["F", "M", "F"],
                                         "code": [1, 2, 3], "empty": [None, None, None]}))


def test_lossless_conversions_make_sites_agree() -> None:
    kinds = {"age": "int", "sbp": "float", "sex": "category", "code": "category", "empty": "float"}
    out = conform(_frame(), kinds)
    assert dict(schema_of(out).columns) == {**kinds, "empty": "empty"}  # all NULL: agrees with any site
    assert str(out["empty"].dtype) == "Float64"
    assert out.sbp.tolist() == [120.0, 130.0, 140.0] and out.code.tolist() == ["1", "2", "3"]
    assert out.age.isna().sum() == 1


def test_integral_floats_may_be_declared_int_but_fractions_may_not() -> None:
    frame = normalize_frame(pd.DataFrame({"x": [1.5, 2.0]}))
    with pytest.raises(SchemaError, match="'x' is declared int but holds float"):
        conform(frame, {"x": "int"})
    assert conform(normalize_frame(pd.DataFrame({"x": [1.0, None]}).astype("Float64")), {"x": "int"}).x.dtype == "Int64"


def test_missing_and_undeclared_columns_are_named() -> None:
    kinds = {"age": "int", "sbp": "float", "sex": "category", "code": "int"}
    with pytest.raises(SchemaError, match="undeclared column 'empty'"):
        conform(_frame(), kinds)
    with pytest.raises(SchemaError, match="lacks the declared column 'bmi'"):
        conform(_frame(), {**kinds, "empty": "float", "bmi": "float"})
    with pytest.raises(SchemaError, match="declared float but holds category"):
        conform(_frame(), {**kinds, "empty": "float", "sex": "float"})


def test_values_outside_a_declared_domain_are_counted_not_quoted() -> None:
    frame = normalize_frame(pd.DataFrame({"sex": ["F", "M", "X", "secret-value", None]}))
    with pytest.raises(SchemaError) as info:
        conform(frame, None, {"sex": ["F", "M"]})
    assert "2 row(s) of column 'sex'" in str(info.value) and "secret" not in str(info.value)
    assert conform(frame.iloc[[0, 1, 4]], None, {"sex": ["F", "M"]}).shape == (3, 1)
