"""Protobuf messages <-> the plain values of `parties.records`, for the dealer and node services.

Servicers and clients call these to decode a request into Python values and to encode the
answer, so they never build or read a protobuf object themselves (servicers stay thin
adapters). Arrays ride in `ArraysChunk`s (`parties.array_stream`); messages between
parties have a hand-built format of their own (`parties.peer_wire`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any

from mpc.stats import CommStats
from parties.array_stream import arrays_from_chunks, arrays_to_chunks, shares_to_wire, wire_to_shares
from parties.proto import pooled_pb2 as pb
from parties.records import AbortInfo, JobCall, JobFailure, JobOutcome, NodeInfo, SeedGrant


def empty() -> pb.Empty:
    return pb.Empty()


def data_port(port: int) -> pb.DataPort:
    return pb.DataPort(port=port)


# -- aborts and pings between parties ---------------------------------------------------------
def abort_to_pb(info: AbortInfo) -> pb.AbortNotice:
    return pb.AbortNotice(session=info.session, src=info.src, culprit=info.culprit, reason=info.reason)


def abort_from_pb(msg: pb.AbortNotice) -> AbortInfo:
    return AbortInfo(msg.session, msg.src, msg.culprit or msg.src, msg.reason)


def ping_request(session: str) -> pb.PingRequest:
    return pb.PingRequest(session=session)


def ping_session(msg: pb.PingRequest) -> str:
    return msg.session


def ping_reply(abort: AbortInfo | None) -> pb.PingReply:
    if abort is None:
        return pb.PingReply()
    return pb.PingReply(aborted=True, culprit=abort.culprit, reason=abort.reason)


def ping_abort(reply: pb.PingReply, session: str, src: str) -> AbortInfo | None:
    if not reply.aborted:
        return None
    return AbortInfo(session, src, reply.culprit or src, reply.reason)


# -- dealer ------------------------------------------------------------------------------------
def session_spec(session: str, roster: Sequence[str]) -> pb.SessionSpec:
    return pb.SessionSpec(session=session, roster=list(roster))


def session_spec_from_pb(msg: pb.SessionSpec) -> tuple[str, list[str]]:
    return msg.session, list(msg.roster)


def session_ref(session: str) -> pb.SessionRef:
    return pb.SessionRef(session=session)


def session_of(msg: pb.SessionRef) -> str:
    return msg.session


def seed_to_pb(grant: SeedGrant) -> pb.SeedReply:
    return pb.SeedReply(seed=grant.seed, rank=grant.rank, n=grant.n)


def seed_from_pb(msg: pb.SeedReply) -> SeedGrant:
    return SeedGrant(bytes(msg.seed), int(msg.rank), int(msg.n))


def correction_request(session: str, counter: int, request_json: str) -> pb.CorrectionRequest:
    return pb.CorrectionRequest(session=session, counter=counter, request_json=request_json)


def correction_request_from_pb(msg: pb.CorrectionRequest) -> tuple[str, int, str]:
    return msg.session, int(msg.counter), msg.request_json


def announcement(address: str) -> pb.Announcement:
    return pb.Announcement(address=address)


def announced_address(msg: pb.Announcement) -> str:
    return msg.address


def directory_to_pb(addresses: Mapping[str, str]) -> pb.Directory:
    return pb.Directory(addresses=dict(addresses))


def directory_from_pb(msg: pb.Directory) -> dict[str, str]:
    return dict(msg.addresses)


def dealer_stats_to_pb(stats: Mapping[str, int]) -> pb.DealerStats:
    return pb.DealerStats(**stats)


def dealer_stats_from_pb(msg: pb.DealerStats) -> dict[str, int]:
    return {f.name: int(getattr(msg, f.name)) for f in msg.DESCRIPTOR.fields}


# -- node control ------------------------------------------------------------------------------
def job_call_to_pb(call: JobCall) -> pb.JobRequest:
    return pb.JobRequest(
        session=call.session,
        job=call.job,
        params_json=json.dumps(call.params, sort_keys=True),
        roster=list(call.roster),
        timeout_s=call.timeout_s,
    )


def job_call_from_pb(msg: pb.JobRequest) -> JobCall:
    params = json.loads(msg.params_json) if msg.params_json else {}
    if not isinstance(params, dict):
        raise ValueError("job parameters must be a JSON object")
    return JobCall(msg.session, msg.job, params, list(msg.roster), float(msg.timeout_s))


_STAT_FIELDS = [f.name for f in fields(CommStats)]


def outcome_to_chunks(outcome: JobOutcome) -> Iterator[pb.JobChunk]:
    """A party's answer: stats (and public facts) in the first chunk, its output shares streamed."""
    stats = pb.JobStats(
        rank=outcome.rank,
        prepare_seconds=outcome.prepare_seconds,
        compute_seconds=outcome.compute_seconds,
        public_json=json.dumps(outcome.public, sort_keys=True) if outcome.public else "",
        **{name: getattr(outcome.stats, name) for name in _STAT_FIELDS},
    )
    first = True
    for piece in arrays_to_chunks(shares_to_wire(outcome.shares)):
        yield pb.JobChunk(stats=stats, shares=piece) if first else pb.JobChunk(shares=piece)
        first = False


def failure_to_chunks(failure: JobFailure) -> Iterator[pb.JobChunk]:
    yield pb.JobChunk(error=pb.JobError(kind=failure.kind, party=failure.party, message=failure.message))


def outcome_from_chunks(chunks: Iterable[pb.JobChunk]) -> JobOutcome | JobFailure:
    head: Any = None
    pieces: list[pb.ArraysChunk] = []
    for chunk in chunks:
        if head is None:
            head = chunk
            if chunk.HasField("error"):
                return JobFailure(chunk.error.kind, chunk.error.party, chunk.error.message)
        pieces.append(chunk.shares)
    if head is None:
        raise ValueError("empty job answer")
    s = head.stats
    stats = CommStats(**{name: int(getattr(s, name)) for name in _STAT_FIELDS})
    shares = wire_to_shares(arrays_from_chunks(pieces))
    public = json.loads(s.public_json) if s.public_json else {}
    return JobOutcome(int(s.rank), shares, stats, float(s.prepare_seconds), float(s.compute_seconds), public)


def node_info_to_pb(info: NodeInfo) -> pb.NodeStatus:
    return pb.NodeStatus(
        identity=info.identity, address=info.address, jobs=info.jobs, running_sessions=info.running_sessions,
        data_port=info.data_port,
    )


def node_info_from_pb(msg: pb.NodeStatus) -> NodeInfo:
    return NodeInfo(msg.identity, msg.address, list(msg.jobs), int(msg.running_sessions), int(msg.data_port))
