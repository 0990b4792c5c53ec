"""Nodes started from their TOML files read their [datasets]: a file at one site, a PostgreSQL table at
the other, picked by FROM; a name a site lacks fails before anything is read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.parties.deployment import Deployment
from tests.pg import PgDatabase

pytestmark = pytest.mark.network


def test_a_file_site_and_a_postgres_site_answer_from_their_datasets(tmp_path: Path,
                                                                   pg_db: PgDatabase) -> None:
    d = Deployment(tmp_path / "datasets", ["s1", "s2"], ["alice"], rows=500)
    s2 = pd.read_csv(d.dir / "data" / "s2" / "table.csv")
    pg_db.load(s2, "registry")
    d.edit("s1", "datasets", registry={"file": "data/s1/table.csv"})
    d.edit("s2", "database", url=pg_db.url())
    d.edit("s2", "datasets", registry={"table": "registry"})
    query = "SELECT smoking, COUNT(*) AS n, AVG(bmi) AS m FROM registry WHERE age >= 40 GROUP BY smoking"
    with d:
        from_datasets = d.query_here("alice", query, "--format", "json")
        from_files = d.query_here("alice", query.replace(" FROM registry", ""), "--format", "json")
        unknown = d.query_here("alice", "SELECT COUNT(*) FROM registri")
    assert from_datasets.returncode == 0, from_datasets.stderr
    a, b = json.loads(from_datasets.stdout), json.loads(from_files.stdout)
    assert a["columns"] == b["columns"] == ["smoking", "n", "m"]
    assert sorted(r[:2] for r in a["rows"]) == sorted(r[:2] for r in b["rows"])
    assert all(abs(x[2] - y[2]) < 1e-6 for x, y in zip(sorted(a["rows"]), sorted(b["rows"])))
    assert unknown.returncode == 1 and "no dataset 'registri'" in unknown.stderr
