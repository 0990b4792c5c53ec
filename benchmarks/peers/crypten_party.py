"""One CrypTen 0.4.1 process of a peer measurement: a computing rank, or the trusted third party.

Started by `benchmarks.peers.crypten_bench` (CrypTen's multiprocess-launcher pattern: one
process per rank, gloo over 127.0.0.1, environment RANK / WORLD_SIZE / RENDEZVOUS /
DISTRIBUTED_BACKEND), never imported by Pooled. The job (operation, size, repetitions,
provider, seed) arrives as JSON in $POOLED_PEER_JOB; each computing rank prints its
timings, CrypTen's own communication counters and (rank 0) the accuracy against numpy as
one JSON line (see `_procs.emit`). Rank == WORLD_SIZE is CrypTen's `TTPServer`.

Two fixes are applied to CrypTen before it runs:

1. torch 2.13 moved `torch.onnx._internal.registration`, which CrypTen imports; the old
   name is pointed at the new module before `import crypten`.
2. CrypTen 0.4.1's `FixedPointEncoder.decode` floor-divides negative integers by
   2^16 - 1 instead of 2^16, so a revealed x = -k + s / 2^16 with 0 < s < k (a negative
   value just above the integer -k) comes out exactly 1.0 too low: a fraction of about
   |x| / 2^17 of uniformly spread negatives (5 in 10,000 around |x| ~ 30). `decode` is
   replaced by an exact one (same dtype), and accuracy is computed from the revealed raw
   integers in float64; the result also counts how many outputs the original decode would
   have got wrong.

A rank also defers `onnx` (`defer_onnx`): `crypten.nn` imports it, and with it ml_dtypes (about
0.7 CPU-s per process), only for its ONNX converter, which no measurement uses.

Timing: after one warm-up (none for logistic regression), every repetition starts on a
barrier; `seconds` times the operation on already-shared inputs, `seconds_with_input`
adds the sharing of the inputs by their owners (for `sum`, sharing is the protocol). The
counters come from one more, untimed run with `communicator.verbose` on.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.peers._procs import ORACLES, emit, errors, peer_inputs, total

JOB_ENV = "POOLED_PEER_JOB"
LOGREG_LR = 1.0
"""Learning rate of the logistic-regression training (full-batch gradient descent)."""


class _Deferred(types.ModuleType):
    """Stands for the module `name` until an attribute is read: then imports the real one (`defer_onnx`)."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer_onnx() -> None:
    """Defer `onnx` and its `numpy_helper`, as `crypten.nn` imports them (module docstring)."""
    defer_import("onnx", ("numpy_helper",))


def defer_import(name: str, children: tuple[str, ...] = ()) -> None:
    """Let `import name` and `from name import child` bind stand-ins that import the real modules when one of
    their attributes is first read; a no-op if `name` is imported already or not installed. For a rank's own
    process only: it changes sys.modules."""
    spec = None if name in sys.modules else importlib.util.find_spec(name)
    if spec is None:
        return
    sys.modules[name] = module = _Deferred(name)
    module.__spec__, module.__file__ = spec, spec.origin  # read by find_spec and inspect.getmodule (torch calls both)
    module.__path__ = list(spec.submodule_search_locations or [])  # read by `from name import ...`
    for child in children:
        setattr(module, child, _Deferred(f"{name}.{child}"))


def import_crypten() -> Any:
    """`import crypten` on torch 2.13 (fix 1 of the module docstring), with the exact decode."""
    old = "torch.onnx._internal.registration"
    if old not in sys.modules:
        try:
            importlib.import_module(old)
        except ImportError:
            sys.modules[old] = importlib.import_module("torch.onnx._internal.torchscript_exporter.registration")
    import crypten
    from crypten.encoder import FixedPointEncoder

    if not getattr(FixedPointEncoder.decode, "_pooled_exact", False):
        original = FixedPointEncoder.decode

        def decode(self: Any, tensor: Any) -> Any:
            if tensor is None or self._scale <= 1:
                return original(self, tensor)
            whole = tensor.div(self._scale, rounding_mode="floor")
            return (whole.float() + (tensor - whole * self._scale).float() / self._scale).data

        decode._pooled_exact = True  # type: ignore[attr-defined]
        decode._original = original  # type: ignore[attr-defined]
        FixedPointEncoder.decode = decode
    return crypten


def _exact(z: Any) -> tuple[np.ndarray, int]:
    """Reveal `z` exactly (float64 from the raw ring integers) and count the original decode's misses."""
    raw = z.reveal()
    scale = z.encoder.scale
    exact = raw.double().numpy() / scale
    buggy = z.encoder.decode._original(z.encoder, raw).double().numpy() if scale > 1 else exact
    return exact, int(np.count_nonzero(np.abs(buggy - exact) > 0.5))


