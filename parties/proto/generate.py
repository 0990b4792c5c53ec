"""Regenerate the checked-in gRPC/protobuf modules from `pooled.proto`.

Run `python -m parties.proto.generate` after editing the .proto file. grpc-tools writes
`import pooled_pb2` in the service module, which only works with this directory on
sys.path; `generate` rewrites it to a package import so the code works as
`parties.proto`. `tests/parties/test_proto.py` regenerates into a temporary directory
and fails if the checked-in files differ.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = "pooled.proto"
GENERATED = ("pooled_pb2.py", "pooled_pb2.pyi", "pooled_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Write the generated modules into `out_dir` and return their paths."""
    from grpc_tools import protoc  # build-time dependency, imported only when generating

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_DIR / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_DIR / PROTO_FILE}")
    grpc_module = out_dir / "pooled_pb2_grpc.py"
    text = grpc_module.read_text()
    text = re.sub(r"^import pooled_pb2 as", "from parties.proto import pooled_pb2 as", text, flags=re.M)
    grpc_module.write_text(text)
    return [out_dir / name for name in GENERATED]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_DIR, help="output directory (default: next to the .proto)")
    for path in generate(parser.parse_args(argv).out):
        print(path)


if __name__ == "__main__":
    main()
