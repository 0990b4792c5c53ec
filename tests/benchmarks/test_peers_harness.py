"""The peer harness (benchmarks/peers) still runs CrypTen and MPyC, measures and checks them.

Optional: skipped unless torch, crypten and mpyc are importable (`bash benchmarks/peers/setup.sh`).
Each test starts the peer's real processes on 127.0.0.1 at a tiny size, so the harness
cannot rot unnoticed; all of them together take well under a minute.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from benchmarks.peers import run_peer
from benchmarks.peers._procs import PeerRunError, run_all, single_thread_env
from benchmarks.peers.crypten_bench import run_logreg_apis
from benchmarks.peers.crypten_party import defer_import, import_crypten

MISSING = [m for m in ("torch", "omegaconf", "mpyc") if importlib.util.find_spec(m) is None]
"""Looked up without importing them: importing torch at collection costs every run seconds, even the fast lane's."""

pytestmark = [pytest.mark.peers, pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)}")]


@pytest.fixture(scope="module")
def crypten():  # noqa: ANN201 - the crypten module, untyped
    try:
        return import_crypten()
    except ImportError as exc:  # crypten itself missing or broken against this torch
        pytest.skip(f"crypten not importable: {exc}")


def test_decode_fix_is_exact_where_crypten_041_is_off_by_one(crypten) -> None:  # noqa: ANN001
    import torch
    from crypten.encoder import FixedPointEncoder

    enc = FixedPointEncoder(precision_bits=16)
    # x = -k + s / 2^16 with 0 < s < k (just above a negative integer) is the original bug's trigger.
    raw = torch.tensor([-30 * 65536 + 5, -7 * 65536 + 3, -30 * 65536 - 1, -65536, -1, 5 * 65536 + 7], dtype=torch.long)
    want = raw.double().numpy() / 65536
    assert np.abs(enc.decode(raw).double().numpy() - want).max() < 1e-6
    original = FixedPointEncoder.decode._original(enc, raw).double().numpy()
    assert np.abs(original - want).max() == pytest.approx(1.0, abs=1e-6)  # the bug being fixed is real


def test_crypten_multiply_three_parties_with_ttp(crypten) -> None:  # noqa: ANN001
    row = run_peer("crypten", "multiply", parties=3, size=2000, repeats=2, timeout=50)
    assert row["provider"] == "TTP" and row["processes"] == 4
    assert row["max_abs_error"] < 1e-2  # 16 fractional bits, products up to 1e4
    assert len(row["seconds_runs"]) == 2
    # Beaver multiplication: the two ranks besides 0 each make 2 communication calls
    # (open e and d); rank 0 also talks to the TTP.
    assert row["rounds_per_party"][1:] == [2, 2]
    assert row["bytes_per_party"][1] == row["bytes_per_party"][2] >= 2 * 2000 * 8  # at least e and d


def test_crypten_logistic_tensor_api_trains_as_the_nn_one_with_fewer_calls(crypten) -> None:  # noqa: ANN001
    # one world (3 ranks + the TTP) trains with both APIs in turn
    rows = dict(zip(("tensor", "nn"), run_logreg_apis(3, 10, repeats=1, apis=("tensor", "nn"), epochs=1, timeout=120),
                    strict=True))
    for api, row in rows.items():
        assert row["api"] == api and row["provider"] == "TTP" and row["epochs"] == 1 and row["processes"] == 4
        # same initialisation and steps as float64 PyTorch: the same training accuracy, up to a row or two
        assert abs(row["train_accuracy"] - row["plaintext_same_training_accuracy"]) <= 2 / 569
    assert rows["tensor"]["rounds_per_party"][1] < rows["nn"]["rounds_per_party"][1]
    with pytest.raises(ValueError, match="tensor"):
        run_peer("crypten", "logistic", parties=3, size=10, repeats=1, api="keras")
    with pytest.raises(ValueError, match="tensor"):
        run_logreg_apis(3, 10, repeats=1, apis=("tensor", "keras"))


def test_a_deferred_module_is_imported_at_its_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("xmlrpc", "xmlrpc.client"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    defer_import("xmlrpc", ("client",))
    from xmlrpc import client  # the stand-in: nothing imported yet

    assert "xmlrpc.client" not in sys.modules and sys.modules["xmlrpc"].__file__.endswith("__init__.py")
    assert importlib.util.find_spec("xmlrpc").name == "xmlrpc"  # torch looks modules up this way
    assert client.ServerProxy.__name__ == "ServerProxy"  # its first use imports the real modules
    assert "xmlrpc.client" in sys.modules and sys.modules["xmlrpc"].client.ServerProxy is client.ServerProxy
    defer_import("not_a_module_anywhere")
    assert "not_a_module_anywhere" not in sys.modules


def test_mpyc_comparison_three_parties() -> None:
    row = run_peer("mpyc", "comparison", parties=3, size=300, repeats=1, timeout=40)
    assert row["threshold"] == 1 and row["mismatches"] == 0
    assert row["bytes_total"] > 0 and min(row["messages_per_party"]) > 0


def test_run_all_kills_what_outlives_its_deadline() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(PeerRunError, match="timed out"):
        run_all({"sleeper": (sleeper, single_thread_env())}, timeout=1.0)