OPS: dict[str, Callable[[list[Any]], Any]] = {
    "mul": lambda a: a[0] * a[1],
    "lt": lambda a: a[0] < a[1],
    "sigmoid": lambda a: a[0].sigmoid(),
    "reciprocal": lambda a: a[0].reciprocal(),
    "sum": total,
}
"""op -> CrypTen computation on the shared inputs (oracles and error measures: `_procs.ORACLES`)."""


class Party:
    """This process's rank inside an initialised CrypTen, with the helpers every measurement uses."""

    def __init__(self, crypten: Any, torch: Any) -> None:
        self.crypten, self.torch = crypten, torch
        self.comm = crypten.communicator.get()
        self.rank, self.n = self.comm.get_rank(), self.comm.get_world_size()

    def share(self, owner: int, values: np.ndarray) -> Any:
        """`owner` secret-shares its array; the others pass zeros of the (public) shape."""
        data = values if self.rank == owner else np.zeros(values.shape)
        return self.crypten.cryptensor(self.torch.from_numpy(data), src=owner)

    def counted(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        """Run `fn` with CrypTen's communication logging on; return its value and this rank's counters."""
        cfg = self.crypten.cfg
        self.comm.barrier()
        cfg.communicator.verbose = True
        self.comm.reset_communication_stats()
        try:
            out = fn()
            stats = dict(self.comm.get_communication_stats())
        finally:
            cfg.communicator.verbose = False
        return out, {"rounds": int(stats["rounds"]), "bytes": int(stats["bytes"])}


def _result(p: Party, op_times: list[float], io_times: list[float], op_stats: dict[str, Any],
            input_stats: dict[str, Any], decode_misses: int, **more: Any) -> dict[str, Any]:
    """This rank's result line: timings, CrypTen's counters, the original decode's misses, and `more`."""
    return {"rank": p.rank, "seconds": op_times, "seconds_with_input": io_times, "comm_op": op_stats,
            "comm_input": input_stats, "decode_bug_misses": decode_misses, **more}


def measure_op(p: Party, job: dict[str, Any]) -> dict[str, Any]:
    op, size, repeats = job["op"], int(job["size"]), int(job["repeats"])
    compute = OPS[op]
    oracle, measure = ORACLES[op]
    values = peer_inputs(op, size, p.n, int(job["seed"]), job["reciprocal_range"])
    owners = sorted(values)

    def share_all() -> list[Any]:
        return [p.share(r, values[r]) for r in owners]

    op_times, io_times = [], []
    for i in range(1 + repeats):  # the first run is a warm-up
        p.comm.barrier()
        t0 = time.perf_counter()
        shared = share_all()
        t1 = time.perf_counter()
        z = compute(shared)
        t2 = time.perf_counter()
        if i:
            io_times.append(t2 - t0)
            op_times.append(t2 - t0 if op == "sum" else t2 - t1)
    shared, input_stats = p.counted(share_all)
    z, op_stats = p.counted(lambda: compute(shared))
    got, decode_misses = _exact(z)
    want = oracle([values[r] for r in owners])
    return _result(p, op_times, io_times, op_stats, input_stats, decode_misses, **errors(got, want, measure))


def breast_cancer(features: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's breast_cancer: the 10 `mean ...` features or all 30, standardized (ddof=1); y = target."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = list(data.feature_names)
    if features == 10:
        cols = [i for i, n in enumerate(names) if n.startswith("mean ")]
    elif features == 30:
        cols = list(range(30))
    else:
        raise ValueError("logreg size is the number of features: 10 (the `mean ...` ones) or 30 (all)")
    x = data.data[:, cols]
    x = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    return x, data.target.astype(np.float64)


def write_breast_cancer(path: Path, features: int) -> None:
    """`breast_cancer(features)` saved for the ranks (`logreg_data`), which then need no scikit-learn."""
    x, y = breast_cancer(features)
    np.savez(path, x=x, y=y)


def logreg_data(job: dict[str, Any], features: int) -> tuple[np.ndarray, np.ndarray]:
    """The job's data: from its `data_file` (`write_breast_cancer`) when it names one, else loaded here."""
    if "data_file" not in job:
        return breast_cancer(features)
    with np.load(job["data_file"]) as data:
        return data["x"], data["y"]


LOGREG_APIS = ("tensor", "nn")
"""How CrypTen trains: `tensor`, its tensor operations as its own examples write a model (the
fastest, and the comparison's); `nn`, `crypten.nn` modules with autograd (a second, labelled row)."""


def measure_logreg(p: Party, job: dict[str, Any]) -> dict[str, Any]:
    """The job's training with each API of its `apis` (default: its `api`) in turn, in this one CrypTen
    world (the processes start once): `{"by_api": [result, ...]}` in the order asked."""
    apis = [str(a) for a in job.get("apis", [job.get("api", "tensor")])]
    bad = [a for a in apis if a not in LOGREG_APIS]
    if bad or not apis:
        raise ValueError(f"logreg api must be one of {LOGREG_APIS}, got {bad or apis!r}")
    return {"by_api": [measure_logreg_api(p, job, api) for api in apis]}


def measure_logreg_api(p: Party, job: dict[str, Any], api: str) -> dict[str, Any]:
    """Full-batch gradient descent on encrypted X and y, written with CrypTen's tensor API or `crypten.nn`.

    Both start from the same `torch.nn.Linear` initialisation and take the same steps as
    `_plain_logreg` (the gradient of the mean binary cross-entropy), so their accuracy is comparable.
    """
    crypten, torch = p.crypten, p.torch
    features, repeats, epochs, seed = int(job["size"]), int(job["repeats"]), int(job["epochs"]), int(job["seed"])
    lr = float(job.get("lr", LOGREG_LR))
    x, y = logreg_data(job, features)
    parts = np.array_split(np.arange(len(x)), p.n)  # contiguous row blocks, one per party

    def share_data() -> tuple[Any, Any]:
        xs = [p.share(r, x[idx]) for r, idx in enumerate(parts)]
        ys = [p.share(r, y[idx, None]) for r, idx in enumerate(parts)]
        return crypten.cat(xs, dim=0), crypten.cat(ys, dim=0)

    def train_nn(xe: Any, ye: Any) -> Callable[[Any], Any]:
        torch.manual_seed(seed)
        model = crypten.nn.Sequential(crypten.nn.Linear(features, 1), crypten.nn.Sigmoid())
        model.encrypt(src=0)
        model.train()
        loss = crypten.nn.BCELoss()
        for _ in range(epochs):
            model.zero_grad()
            loss(model(xe), ye).backward()
            model.update_parameters(lr)
        model.eval()
        return model  # type: ignore[no-any-return]

    def train_tensor(xe: Any, ye: Any) -> Callable[[Any], Any]:
        torch.manual_seed(seed)
        init = torch.nn.Linear(features, 1)  # the nn variant's and the plaintext's initialisation
        w = crypten.cryptensor(init.weight.detach().t(), src=0)  # features x 1
        b = crypten.cryptensor(init.bias.detach(), src=0)
        xt = xe.t()
        step = lr / xe.size(0)
        for _ in range(epochs):
            err = (xe.matmul(w) + b).sigmoid() - ye  # d(mean BCE)/d(logit), times the rows
            w = w - xt.matmul(err) * step
            b = b - err.sum(0) * step
        return lambda data: (data.matmul(w) + b).sigmoid()

    train = train_tensor if api == "tensor" else train_nn
    op_times, io_times = [], []
    for _ in range(repeats):
        p.comm.barrier()
        t0 = time.perf_counter()
        xe, ye = share_data()
        t1 = time.perf_counter()
        train(xe, ye)
        t2 = time.perf_counter()
        op_times.append(t2 - t1)
        io_times.append(t2 - t0)
    (xe, ye), input_stats = p.counted(share_data)
    predict, op_stats = p.counted(lambda: train(xe, ye))
    with crypten.no_grad():
        prob, decode_misses = _exact(predict(xe))
    plain = _plain_logreg(torch, x, y, epochs, lr, seed)
    return _result(p, op_times, io_times, op_stats, input_stats, decode_misses, epochs=epochs, lr=lr, rows=len(x),
                   api=api, train_accuracy=float(np.mean((prob[:, 0] > 0.5) == (y > 0.5))),
                   plaintext_same_training_accuracy=plain)


def _plain_logreg(torch: Any, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int) -> float:
    """The same initialisation and gradient descent in float64 PyTorch: what CrypTen would reach exactly."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 1), torch.nn.Sigmoid()).double()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y[:, None])
    for _ in range(epochs):  # plain SGD, written out: torch.optim's first step would import torch._dynamo (~1 CPU-s)
        model.zero_grad()
        torch.nn.functional.binary_cross_entropy(model(xt), yt).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= lr * param.grad
    with torch.no_grad():
        return float(((model(xt)[:, 0] > 0.5).numpy() == (y > 0.5)).mean())


def main() -> None:
    job = json.loads(os.environ[JOB_ENV])
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    defer_onnx()
    crypten = import_crypten()
    crypten.cfg.mpc.provider = job["provider"]
    if int(os.environ["RANK"]) == int(os.environ["WORLD_SIZE"]):
        crypten.mpc.provider.TTPServer()  # serves until rank 0 sends "terminate" in crypten.uninit()
        return
    crypten.init()
    try:
        party = Party(crypten, torch)
        result = measure_logreg(party, job) if job["op"] == "logreg" else measure_op(party, job)
    finally:
        crypten.uninit()
    emit(result)


if __name__ == "__main__":
    main()
