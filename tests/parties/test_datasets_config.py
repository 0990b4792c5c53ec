"""A node's [database] and [datasets]: read from its TOML, made into data sources, picked by FROM;
malformed entries are one clear error naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from parties.config import ConfigError, load_node
from parties.datasets_config import datasets_of
from queries.declared import Declared
from queries.engine import run_in_process
from queries.omop import COHORT_SQL, write_omop
from queries.parser import parse
from queries.source_duckdb import DuckDBSource
from queries.source_postgres import PostgresSource
from queries.sources import SourceError
from tests.queries.test_sql_pooled import _site

HEAD = """
[node]
name = "hospital-a"
listen = "127.0.0.1:50051"
dealer = "127.0.0.1:50050"
[tls]
ca = "certs/ca.pem"
cert = "certs/a.pem"
key = "certs/a.key"
[peers]
hospital-a = "127.0.0.1:50051"
hospital-b = "127.0.0.1:50052"
[audit]
path = "audit/a.jsonl"
"""


def _node(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "node-hospital-a.toml"
    path.write_text(HEAD + body)
    return path


def test_datasets_of_every_kind_and_the_default(tmp_path: Path) -> None:
    _site(30, 1).to_csv(tmp_path / "table.csv", index=False)
    _site(30, 2).to_parquet(tmp_path / "registry.parquet")
    node = load_node(_node(tmp_path, """
[data]
path = "table.csv"
[database]
url = "postgresql://pooled_reader@db.example.org:5432/clinic"
[datasets.cohort]
table = "public.cohort"
[datasets.diabetes]
query = "SELECT * FROM person"
[datasets.registry]
file = "registry.parquet"
[datasets.registry.schema]
sex = "category"
age = "float"
bmi = "float"
weight = "float"
height = "float"
admitted = "category"
name = "category"
visits = "float"
[datasets.local]
query = "SELECT 1 AS x"
files = "omop"
"""), check_files=False)
    assert [d.name for d in node.datasets] == ["cohort", "diabetes", "registry", "local"]
    datasets = datasets_of(node.datasets, node.data)
    assert datasets.default == "table"
    assert isinstance(datasets.sources["cohort"], PostgresSource)
    assert datasets.sources["cohort"].describe() == \
        "dataset 'cohort' (postgresql://pooled_reader@db.example.org:5432/clinic, table public.cohort)"
    assert isinstance(datasets.sources["diabetes"], PostgresSource)
    assert isinstance(datasets.sources["registry"], Declared)
    assert datasets.sources["registry"].schema().kind("age") == "float"
    assert isinstance(datasets.sources["local"], DuckDBSource)
    assert datasets.pick(parse("SELECT COUNT(*)")).name == "table"
    assert datasets.pick(parse("SELECT COUNT(*) FROM registry")).name == "registry"
    with pytest.raises(SourceError, match="no dataset 'elsewhere'"):
        datasets.pick(parse("CROSSTAB sex BY name FROM elsewhere"))


def test_a_site_whose_only_dataset_is_its_own_query_over_omop_files(tmp_path: Path) -> None:
    write_omop(400, 2, tmp_path / "omop", seed=1)
    answers = []
    for k in (1, 2):
        node = load_node(_node(tmp_path, f'[datasets.diabetes]\nquery = """{COHORT_SQL}"""\n'
                                         f'files = "omop/site_{k}"\n'), check_files=False)
        assert node.data is None
        answers.append(datasets_of(node.datasets, node.data))
    got, _ = run_in_process(answers, "SELECT sex, COUNT(*) AS n FROM diabetes GROUP BY sex", min_cell=1)
    people = pd.concat([pd.read_csv(tmp_path / "omop" / f"site_{k}" / "condition_occurrence.csv") for k in (1, 2)])
    diabetic = people[people["condition_concept_id"] == 201826]["person_id"].nunique()
    assert int(got.to_pandas()["n"].sum()) == diabetic
    got, _ = run_in_process(answers, "SELECT COUNT(*) AS n", min_cell=1)  # its only dataset is the default
    assert int(got.to_pandas()["n"].sum()) == diabetic


@pytest.mark.parametrize(("body", "key", "problem"), [
    ("[datasets.c]\nfile = 'a.csv'\ntable = 't'\n", "datasets.c", "exactly one of file, table or query"),
    ("[datasets.c]\ntable = 't'\n", "datasets.c.table", "a table lives in a database"),
    ("[datasets.\"two words\"]\nquery = 'SELECT 1'\n", "datasets.two words", "plain identifier"),
    ("[database]\nurl = 'mysql://u@h/db'\n[datasets.c]\ntable = 't'\n", "database.url", "postgresql://"),
    ("[datasets.c]\nfile = 'a.csv'\ncolour = 'red'\n", "datasets.c.colour", "unknown key"),
    ("[datasets.c]\ntable = 't'\nfiles = 'x'\ndatabase = 'postgresql://u@h/db'\n", "datasets.c.files",
     "only a query without a database"),
    ("", "data", "missing table (or declare [datasets])"),
])
def test_malformed_datasets_are_one_clear_error(tmp_path: Path, body: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"{re.escape(key)}: .*{re.escape(problem)}"):
        load_node(_node(tmp_path, body), check_files=False)


def test_a_dataset_named_as_the_data_file_is_refused(tmp_path: Path) -> None:
    node = load_node(_node(tmp_path, "[data]\npath = 'cohort.csv'\n[datasets.cohort]\nquery = 'SELECT 1 AS x'\n"),
                     check_files=False)
    with pytest.raises(ValueError, match="two datasets are named 'cohort'"):
        datasets_of(node.datasets, node.data)
