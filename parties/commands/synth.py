"""`pooled synth`: write a synthetic cohort, one CSV per party (never real patient data).

With `--omop`, each site's OMOP-shaped tables instead (person, condition_occurrence,
measurement: `queries.omop`) under OUT/site_K/, and with `--database URL` also into that
PostgreSQL database, one schema per site (site_1, site_2, ...; existing tables of those
names are replaced). It prints where each site's tables went.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

SQL_TYPES = {"int64": "BIGINT", "float64": "DOUBLE PRECISION"}


def register(sub: Any) -> None:
    p = sub.add_parser("synth", help="write a synthetic cohort, one CSV per party", description=__doc__)
    p.add_argument("--rows", type=int, required=True, help="patients in all")
    p.add_argument("--parties", type=int, required=True, help="number of sites")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--omop", action="store_true", help="OMOP-shaped tables per site (person, condition_occurrence, "
                                                       "measurement)")
    p.add_argument("--database", metavar="URL", help="with --omop: also write them into this PostgreSQL database "
                                                     "(postgresql://USER@HOST:PORT/DB), one schema per site")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.rows < args.parties or args.parties < 1:
        raise SystemExit("pooled synth: need at least one row per party")
    if args.database and not args.omop:
        raise SystemExit("pooled synth: --database goes with --omop")
    if not args.omop:
        from queries.synth import write_synthetic

        for path in write_synthetic(args.rows, args.parties, args.out, args.seed):
            print(path)
        return 0
    from queries.omop import omop_sites, write_omop

    for path in write_omop(args.rows, args.parties, args.out, args.seed):
        print(path)
    if args.database:
        for url in write_omop_postgres(args.database, omop_sites(args.rows, args.parties, args.seed)):
            print(url)
    return 0


def write_omop_postgres(url: str, sites: list[dict[str, Any]]) -> list[str]:
    """Write each site's tables into schema site_K of the database at `url`; each site's URL
    (its schema first on the search path), without the password."""
    import psycopg

    from queries.source_postgres import PostgresSource
    from queries.sources import SourceError

    safe = PostgresSource.from_url(url, table="person")
    try:
        conn = psycopg.connect(url.split("?", 1)[0], autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to the database at {safe.host}:{safe.port} as {safe.user!r}: "
                          f"{' '.join(str(exc).split())[:200]}") from None
    out = []
    with conn:
        for k, tables in enumerate(sites, start=1):
            schema = f"site_{k}"
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # type: ignore[arg-type]
            for name, frame in tables.items():
                columns = ", ".join(f'"{c}" {SQL_TYPES.get(str(t), "TEXT")}' for c, t in frame.dtypes.items())
                conn.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')  # type: ignore[arg-type]
                conn.execute(f'CREATE TABLE "{schema}"."{name}" ({columns})')  # type: ignore[arg-type]
                with conn.cursor() as cur, cur.copy(f'COPY "{schema}"."{name}" FROM STDIN') as copy:  # type: ignore[arg-type]
                    for row in frame.itertuples(index=False):
                        copy.write_row(list(row))
            out.append(f"postgresql://{safe.user}@{safe.host}:{safe.port}/{safe.database}"
                       f"?options=-csearch_path%3D{schema}")
    return out
