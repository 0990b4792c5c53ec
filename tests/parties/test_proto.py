"""The checked-in generated gRPC code matches a fresh generation from pooled.proto."""

from __future__ import annotations

from pathlib import Path

from parties.proto.generate import GENERATED, PROTO_DIR, generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path)
    stale = [name for name in GENERATED if (tmp_path / name).read_bytes() != (PROTO_DIR / name).read_bytes()]
    assert not stale, f"run `python -m parties.proto.generate`: {stale} differ from pooled.proto"


def test_generated_service_module_imports_as_a_package() -> None:
    from parties.proto import pooled_pb2_grpc

    assert pooled_pb2_grpc.pooled__pb2.__name__ == "parties.proto.pooled_pb2"
