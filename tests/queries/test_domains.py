"""The private union of grouping domains: correct unions, collision retries, rounds, encodings."""

from __future__ import annotations

import pandas as pd
import pytest

from mpc.inprocess import make_contexts, run_parties
from protocols.material import KINDS
from queries import domains
from queries.errors import SchemaError
from queries.table import normalize_frame


def _run(sets: list[dict[str, list[object]]], **kwargs: object) -> tuple[list[dict], list[dict[str, int]]]:
    ctxs = make_contexts(len(sets), kinds=KINDS)
    out = run_parties(
        len(sets),
        lambda ctx, mine: domains.private_union(ctx, mine, b"salt", **kwargs),  # type: ignore[arg-type]
        args=sets,
        contexts=ctxs,
    )
    return out, [c.stats.as_dict() for c in ctxs]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_union_of_every_party_and_rounds(n: int) -> None:
    pool = ["never", "former", "current", "ünïcode", "x" * 40, "F", "M"]
    sets = [{"smoking": pool[i % 3 : i % 3 + 2 + i], "diabetes": [i % 2, 7] if i else []} for i in range(n)]
    got, stats = _run(sets)
    want_s = tuple(sorted({v for s in sets for v in s["smoking"]}))
    want_d = tuple(sorted({v for s in sets for v in s["diabetes"]}))
    assert all(g == {"smoking": want_s, "diabetes": want_d} for g in got)
    assert all(isinstance(v, int) for v in got[0]["diabetes"])
    # one successful attempt: three Z_2^64 equality tests (5 rounds each) + n + 4 (inputs shared by pair seeds)
    assert stats[0]["rounds"] == 15 + n + 4


def test_collisions_are_retried_with_more_buckets_and_never_open_values() -> None:
    # 40 values in 2 buckets must collide; 2^12 buckets separate them (for this salt)
    sets = [{"g": [f"v{i}" for i in range(0, 30)]}, {"g": [f"v{i}" for i in range(20, 40)]}]
    got, stats = _run(sets, bucket_bits=(1, 12))
    assert got[0] == {"g": tuple(sorted(f"v{i}" for i in range(40)))}
    # the first attempt stopped after its collision bit (no value opened): one round fewer
    assert stats[0]["rounds"] == (15 + 2 + 3) + (15 + 2 + 4)


def test_collision_across_parties_only_is_detected() -> None:
    # one bucket (bits=0): each party alone is collision-free, together they are not
    with pytest.raises(SchemaError, match="declare"):
        _run([{"g": ["a"]}, {"g": ["b"]}], bucket_bits=(0,))
    got, _ = _run([{"g": ["a"]}, {"g": ["a"]}, {"g": []}], bucket_bits=(0,))
    assert got[0] == {"g": ("a",)}


def test_empty_union() -> None:
    got, _ = _run([{"g": []}, {"g": []}])
    assert got[0] == {"g": ()}


def test_encoding_is_canonical_and_bounded() -> None:
    for v in ["", "a b", "ü" * 10, 0, -12345678901234, 2.5, -0.125]:
        assert domains.decode_value(domains.encode_value(v)) == v
    assert domains.encode_value(3.0) == domains.encode_value(3)  # a whole float is the integer
    with pytest.raises(SchemaError, match="declare") as info:
        domains.encode_value("secret-" + "y" * 80)
    assert "secret" not in str(info.value)


def test_local_values_and_declared_domains() -> None:
    frame = normalize_frame(pd.DataFrame({"s": ["b", None, "a", "b"], "k": [2, 1, None, 2]}))
    assert domains.local_values(frame, "s") == ("a", "b")
    assert domains.local_values(frame, "k") == (1, 2)
    frames = [frame, normalize_frame(pd.DataFrame({"s": ["c"], "k": [5]}))]
    got = run_parties(
        2,
        lambda ctx, f: domains.union_domains(ctx, f, ["s", "k"], declared={"k": (1, 2, 3)}),
        args=frames,
        kinds=KINDS,
    )
    assert got[0] == got[1] == {"s": ("a", "b", "c"), "k": (1, 2, 3)}
