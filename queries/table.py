"""A party's table: loading it, the kinds of its columns, and checking the parties agree.

Columns are integer, float or categorical (strings). Missing values are NULLs. Every party
must hold the same columns with the same kinds; `check_schemas` compares the parties'
schemas (names and kinds only — metadata, never values) and names the first column that
disagrees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from queries.errors import SchemaError

KINDS = ("int", "float", "category")


@dataclass(frozen=True)
class Schema:
    """Column names and kinds, in file order; for a merged schema, also the columns some
    parties lack (`missing`: column -> the parties without it), which no query may read."""

    columns: tuple[tuple[str, str], ...]
    missing: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def kind(self, column: str) -> str:
        for name, kind in self.columns:
            if name == column:
                return kind
        self.check_present(column)
        raise SchemaError(f"unknown column {column!r}")

    def check_present(self, column: str) -> None:
        """SchemaError naming the parties whose tables lack `column`, if any do."""
        for name, parties in self.missing:
            if name == column:
                raise SchemaError(f"column {column!r} is not in the table at {', '.join(parties)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def to_json(self) -> str:
        return json.dumps([list(c) for c in self.columns])

    @staticmethod
    def from_json(text: str) -> Schema:
        return Schema(tuple((str(n), str(k)) for n, k in json.loads(text)))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _kind(series: pd.Series) -> str:
    if len(series) and series.isna().all() or not len(series) and series.dtype == object:
        return "empty"  # no values here: agrees with any kind
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "category"


def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer and float columns, string categories; NULLs as pandas NA."""
    out = frame.convert_dtypes()  # floats holding whole numbers become Int64; booleans become Int64 below
    for col in out.columns:
        if _kind(out[col]) == "empty":
            out[col] = out[col].astype(object)
        elif _kind(out[col]) == "category":
            out[col] = out[col].astype("string")
        elif _kind(out[col]) == "float":
            out[col] = out[col].astype("Float64")
        else:
            out[col] = out[col].astype("Int64")
    return out


def conform(
    frame: pd.DataFrame, kinds: Mapping[str, str] | None, domains: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """A normalised table made to match a site's declared schema, or SchemaError.

    `kinds` (column -> int | float | category, as a node's `[data.schema]`) must name
    exactly the table's columns; each column is converted to its declared kind when that
    loses nothing (int -> float, numbers -> category, an all-NULL column -> anything), so
    sites whose files happen to differ (a column without decimals at one site) still
    agree. `domains` (column -> allowed category values) rejects rows outside them. The
    errors name columns and counts, never a value: they reach the analyst and the peers.
    """
    out = frame.copy()
    if kinds is not None:
        missing = [c for c in kinds if c not in out.columns]
        extra = [c for c in out.columns if c not in kinds]
        if missing or extra:
            which = f"lacks the declared column {missing[0]!r}" if missing else f"has an undeclared column {extra[0]!r}"
            raise SchemaError(f"this site's table {which} ([data.schema])")
        for col, want in kinds.items():
            if want not in KINDS:
                raise SchemaError(f"declared kind of {col!r} must be one of {', '.join(KINDS)}, got {want!r}")
            have = _kind(out[col])
            if have == want:
                continue
            values = out[col]
            if want == "category":
                out[col] = values.astype("string")
            elif want == "float" and have in ("int", "empty"):
                out[col] = values.astype("Float64")
            elif want == "int" and have == "empty":
                out[col] = values.astype("Int64")
            elif want == "int" and have == "float" and bool(((values.dropna() % 1) == 0).all()):
                out[col] = values.astype("Int64")
            else:
                raise SchemaError(f"column {col!r} is declared {want} but holds {have} values ([data.schema])")
        out = out[list(kinds)]
    for col, allowed in (domains or {}).items():
        if col not in out.columns:
            raise SchemaError(f"a domain is declared for {col!r}, which the table lacks ([data.domains])")
        present = out[col].dropna().astype("string")
        outside = int((~present.isin(list(allowed))).sum())
        if outside:
            raise SchemaError(f"{outside} row(s) of column {col!r} hold a value outside its declared domain")
    return out


def load_table(path: str | Path) -> pd.DataFrame:
    """A party's table from CSV or Parquet, normalised (see `normalize_frame`)."""
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"data file not found: {p}")
    if p.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(p)
    elif p.suffix.lower() in (".csv", ".txt"):
        frame = pd.read_csv(p)
    else:
        raise SchemaError(f"unsupported data file type {p.suffix!r} (use .csv or .parquet)")
    return normalize_frame(frame)


def schema_of(frame: pd.DataFrame) -> Schema:
    return Schema(tuple((str(c), _kind(frame[c])) for c in frame.columns))


def check_schemas(schemas: Sequence[Schema], parties: Sequence[str] | None = None) -> Schema:
    """The common schema, or SchemaError naming the first column whose kinds disagree.

    A column that some parties lack is left out of the common schema and recorded in its
    `missing` with those parties' names (`parties`, by position; default "party 1", ...), so
    only a query that reads it fails. Integer and float columns agree as float (a site whose
    values happen to be whole numbers reads as integer); a kind disagreement never says which
    party differs or how.
    """
    names = list(parties) if parties is not None else [f"party {i + 1}" for i in range(len(schemas))]
    everywhere = set.intersection(*(set(s.names) for s in schemas))
    seen = list(dict.fromkeys(name for s in schemas for name in s.names))
    missing = tuple(
        (col, tuple(names[i] for i, s in enumerate(schemas) if col not in s.names))
        for col in seen if col not in everywhere
    )
    merged = []
    for name in (n for n in seen if n in everywhere):
        kinds = {s.kind(name) for s in schemas} - {"empty"}
        if not kinds:
            merged.append((name, "float"))
        elif kinds == {"int"}:
            merged.append((name, "int"))
        elif kinds <= {"int", "float"}:
            merged.append((name, "float"))
        elif kinds == {"category"}:
            merged.append((name, "category"))
        else:
            raise SchemaError(f"the parties' tables disagree on the type of column {name!r}")
    return Schema(tuple(merged), missing)


def numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column as float64 with NaN for NULL."""
    if frame[column].dtype == object:  # a column with no value at this party
        return np.full(len(frame), np.nan)
    return frame[column].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
