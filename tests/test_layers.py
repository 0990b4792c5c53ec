"""The package layering holds: imports point down only, and only parties/ speaks gRPC.
The test lanes hold too: a test that starts a Python process must carry a process marker.

parties/ -> queries/ -> protocols/ -> mpc/
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["mpc", "protocols", "queries", "parties"]
MPC_THIRD_PARTY = {"numpy", "cryptography"}


@functools.cache
def _scan(path: Path) -> tuple[frozenset[str], bool]:
    """The top-level packages a module imports, and whether it imports the generated protobuf messages;
    parsed once for every test here (the files do not change during a run; their trees are not kept)."""
    names: set[str] = set()
    messages = False
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
            messages |= any(a.name == "parties.proto.pooled_pb2" for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            messages |= node.module == "parties.proto" and any(a.name == "pooled_pb2" for a in node.names)
    return frozenset(names), messages


def _imports(path: Path) -> frozenset[str]:
    return _scan(path)[0]


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down_only(package: str) -> None:
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    offenders = [
        f"{p.relative_to(ROOT)} imports {sorted(_imports(p) & above)}" for p in _modules(package) if _imports(p) & above
    ]
    assert not offenders, "\n".join(offenders)


def test_mpc_uses_only_numpy_cryptography_and_the_standard_library() -> None:
    allowed = MPC_THIRD_PARTY | set(sys.stdlib_module_names) | {"mpc", "__future__"}
    offenders = [
        f"{p.relative_to(ROOT)}: {sorted(_imports(p) - allowed)}" for p in _modules("mpc") if _imports(p) - allowed
    ]
    assert not offenders, "\n".join(offenders)


def test_only_parties_imports_grpc_or_protobuf() -> None:
    network = {"grpc", "google"}
    offenders = [f"{p.relative_to(ROOT)}" for pkg in LAYERS[:-1] for p in _modules(pkg) if _imports(p) & network]
    assert not offenders, offenders


def test_only_the_wire_modules_build_protobuf_messages() -> None:
    """Servicers and clients go through the conversions; only these import the generated messages."""
    wire = {"parties/array_stream.py", "parties/peer_wire.py", "parties/dealer_wire.py", "parties/messages.py"}
    users = set()
    for p in _modules("parties"):
        if p.parent.name == "proto":  # the generated service module itself
            continue
        if _scan(p)[1]:
            users.add(str(p.relative_to(ROOT)))
    assert users == wire, sorted(users ^ wire)


def test_no_torch_in_the_engine() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for pkg in LAYERS for p in _modules(pkg) if {"torch", "crypten"} & _imports(p)
    ]
    assert not offenders, offenders


def test_a_test_without_a_process_marker_cannot_start_python() -> None:
    """tests/conftest.py swaps this Popen in while an unmarked test runs: the fast lane stays in-process."""
    from tests.conftest import refusing_popen, runs_python

    assert runs_python([sys.executable, "-m", "parties", "node"]) and runs_python("python3 -c pass")
    assert not runs_python(["fc-list", ":"]) and not runs_python([])
    with pytest.raises(pytest.fail.Exception, match="carries none of the markers network, bench, peers, subprocess"):
        refusing_popen("tests/x.py::test_x")([sys.executable, "-c", "pass"])
