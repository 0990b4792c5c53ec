#!/usr/bin/env bash
# Install the peer frameworks Pooled's benchmarks compare with: CrypTen 0.4.1 and MPyC 0.11.
#
# Idempotent: each step is skipped when the right version is already installed.
# `pip install crypten` fails as published (it requires the long-dead `sklearn` package),
# so the steps are, in this order:
#   1. torch==2.13.0          exactly this spec: on this machine pip resolves it to the CPU wheel;
#                             any other spec pulls gigabytes of CUDA. Elsewhere, point pip at a CPU
#                             wheel source through TORCH_PIP_ARGS (e.g. an --index-url of your choice).
#   2. crypten==0.4.1 --no-deps
#   3. pyyaml omegaconf onnx  (CrypTen's real run-time needs)
#   4. mpyc==0.11 gmpy2       (MPyC, with gmpy2 for speed)
#   5. scikit-learn           (breast_cancer data for the logistic-regression case)
# With torch 2.13, `import crypten` needs one private module alias; the harness sets it
# (benchmarks/peers/crypten_party.py: import_crypten). This script checks the import works.
set -euo pipefail
PY="${PYTHON:-python}"

installed() {  # installed <distribution> <version prefix or empty>: true if present (and matching)
    "$PY" - "$1" "${2:-}" <<'PYEOF'
import sys
from importlib import metadata
name, want = sys.argv[1], sys.argv[2]
try:
    have = metadata.version(name)
except metadata.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if not want or have == want or have.startswith(want + "+") else 1)
PYEOF
}

step() {  # step <distribution> <version or empty> <pip arguments...>
    local name="$1" version="$2"
    shift 2
    if installed "$name" "$version"; then
        echo "ok: $name ${version:-(any version)} already installed"
    else
        echo "installing: $*"
        "$PY" -m pip install "$@"
    fi
}

# shellcheck disable=SC2086  # TORCH_PIP_ARGS is a list of pip arguments
step torch 2.13.0 "torch==2.13.0" ${TORCH_PIP_ARGS:-}
step crypten 0.4.1 "crypten==0.4.1" --no-deps
for dist in pyyaml omegaconf onnx; do
    step "$dist" "" "$dist"
done
step mpyc 0.11 "mpyc==0.11"
step gmpy2 "" gmpy2
step scikit-learn "" scikit-learn

"$PY" - <<'PYEOF'
import importlib, sys
import torch
old = "torch.onnx._internal.registration"
try:
    importlib.import_module(old)
except ImportError:
    sys.modules[old] = importlib.import_module("torch.onnx._internal.torchscript_exporter.registration")
import crypten, mpyc
print(f"peers ready: torch {torch.__version__}, crypten {crypten.__version__}, mpyc {mpyc.__version__}")
PYEOF
