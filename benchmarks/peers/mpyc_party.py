"""One MPyC 0.11 party of a peer measurement (run as a script, one process per `-I` index).

Started by `benchmarks.peers.mpyc_bench` as
`python -m benchmarks.peers.mpyc_party -M3 -I i -P 127.0.0.1:p0 -P 127.0.0.1:p1 -P 127.0.0.1:p2 --no-log`;
never imported by Pooled (MPyC parses the command line and builds its runtime when
`mpyc.runtime` is imported). The job arrives as JSON in $POOLED_PEER_JOB; the party prints
its timings, MPyC's byte counter and a message count, and (party 0) the error against
numpy as one JSON line (`_procs.emit`).

MPyC's listening socket would bind every interface; it is bound to 127.0.0.1 here.
Numbers are MPyC's `SecFxp(l=32, f=16)` (16 fractional bits, like CrypTen) over Shamir
shares with threshold t = (m - 1) // 2 and PRSS (no dealer): with 3 parties MPyC tolerates
one corrupt party (honest majority); with 2 parties t = 0, i.e. no privacy at all.

Operations are those of `crypten_party` (same inputs per owner and seed):
mul (x * y), lt (x < y), sigmoid, reciprocal (1 / x, MPyC's Newton iteration after a
bit-decomposition normalisation), sum (every party's input added; inputting is the protocol).
MPyC has no exp or sigmoid; `sigmoid` below follows CrypTen's recipe with MPyC primitives.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

import numpy as np
from mpyc import asyncoro
from mpyc.runtime import mpc

from benchmarks.peers._procs import LOOPBACK, ORACLES, emit, errors, peer_inputs, total

JOB_ENV = "POOLED_PEER_JOB"
_sent = {"messages": 0}


def _count_messages() -> None:
    """Count the messages this party sends (MPyC keeps bytes per peer, not messages)."""
    send = asyncoro.MessageExchanger.send

    def counted(self: Any, pc: Any, payload: Any) -> Any:
        _sent["messages"] += 1
        return send(self, pc, payload)

    asyncoro.MessageExchanger.send = counted


def sigmoid(x: Any) -> Any:
    """sigma(x) by CrypTen's recipe (`sigmoid_tanh_method: reciprocal`), in MPyC.

    1. s = [x < 0];  |x| = x - 2 s x.
    2. e = exp(-|x|) ~ (1 - |x| / 2^9)^(2^9): nine squarings (CrypTen uses 9 for sigmoid).
    3. r = 1 / (1 + e) = sigma(|x|), in [1/2, 1): MPyC's fixed-point reciprocal.
    4. sigma(x) = r for x >= 0 and 1 - r for x < 0:  r + s (1 - 2 r).
    """
    s = x < 0
    a = x - 2 * (s * x)
    e = 1 - a * (1 / 512)
    for _ in range(9):
        e = e * e
    r = 1 / (1 + e)
    return r + s * (1 - 2 * r)


OPS: dict[str, Any] = {
    "mul": lambda a: a[0] * a[1],
    "lt": lambda a: a[0] < a[1],
    "sigmoid": lambda a: sigmoid(a[0]),
    "reciprocal": lambda a: 1 / a[0],
    "sum": total,
}
"""op -> MPyC computation on the shared inputs (oracles and error measures: `_procs.ORACLES`)."""


def _bytes_sent() -> int:
    return sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid and p.protocol is not None)


async def measure(job: dict[str, Any]) -> dict[str, Any]:
    secfxp = mpc.SecFxp(int(job["bit_length"]), int(job["frac_length"]))
    m, pid = len(mpc.parties), mpc.pid
    compute = OPS[job["op"]]
    oracle, kind = ORACLES[job["op"]]
    values = peer_inputs(job["op"], int(job["size"]), m, int(job["seed"]), job["reciprocal_range"])
    owners = sorted(values)

    async def share_all() -> list[Any]:
        # integral=False everywhere: MPyC infers it from the local values, and zeros on the
        # non-owners would make parties disagree on whether products need truncating.
        shared = [
            mpc.input(secfxp.array(values[r] if pid == r else np.zeros(values[r].shape), integral=False), senders=r)
            for r in owners
        ]
        for s in shared:
            await mpc.gather(s)
        return shared

    op_times, io_times, counters = [], [], {}
    for i in range(1 + int(job["repeats"])):  # the first run is a warm-up
        await mpc.transfer(i)  # all-to-all: a barrier
        b0, m0 = _bytes_sent(), _sent["messages"]
        t0 = time.perf_counter()
        shared = await share_all()
        t1 = time.perf_counter()
        b1, m1 = _bytes_sent(), _sent["messages"]
        z = compute(shared)
        await mpc.gather(z)
        t2 = time.perf_counter()
        if i:
            io_times.append(t2 - t0)
            op_times.append(t2 - t0 if job["op"] == "sum" else t2 - t1)
        counters = {
            "input": {"bytes": b1 - b0, "messages": m1 - m0},
            "op": {"bytes": _bytes_sent() - b1, "messages": _sent["messages"] - m1},
        }
    got = np.asarray(await mpc.output(z), dtype=np.float64)
    want = oracle([values[r] for r in owners])
    out: dict[str, Any] = {
        "rank": pid,
        "seconds": op_times,
        "seconds_with_input": io_times,
        "comm_op": counters["op"],
        "comm_input": counters["input"],
        "threshold": mpc.threshold,
        "field_bits": secfxp.field.order.bit_length(),
    }
    out.update(errors(got, want, kind))
    return out


async def _main(job: dict[str, Any]) -> None:
    mpc._loop.create_server = functools.partial(mpc._loop.create_server, host=LOOPBACK)
    _count_messages()
    await mpc.start()
    result = await measure(job)
    await mpc.shutdown()
    emit(result)


def main() -> None:
    mpc.run(_main(json.loads(os.environ[JOB_ENV])))


if __name__ == "__main__":
    main()
