"""Data sources read by embedded DuckDB (CSV, Parquet, a DuckDB database, a site's own SQL): the same
answers as the tables in memory, only what a plan needs read, and clear errors before anything is read."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from queries.declared import Declared
from queries.engine import plan_query, run_in_process
from queries.errors import QueryError, SchemaError
from queries.parser import parse
from queries.source_duckdb import DuckDBSource
from queries.sources import Datasets, FrameSource, Source, SourceError, SqlSource, open_source
from queries.table import Schema, check_schemas, normalize_frame
from tests.queries.test_sql_pooled import _site, assert_matches, reference

QUERIES = [
    "SELECT sex, COUNT(*) AS n, AVG(bmi) AS m, SUM(age) AS s FROM cohort WHERE age >= 40 GROUP BY sex",
    "SELECT CASE WHEN age >= 55 THEN 'older' ELSE 'younger' END AS band, COUNT(*) AS n, "
    "AVG(weight / (height * height)) AS b FROM cohort WHERE name IS NOT NULL AND name NOT LIKE 'c%' "
    "AND CAST(admitted AS DATE) >= DATE '2020-03-01' GROUP BY band",
    "SELECT EXTRACT(MONTH FROM CAST(admitted AS DATE)) AS month, COUNT(*) AS n FROM cohort "
    "WHERE visits / (visits - visits) > 0 OR age > 40 GROUP BY month",
    "SELECT sex, MEDIAN(age) AS med, MIN(age) AS lo FROM cohort GROUP BY sex",
]


def _crosstab_reference(pooled: pd.DataFrame) -> pd.DataFrame:
    rows = pooled[pooled.age > 30]
    table = pd.crosstab(rows.sex, rows.name, margins=True, margins_name="total").reset_index()
    table.columns.name = None
    return table


def _linear_reference(pooled: pd.DataFrame) -> pd.DataFrame:
    rows = pooled[pooled.height > 1.6].astype({"weight": float, "age": float})
    fit = smf.ols("weight ~ age + C(sex)", data=rows).fit()  # incomplete rows dropped, as Pooled drops them
    ci = fit.conf_int()
    return pd.DataFrame({"term": fit.params.index, "coef": fit.params.values, "std_err": fit.bse.values,
                         "t": fit.tvalues.values, "p_value": fit.pvalues.values, "ci_low": ci[0].values,
                         "ci_high": ci[1].values})


MODELS = {
    "CROSSTAB sex BY name FROM cohort WHERE age > 30": _crosstab_reference,
    "LINEAR weight ~ age + C(sex) FROM cohort WHERE height > 1.6": _linear_reference,
}
"""A CROSSTAB and a model over sources, each with its plaintext answer on the pooled rows (pandas'
crosstab with margins; statsmodels' OLS)."""


@pytest.fixture(scope="module")
def frames() -> list[pd.DataFrame]:
    """Two sites: one in a CSV file, one in a Parquet file."""
    return [_site(70, 1), _site(90, 2)]


@pytest.fixture(scope="module")
def files(frames: list[pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("sites")
    paths = []
    for i, (frame, suffix) in enumerate(zip(frames, (".csv", ".parquet"))):
        (root / f"s{i}").mkdir()
        path = root / f"s{i}" / f"cohort{suffix}"
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def sources(files: list[Path]) -> list[Source]:
    """The files opened once, as a node opens its source once for every query (each keeps its schema)."""
    return [open_source(p) for p in files]


@pytest.mark.parametrize("query", QUERIES)
def test_files_give_the_answers_of_the_tables_in_memory(query: str, frames: list[pd.DataFrame],
                                                        sources: list[Source]) -> None:
    """Against DuckDB over the tables in memory, pooled (`test_sql_pooled` holds the tables in memory to it)."""
    from_files, _ = run_in_process(sources, query, min_cell=1)
    duck = query.replace("visits / (visits - visits)", "visits / NULLIF(visits - visits, 0)")
    assert_matches(from_files.to_pandas(), reference(pd.concat(frames, ignore_index=True), duck), ordered=False)


def test_crosstab_and_a_model_from_files(frames: list[pd.DataFrame], sources: list[Source]) -> None:
    """Against pandas and statsmodels on the tables in memory, pooled."""
    pooled = pd.concat(frames, ignore_index=True)
    for query, plaintext in MODELS.items():
        got, _ = run_in_process(sources, query, min_cell=1)
        assert_matches(got.to_pandas(), plaintext(pooled), ordered=True)


def test_a_file_is_read_by_duckdb_and_only_what_the_plan_needs_leaves_it(
        files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("a CSV was read by pandas"))
    source = open_source(files[0])
    assert isinstance(source, SqlSource) and source.name == "cohort"
    stmt = parse("SELECT sex, AVG(bmi) FROM cohort WHERE age > 60 AND name LIKE 'a%' GROUP BY sex")
    plan = plan_query(stmt, source.schema(), {"sex": ("F", "M")}, 1)
    seen: list[str] = []
    real = source.run
    monkeypatch.setattr(source, "run", lambda sql, types: seen.append(sql) or real(sql, types))
    rows = source.rows(plan)
    assert list(rows.frame.columns) == ["sex", "bmi"]  # not age, name or any other column
    assert len(seen) == 1 and " WHERE " in seen[0] and "LIKE 'a%'" in seen[0]
    frame = _site(70, 1)
    assert len(rows.frame) == int(((frame["age"] > 60) & frame["name"].str.startswith("a").fillna(False)).sum())


def test_an_unknown_dataset_fails_before_anything_is_read(files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    sources = [open_source(p) for p in files]
    for s in sources:
        monkeypatch.setattr(s, "run", lambda *a: pytest.fail("a source was read"))
        monkeypatch.setattr(s, "schema", lambda: pytest.fail("a source was read"))
    with pytest.raises(SourceError, match="this site has no dataset 'patients'"):
        run_in_process(sources, "SELECT COUNT(*) FROM patients", min_cell=1)


def test_datasets_by_name_and_the_default(files: list[Path]) -> None:
    a, b = DuckDBSource.file(files[0], "first"), DuckDBSource.file(files[1], "second")
    both = Datasets({"first": a, "second": b}, default="first")
    assert both.pick(parse("SELECT COUNT(*) FROM second")) is b
    assert both.pick(parse("CROSSTAB sex BY name")) is a
    with pytest.raises(SourceError, match="several datasets: name one with FROM"):
        Datasets({"first": a, "second": b}).pick(parse("SELECT COUNT(*)"))
    anonymous = Datasets.of(FrameSource(_site(5, 1)))
    assert anonymous.pick(parse("SELECT COUNT(*) FROM whatever")).name == ""  # a table in memory: any name


def test_an_empty_csv_column_agrees_with_any_kind_and_a_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,\n2,\n")
    (tmp_path / "b.csv").write_text("x,y\n1,2.5\n2,3\n")
    a, b = open_source(tmp_path / "a.csv"), open_source(tmp_path / "b.csv")
    assert a.schema() == Schema((("x", "int"), ("y", "empty")))
    assert check_schemas([a.schema(), b.schema()]).columns == (("x", "int"), ("y", "float"))
    with pytest.raises(SourceError, match=r"gone\.csv.*no such file"):
        open_source(tmp_path / "gone.csv").schema()
    with pytest.raises(SourceError, match="unsupported data file type"):
        open_source(tmp_path / "t.xlsx")
    with pytest.raises(SourceError, match="unsupported data source mysql://"):
        open_source("mysql://u@h/db?table=t")


def test_a_file_that_does_not_parse_is_one_error_that_quotes_no_value(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_text("age,secretvalue\n1,2\n")
    with pytest.raises(SourceError, match="cannot be read") as info:
        open_source(tmp_path / "bad.parquet").schema()
    assert "secretvalue" not in str(info.value) and "bad.parquet" in str(info.value)


def test_a_late_csv_row_that_breaks_its_column_type_is_named_without_its_value(tmp_path: Path) -> None:
    rows = "".join(f"{i},a\n" for i in range(30000))  # beyond DuckDB's sniffing sample
    (tmp_path / "late.csv").write_text("x,y\n" + rows + "secret2.5,b\n")
    with pytest.raises(SourceError, match="does not fit the column types") as info:
        open_source(tmp_path / "late.csv").schema()
    assert "secret" not in str(info.value)


def test_a_failure_on_the_rows_is_a_query_error_without_values(sources: list[Source]) -> None:
    with pytest.raises(QueryError, match="could not be converted") as info:
        run_in_process(sources, "SELECT SUM(CAST(name AS INTEGER)) AS s FROM cohort", min_cell=1)
    assert "alice" not in str(info.value) and "carol" not in str(info.value)


def test_a_sites_own_sql_joins_its_files(tmp_path: Path) -> None:
    (tmp_path / "person.csv").write_text("person_id,sex\n1,F\n2,M\n3,F\n")
    (tmp_path / "visit.csv").write_text("person_id,days\n1,3\n1,4\n3,1\n")
    view = DuckDBSource.query("SELECT p.person_id, p.sex, v.days FROM 'person.csv' p JOIN 'visit.csv' v "
                              "USING (person_id)", "visits", tmp_path)
    got, _ = run_in_process([view, view], "SELECT sex, COUNT(*) AS n, SUM(days) AS d FROM visits GROUP BY sex",
                            min_cell=1)
    assert got.to_pandas().to_dict("list") == {"sex": ["F"], "n": [6], "d": [16]}
    with pytest.raises(SourceError, match="cannot be opened"):
        DuckDBSource.query("SELECT * FROM 'absent.csv'", "x", tmp_path).schema()


def test_a_duckdb_database_table(tmp_path: Path, frames: list[pd.DataFrame]) -> None:
    path = tmp_path / "site.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("f", frames[0])
        con.execute("CREATE TABLE cohort AS SELECT * FROM f")
    source = open_source(f"duckdb://{path}?table=cohort")
    assert source.name == "cohort"
    got, _ = run_in_process([source, frames[1]], QUERIES[0], min_cell=1)
    want = reference(pd.concat(frames[:2], ignore_index=True), QUERIES[0])  # DuckDB on the tables in memory
    assert_matches(got.to_pandas(), want, ordered=False)


def test_a_declared_schema_is_checked_in_the_source(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("age,sex,w\n40,F,1.0\n50,M,2.0\n61,X,3.5\n")
    source = open_source(tmp_path / "t.csv")
    kinds = {"age": "float", "sex": "category", "w": "float"}
    assert Declared(source, kinds).schema() == Schema(tuple(kinds.items()))
    with pytest.raises(SchemaError, match="declared int but holds float"):
        Declared(source, {**kinds, "w": "int"}).schema()
    with pytest.raises(SchemaError, match="undeclared column 'w'"):
        Declared(source, {"age": "int", "sex": "category"}).schema()
    with pytest.raises(SchemaError, match="1 row\\(s\\) of column 'sex' hold a value outside") as info:
        Declared(source, kinds, {"sex": ["F", "M"]}).schema()
    assert "X" not in str(info.value)
    (tmp_path / "whole.csv").write_text("age,w\n40,1.0\n50,2.0\n")
    assert Declared(open_source(tmp_path / "whole.csv"), {"age": "int", "w": "int"}).schema().kind("w") == "int"


def test_normalised_frames_and_files_agree_on_kinds(files: list[Path], frames: list[pd.DataFrame]) -> None:
    from queries.table import schema_of

    for path, frame in zip(files, frames):
        assert open_source(path).schema() == schema_of(normalize_frame(frame))


def test_a_files_schema_is_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x\n1\n")
    source = open_source(path)
    assert source.schema().columns == (("x", "int"),)
    path.write_text("x,y\n1,a\n2,b\n")  # another size
    assert source.schema().columns == (("x", "int"), ("y", "category"))
