"""A party node: a long-running process that computes with its peers when an analyst asks.

The node serves two gRPC services on one mutual-TLS port: PeerExchange (the other parties'
pings, aborts, and where to dial its data port) and Node (an analyst's `RunJob`). The
messages between parties travel on mutual-TLS data sockets (`parties.peer_links`): the node
accepts its peers' on a data port of its own, next to the gRPC port on the same host (any
free port unless `data_port` is set), and tells peers which port through GetDataPort. For each job it
opens a new session: it registers the session's roster with the dealer (idempotent, so
every node can do it), fetches its own seed, builds a `PartyContext` over a
`GrpcTransport` for that session, runs the job from its explicit registry, and answers
with its shares of the outputs; the analyst reconstructs them — nodes never open the
final result. Before any of that, every job passes the node's `JobGate` (`parties.gate`):
the site policy decides, counts and logs it, and its release or failure is logged too; a
job the registry does not hold is refused (and logged). Sessions are isolated: each has
its own transport, material, counters and mailbox entries, so several can run at once.

If the job fails, the node aborts the session at every peer (naming the party whose
failure caused it) and answers with a `JobFailure` instead of shares.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from mpc.context import PartyContext
from mpc.dealer import DeferredFetcher, PhaseTraces, SeededMaterial
from mpc.errors import PeerFailure
from mpc.pairs import agree_pair_seeds
from parties import messages, peer_service
from parties.certs import CertFiles
from parties.dealer_client import CorrectionStream, DealerClient, DealerError
from parties.gate import JobGate
from parties.grpc_transport import GrpcTransport, LinkSettings, PeerLinks
from parties.jobs import Job, SiteData
from parties.mailbox import Mailbox
from parties.proto import pooled_pb2_grpc as rpc
from parties.records import JobCall, JobFailure, JobOutcome, NodeInfo
from parties.tls import Rules, TlsMaterial, bind, caller_identity, make_server
from protocols.material import KINDS

RULES: Rules = {
    "/pooled.v1.PeerExchange/GetDataPort": frozenset({"party"}),
    "/pooled.v1.PeerExchange/Abort": frozenset({"party"}),
    "/pooled.v1.PeerExchange/Ping": frozenset({"party"}),
    "/pooled.v1.Node/RunJob": frozenset({"analyst"}),
    "/pooled.v1.Node/Status": frozenset({"analyst", "party", "dealer"}),
}


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start."""

    certs: CertFiles
    dealer: str
    listen: str = "127.0.0.1:0"
    advertise_host: str | None = None  # host peers should dial (default: the listen host)
    data_port: int = 0  # where to accept peers' data sockets, on the listen host (0: any free port)
    advertise_data_port: int | None = None  # data port peers should dial (a port forward or a relay)
    peers: Mapping[str, str] = field(default_factory=dict)  # fixed peer addresses; others from the dealer
    data_dir: Path | None = None
    data_file: Path | None = None
    links: LinkSettings = field(default_factory=LinkSettings)
    max_workers: int = 64
    roster: tuple[str, ...] | None = None
    """The consortium this node belongs to, in rank order (from its configuration file):
    a job whose roster differs is refused. None: any roster that names this node."""


