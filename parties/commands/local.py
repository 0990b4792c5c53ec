"""`pooled local`: run one query over a consortium started on this machine, one party per --data.

Each --data is a CSV or Parquet file or a PostgreSQL table
(postgresql://USER@HOST:PORT/DB?table=NAME; the password from PGPASSWORD or ~/.pgpass), and
several may follow one --data: `--data a.csv b.parquet postgresql://...`. A file's dataset is
named after its stem and a database's after its table, for FROM, unless the item names it:
`--data cohort=site_1.csv cohort=site_2.csv "SELECT ... FROM cohort"`. A query without FROM
reads each party's one dataset.

Real processes (a dealer and one node per data file) talk gRPC over mutual TLS on
127.0.0.1; the analyst's client reconstructs the result, prints it, and every process is
stopped before the command returns. The query and every --data item are checked before any
process starts; then the processes' code loads in one launcher process (`parties.launcher`)
while this one loads the analyst's. `--disclosure dp --epsilon E --bound COL=MIN:MAX` runs
every site under differential privacy, the query spending E.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parties.commands.privacy_flags import add_site_flags, site_args

if TYPE_CHECKING:
    from queries.result import Result

ANALYST_MODULES = ("parties.client", "queries.engine", "queries.result")
"""What the analyst's side loads to ask and print, loaded while the consortium's processes start."""


def register(sub: Any) -> None:
    p = sub.add_parser("local", help="run a query over a local consortium, one party per --data", description=__doc__)
    p.add_argument("--data", action="extend", nargs="+", required=True, metavar="[NAME=]FILE_OR_URL",
                   help="parties' tables: CSV or Parquet files, or postgresql://USER@HOST:PORT/DB?table=NAME; "
                   "NAME= names the dataset for FROM (default: the file's stem, the table's name)")
    p.add_argument("--min-cell", type=int, default=5, help="minimum cell size (each party's; the largest applies)")
    p.add_argument("--allow-extremes", action="store_true",
                   help="every site releases MIN, MAX and QUANTILE at 0 or 1 (refused by default)")
    add_site_flags(p)
    p.add_argument("--epsilon", type=float, help="under --disclosure dp: the epsilon of the query (default 1)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--yates", action="store_true",
                   help="CROSSTAB: chi-square with Yates' continuity correction (default: uncorrected Pearson)")
    p.add_argument("query", nargs="?", help='the query, e.g. "SELECT COUNT(*), AVG(bmi) GROUP BY sex" '
                   "(it may also come last after the --data items)")
    p.set_defaults(run=run)


def _is_data(item: str) -> bool:
    """Whether an item after --data names a table (a URL, or a file name with a table's suffix)."""
    path = Path(item.partition("=")[2] or item)  # NAME=FILE names a table too
    return "://" in item or path.suffix.lower() in (".csv", ".txt", ".tsv", ".parquet", ".pq")


def run(args: argparse.Namespace) -> int:
    import importlib

    from parties.analyst import answer_to_stdout, ask, checked_query
    from parties.local import LocalConsortium
    from queries.source_names import SourceError, named_spec

    if args.query is None and args.data and not _is_data(args.data[-1]):
        args.query = args.data.pop()  # `--data a.csv b.csv "SELECT ..."`: the last item is the query
    if args.query is None:
        print("pooled local: give the query", file=sys.stderr)
        return 2
    stmt = checked_query("pooled local", args.query, args.epsilon)
    if stmt is None:
        return 2
    if args.epsilon is not None and args.disclosure != "dp":
        print("pooled local: --epsilon is what a query spends under differential privacy: "
              "add --disclosure dp (and --bound COL=MIN:MAX for its numeric columns)", file=sys.stderr)
        return 2
    if len(args.data) < 2:
        print("pooled local: give at least two --data files (one per party)", file=sys.stderr)
        return 2
    for item in args.data:
        try:
            _, spec = named_spec(item)
        except SourceError as exc:
            print(f"pooled local: {exc}", file=sys.stderr)
            return 2
        if "://" not in spec and not Path(spec).exists():
            print(f"pooled local: no such file: {spec}", file=sys.stderr)
            return 2
        if spec.startswith(("postgresql://", "postgres://")):
            from queries.source_postgres import PostgresSource

            try:
                PostgresSource.from_url(spec)  # a malformed URL fails here, before any process starts
            except SourceError as exc:
                print(f"pooled local: {exc}", file=sys.stderr)
                return 2
    names = [f"site{i}" for i in range(1, len(args.data) + 1)]
    node_args = ["--min-cell", str(args.min_cell)] + (["--allow-extremes"] if args.allow_extremes else [])
    node_args += site_args(args)
    consortium = LocalConsortium(names, data=dict(zip(names, args.data)), node_args=node_args)

    def get() -> Result:
        with consortium:
            with consortium.client() as client:
                return ask(client, names, args.query, min_cell=args.min_cell, yates=args.yates, stmt=stmt,
                           epsilon=args.epsilon)[0]

    try:
        consortium.prepare()  # the launcher loads the nodes' code while this process loads the analyst's
        for module in ANALYST_MODULES:
            importlib.import_module(module)
        return answer_to_stdout("pooled local", get, args.format)
    finally:
        consortium.stop()
