"""`pooled query`: ask the consortium one query as an analyst, authenticated by its certificate.

Reads the analyst's TOML file (`pooled init` writes `analyst-NAME.toml`: its certificate
and every party's address in rank order), sends the query to every node over mutual TLS,
and prints the result the analyst alone reconstructs (under differential privacy, each number
with its noise standard deviation and 95% interval; `--epsilon` sets what the query spends).
The analyst never talks to the dealer. A refusal or a failure at any node ends the command with that node's reason.

Exit codes: 0 answered, 1 the consortium refused or failed, 2 a bad query or configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("query", help="ask the consortium a query (analyst client)", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="the analyst's TOML file (pooled init writes one)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--yates", action="store_true",
                   help="CROSSTAB: chi-square with Yates' continuity correction (default: uncorrected Pearson)")
    p.add_argument("--min-cell", type=int, default=0, help="ask for a larger minimum cell size than the sites'")
    p.add_argument("--epsilon", type=float,
                   help="under differential privacy: the epsilon this query spends (default: the sites' default)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (default 600)")
    p.add_argument("query", help='the query, e.g. "SELECT COUNT(*), AVG(bmi) GROUP BY sex"')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.analyst import answer_to_stdout, ask, checked_query
    from parties.client import ConsortiumClient
    from parties.config import ConfigError, load_analyst
    from parties.tls import TlsMaterial
    from queries.result import Result

    stmt = checked_query("pooled query", args.query, args.epsilon)
    if stmt is None:
        return 2
    try:
        settings = load_analyst(args.config)
        tls = TlsMaterial.load(settings.tls.cert_files)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"pooled query: {exc}", file=sys.stderr)
        return 2
    def get() -> Result:
        with ConsortiumClient(tls, dict(settings.parties)) as client:
            return ask(client, settings.roster, args.query, min_cell=args.min_cell, call_timeout_s=args.timeout,
                       yates=args.yates, stmt=stmt, epsilon=args.epsilon)[0]

    return answer_to_stdout("pooled query", get, args.format, args.epsilon)