class Node:
    """One party's server, its links to peers and the dealer, its job registry and the gate in front of it."""

    def __init__(self, config: NodeConfig, jobs: Mapping[str, Job], gate: JobGate) -> None:
        self._config = config
        self._gate = gate
        self._tls = TlsMaterial.load(config.certs)
        if self._tls.identity.role != "party":
            raise ValueError(f"a node runs with a party certificate, not {self._tls.identity}")
        self._jobs = jobs
        self._site = SiteData(self.name, config.data_dir, config.data_file)
        self._mailbox = Mailbox()
        self._dealer = DealerClient(self._tls, config.dealer, keepalive=config.links.keepalive)
        self._traces = PhaseTraces()  # dealer requests of named phases, sent ahead when a phase recurs
        self._links = PeerLinks(self._tls, self._address_of, self._mailbox, config.links.keepalive,
                                stall_s=config.links.liveness_s)
        self._lock = threading.Lock()
        self._directory: dict[str, str] = dict(config.peers)
        self._server: grpc.Server | None = None
        self.address = ""

    @property
    def name(self) -> str:
        return self._tls.identity.name

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on the configured address, announce it to the dealer, and return it.

        A dealer that cannot be reached or refuses the announcement stops the server again
        and raises DealerError.
        """
        config = self._config
        server = make_server(self._tls, RULES, max_workers=config.max_workers, keepalive=config.links.keepalive)
        peer_service.add_to_server(peer_service.PeerExchangeServicer(self._mailbox, self._links), server)
        rpc.add_NodeServicer_to_server(NodeServicer(self), server)
        listen_host = self._config.listen.rsplit(":", 1)[0]
        self._links.listen(listen_host, config.data_port, config.advertise_data_port)
        port = bind(server, self._tls, self._config.listen)
        server.start()
        self._server = server
        host = self._config.advertise_host or self._config.listen.rsplit(":", 1)[0]
        self.address = f"{host}:{port}"
        try:
            self._dealer.announce(self.address)
        except DealerError:
            self.stop(0.0)
            raise
        return self.address

    def stop(self, grace_s: float = 1.0) -> None:
        self._links.close()  # first: its data sockets and channels end at once
        if self._server is not None:
            self._server.stop(grace_s).wait(grace_s + 1.0)
        self._dealer.close()

    def _address_of(self, party: str) -> str:
        with self._lock:
            known = self._directory.get(party)
        if known is None:
            found = self._dealer.directory()
            with self._lock:
                for name, address in found.items():
                    self._directory.setdefault(name, address)
                known = self._directory.get(party)
        if known is None:
            raise LookupError(f"no address known for party {party}")
        return known

    def info(self) -> NodeInfo:
        return NodeInfo(str(self._tls.identity), self.address, sorted(self._jobs), self._mailbox.open_sessions,
                        self._links.bound_data_port)

    # -- jobs -------------------------------------------------------------------------------------
    def run_job(self, call: JobCall) -> JobOutcome | JobFailure:
        """Run `call` as this party in a new session (see the module docstring)."""
        me = self.name
        if me not in call.roster or len(set(call.roster)) != len(call.roster) or len(call.roster) < 2:
            reason = f"roster {call.roster} must list {me} and at least two distinct parties"
            return JobFailure("invalid", me, reason)
        expected = self._config.roster
        if expected is not None and tuple(call.roster) != expected:
            reason = f"roster {list(call.roster)} is not this consortium's {list(expected)} (in rank order)"
            return JobFailure("invalid", me, reason)
        try:
            self._mailbox.open_session(call.session)
        except ValueError as exc:
            return JobFailure("invalid", me, str(exc))
        # The roster the node was called with, for the job's session binding (never the analyst's claim).
        call = replace(call, params={**call.params, "_roster": list(call.roster)})
        rank, n = call.roster.index(me), len(call.roster)
        settings = self._config.links
        if call.timeout_s > 0:
            settings = replace(settings, recv_timeout_s=call.timeout_s)
        transport = GrpcTransport(call.session, call.roster, rank, self._links, self._mailbox, settings)
        job = self._jobs.get(call.job)
        refusal = self._refusal(job, call)
        if job is None or refusal is not None:
            reason = refusal or f"unknown job {call.job!r}"
            transport.abort(reason)
            self._mailbox.close_session(call.session)
            return JobFailure("invalid", me, reason)
        try:
            outcome = self._run(job, call, rank, n, transport)
            self._gate.released(job, call, outcome)  # no audit line, no shares
            return outcome
        except PeerFailure as exc:
            transport.abort(exc.reason, culprit=exc.party)
            self._tell(job, call, exc, aborted=True)
            return JobFailure("peer_failure", exc.party, str(exc))
        except DealerError as exc:
            transport.abort(str(exc), culprit="dealer")
            self._tell(job, call, exc, aborted=True)
            return JobFailure("peer_failure", "dealer", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the analyst and the peers
            reason = f"{type(exc).__name__}: {exc}"
            transport.abort(reason)
            self._tell(job, call, exc, aborted=False)
            return JobFailure("error", me, reason)
        finally:
            self._mailbox.close_session(call.session)

    def _refusal(self, job: Job | None, call: JobCall) -> str | None:
        """Why this node will not run `call` (None: it will): an unknown job, or its gate's refusal (logged)."""
        try:
            if job is None:
                reason = f"unknown job {call.job!r}; this node runs {sorted(self._jobs)}"
                self._gate.unknown(call, reason)
                return reason
            verdict = self._gate.admit(job, call)
            return None if verdict.allowed else f"{self.name} refuses: {verdict.reason}"
        except Exception as exc:  # noqa: BLE001 - e.g. an audit log that cannot be written: fail closed
            return f"{self.name} cannot admit the job: {type(exc).__name__}: {exc}"

    def _tell(self, job: Job, call: JobCall, exc: BaseException, aborted: bool) -> None:
        """Tell the gate (it logs the failure) and the job's failure hook; neither may hide the job's own failure."""
        log = logging.getLogger(__name__)
        try:
            self._gate.failed(job, call, exc, aborted)
        except Exception:  # noqa: BLE001
            log.exception("logging the failure of job %s failed", job.name)
        if job.on_failure is not None:
            try:
                job.on_failure(call.params, call.session, exc, aborted)
            except Exception:  # noqa: BLE001
                log.exception("the failure hook of job %s failed", job.name)

    def _run(self, job: Job, call: JobCall, rank: int, n: int, transport: GrpcTransport) -> JobOutcome:
        self._dealer.open_session(call.session, call.roster)
        t0 = time.perf_counter()
        grant = self._dealer.seed(call.session)
        dealer_rtt_s = time.perf_counter() - t0  # one call: what asking the dealer on demand costs
        if (grant.rank, grant.n) != (rank, n):
            raise DealerError(f"dealer placed this party at {grant.rank} of {grant.n}, expected {rank} of {n}")
        corrections = None
        defer: DeferredFetcher | None = None
        if rank == n - 1:
            plan = job.plan(call.params, n) if job.plan is not None else []
            corrections = CorrectionStream(self._dealer, call.session, KINDS, plan)
            defer = corrections.defer
        material: SeededMaterial | None = None
        try:
            ahead = corrections.extend if corrections is not None else None
            material = SeededMaterial(rank, n, grant.seed, call.session, KINDS, None, defer, ahead, self._traces)
            material.dealer_rtt_s = dealer_rtt_s
            outcome = self._compute(job, call, rank, n, transport, material)
            if corrections is None:
                return outcome
            # How the last party's corrections came: asked ahead, or when a step needed them (a dealer round trip each).
            asked = {"dealer_asked_ahead": corrections.hits, "dealer_asked_on_demand": corrections.misses,
                     "dealer_plan_wrong": corrections.wrong}
            return replace(outcome, public={**outcome.public, **asked})
        finally:
            if material is not None:
                material.close()
            if corrections is not None:
                corrections.close()

    def _compute(
        self, job: Job, call: JobCall, rank: int, n: int, transport: GrpcTransport, material: SeededMaterial
    ) -> JobOutcome:
        ctx = PartyContext(rank, n, transport, material, call.session)
        t0 = time.perf_counter()
        prepared = job.prepare(ctx, call.params, self._site)
        t1 = time.perf_counter()
        # Setup, around the context's counters: the pairwise seeds, which also make every party wait for
        # the others, so that `compute_seconds` means the same thing at every party.
        ctx.pairs = agree_pair_seeds(transport, rank, n, f"{transport.session}/pair-seeds")
        t2 = time.perf_counter()
        answer = job.compute(ctx, prepared)
        shares, public = answer if isinstance(answer, tuple) else (answer, {})
        t3 = time.perf_counter()
        transport.close()
        return JobOutcome(rank, shares, ctx.stats, t1 - t0, t3 - t2, public)


class NodeServicer(rpc.NodeServicer):
    """gRPC adapter for analysts' requests (role checked by the interceptor)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def RunJob(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        analyst = caller_identity(context)
        try:
            call = messages.job_call_from_pb(request)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad job request: {exc}")
        # Who asks is what the certificate says, never what the request claims.
        call = replace(call, params={**call.params, "_analyst": analyst.name})
        if not call.session:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a job needs a session id")
        outcome = self._node.run_job(call)
        if isinstance(outcome, JobFailure):
            yield from messages.failure_to_chunks(outcome)
        else:
            yield from messages.outcome_to_chunks(outcome)

    def Status(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return messages.node_info_to_pb(self._node.info())
