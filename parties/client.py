"""The analyst's side: ask every node to run a job, then reconstruct the outputs.

`ConsortiumClient.run` calls RunJob on all nodes of the roster at once with one fresh
session id, collects each party's output shares and counters, and adds the shares up.
If any node fails, it raises `ConsortiumError` naming the party that caused the
failure: a node that could not be reached or died is named first; otherwise the party
the surviving nodes blame (they agree, since an abort carries its culprit).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from mpc.fixedpoint import FixedPoint
from mpc.share import reconstruct
from mpc.stats import CommStats
from parties import messages
from parties.certs import Identity
from parties.proto import pooled_pb2_grpc as rpc
from parties.records import JobCall, JobFailure, JobOutcome, NodeInfo
from parties.tls import TlsMaterial


class ConsortiumError(RuntimeError):
    """A job failed; `party` names the party (or "dealer") whose failure caused it."""

    def __init__(self, party: str, message: str, failures: Mapping[str, str]) -> None:
        same = sorted(p for p, m in failures.items() if p != party and _reason(m) == _reason(message))
        others = "\n".join(f"  {p}: {m}" for p, m in failures.items() if p != party and p not in same)
        also = f" (the same at {', '.join(same)})" if same else ""
        super().__init__(f"party {party} failed: {message}{also}" + (f"\n{others}" if others else ""))
        self.party = party
        self.failures = dict(failures)


def _reason(message: str) -> str:
    """A failure's reason without its kind and the reporting party's own name (to spot repeats)."""
    kind, sep, rest = message.partition(": ")
    text = rest if sep and kind in ("error", "invalid", "peer_failure") else message
    return text.split(": ", 1)[-1] if ": " in text else text


@dataclass(frozen=True)
class JobResult:
    """What a job returned: each party's outcome, and the reconstructed outputs."""

    session: str
    outcomes: dict[str, JobOutcome]
    seconds: float  # wall time of the whole call, as the analyst saw it

    def ring_outputs(self) -> list[np.ndarray]:
        """The opened outputs as ring elements (the sum of every party's shares)."""
        return [reconstruct(output) for output in zip(*(o.shares for o in self.outcomes.values()), strict=True)]

    def outputs(self) -> list[np.ndarray]:
        """Opened outputs decoded: floats for fixed-point shares, int64/ints for frac 0."""
        shares = next(iter(self.outcomes.values())).shares
        out = []
        for total, share in zip(self.ring_outputs(), shares, strict=True):
            if share.frac == 0:
                out.append(share.ring.to_signed(total))
            else:
                out.append(FixedPoint(share.ring, share.frac).decode(total, share.frac))
        return out

    def stats(self, party: str) -> CommStats:
        return self.outcomes[party].stats

    @property
    def compute_seconds(self) -> float:
        """The slowest party's compute phase."""
        return max(o.compute_seconds for o in self.outcomes.values())


class ConsortiumClient:
    """An analyst connected (with its own certificate) to every node of a consortium."""

    def __init__(self, tls: TlsMaterial, nodes: Mapping[str, str], grace_s: float = 2.0) -> None:
        if tls.identity.role != "analyst":
            raise ValueError(f"the client runs with an analyst certificate, not {tls.identity}")
        self._channels = {name: tls.channel(addr, Identity.party(name)) for name, addr in nodes.items()}
        self._stubs = {name: rpc.NodeStub(ch) for name, ch in self._channels.items()}
        self.parties = list(nodes)
        self._grace_s = grace_s  # how long to wait for the other nodes once one has failed

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()

    def __enter__(self) -> ConsortiumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, party: str, timeout_s: float = 5.0) -> NodeInfo:
        return messages.node_info_from_pb(self._stubs[party].Status(messages.empty(), timeout=timeout_s))

    def run(
        self,
        job: str,
        params: dict[str, Any] | None = None,
        *,
        roster: Sequence[str] | None = None,
        session: str | None = None,
        peer_timeout_s: float = 0.0,
        call_timeout_s: float = 600.0,
    ) -> JobResult:
        """Run `job` on every node of `roster` (default: all, in the order given) and collect shares."""
        names = list(roster or self.parties)
        call = JobCall(session or uuid.uuid4().hex, job, dict(params or {}), names, peer_timeout_s)
        request = messages.job_call_to_pb(call)
        calls = {name: self._stubs[name].RunJob(request, timeout=call_timeout_s) for name in names}

        def collect(name: str) -> JobOutcome | JobFailure | grpc.RpcError:
            try:
                return messages.outcome_from_chunks(calls[name])
            except grpc.RpcError as err:
                return err

        start = time.perf_counter()
        answers: dict[str, Any] = {}
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            pending = {pool.submit(collect, name): name for name in names}
            deadline = None
            while pending:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                if not done:  # a node stays silent after another failed: stop waiting for it
                    for name in pending.values():
                        calls[name].cancel()
                        answers[name] = _Silent(f"no answer {self._grace_s:.0f} s after another party failed")
                    pending = {}
                    break
                for fut in done:
                    name = pending.pop(fut)
                    answers[name] = fut.result()
                    if deadline is None and not isinstance(answers[name], JobOutcome):
                        deadline = time.monotonic() + self._grace_s
        seconds = time.perf_counter() - start
        outcomes = {n: a for n, a in answers.items() if isinstance(a, JobOutcome)}
        if len(outcomes) == len(names):
            return JobResult(call.session, {n: outcomes[n] for n in names}, seconds)
        raise _blame(answers)


@dataclass(frozen=True)
class _Silent:
    """A node that did not answer once the job had failed elsewhere."""

    message: str


def _blame(answers: Mapping[str, Any]) -> ConsortiumError:
    """The party that caused a failed job.

    Nodes that fail because of a peer name it (an abort carries the original culprit),
    so the party most of them blame is the answer; failing that, a node that could not
    be reached or stayed silent; failing that, a node that reported its own error.
    """
    failures: dict[str, str] = {}
    absent: list[str] = []
    own: list[str] = []
    blamed: Counter[str] = Counter()
    for name, answer in answers.items():
        if isinstance(answer, grpc.RpcError):
            failures[name] = f"{answer.code().name}: {answer.details()}"
            gone = answer.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            (absent if gone else own).append(name)
        elif isinstance(answer, _Silent):
            failures[name] = answer.message
            absent.append(name)
        elif isinstance(answer, JobFailure):
            failures[name] = f"{answer.kind}: {answer.message}"
            if answer.kind == "peer_failure":
                blamed[answer.party] += 1
            else:
                own.append(name)
    if blamed:
        party = blamed.most_common(1)[0][0]
    elif absent:
        party = absent[0]
    else:
        party = own[0]
    return ConsortiumError(party, failures.get(party, "failed (see the other parties' reports)"), failures)
