"""A DuckDB source keeps one database for its statements: opened once, each statement on a cursor that
reads only the dataset's file, and what changed on disk read anew; a database file is not held open."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from queries.source_duckdb import DuckDBSource
from queries.sources import open_source


def _sum(source: DuckDBSource, column: str) -> int:
    return int(source.run(f"SELECT SUM({column}) FROM {source.relation}", [pa.int64()]).column(0)[0].as_py())


def test_a_file_source_opens_its_database_once_and_every_cursor_reads_only_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "other.csv").write_text("secret\n7\n")
    source = open_source(tmp_path / "t.csv")
    assert isinstance(source, DuckDBSource)
    opened: list[object] = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or real(*a, **k))
    assert source.schema().names == ("x", "y") and _sum(source, "x") == 4 and _sum(source, "y") == 6
    assert len(opened) == 1
    for sql in (f"SELECT * FROM read_csv('{tmp_path / 'other.csv'}')", "SET enable_external_access = true"):
        con = source._connect()
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
        con.close()
    assert source.run(f"SELECT 1 / 0 AS q, 1 // 0 AS r FROM {source.relation}", [pa.float64(), pa.int64()]).column(
        1).to_pylist() == [None, None]  # division by zero gives NULL on every cursor
    assert len(opened) == 1


def test_a_changed_file_is_read_as_it_is_now(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x\n1\n2\n")
    source = open_source(path)
    assert isinstance(source, DuckDBSource) and _sum(source, "x") == 3
    path.write_text("x\n10\n20\n30\n")
    assert _sum(source, "x") == 60


def test_a_sites_sql_sees_a_file_that_came_or_changed_after_its_first_statement(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n2\n")
    source = DuckDBSource.query("SELECT * FROM a", "ds", tmp_path)
    assert _sum(source, "x") == 3
    (tmp_path / "a.csv").write_text("x,z\n5,1\n6,1\n")
    assert _sum(source, "x") == 11 and _sum(source, "z") == 2
    (tmp_path / "b.csv").write_text("x\n100\n")
    both = DuckDBSource.query("SELECT x FROM a UNION ALL SELECT x FROM b", "ds", tmp_path)
    assert _sum(both, "x") == 111
    (tmp_path / "c.csv").write_text("x\n1000\n")
    assert _sum(source, "x") == 11
    con = source._connect()  # the new file's view is there for the site's SQL
    assert con.execute("SELECT SUM(x) FROM c").fetchall() == [(1000,)]
    con.close()


def test_a_database_file_is_not_held_open_between_statements(tmp_path: Path) -> None:
    path = tmp_path / "site.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    source = DuckDBSource.table(path, "t")
    assert _sum(source, "x") == 1
    with duckdb.connect(str(path)) as writer:  # fails while a read-only connection holds the file
        writer.execute("INSERT INTO t VALUES (41)")
    assert _sum(source, "x") == 42
