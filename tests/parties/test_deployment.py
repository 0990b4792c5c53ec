"""A consortium deployed from `pooled init`'s files: the services, each site's decisions, audit and faults.

Real processes on 127.0.0.1 (mutual TLS): the dealer and three nodes started with
`--config`, analysts asking through `pooled query` and the Python client. Site c allows
bob only counts; every site lists alice and bob (eve holds a certificate of the
consortium but is listed nowhere; mallory's certificate is from another CA).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from parties.analyst import ask
from parties.audit import read_entries
from parties.certs import create_consortium
from parties.client import ConsortiumClient, ConsortiumError
from parties.config import load_analyst
from parties.tls import TlsMaterial
from tests.parties.deployment import Deployment, pooled, pooled_here

PARTIES = ["hospital-a", "hospital-b", "hospital-c"]
LONG_QUERY = "LOGISTIC diabetes ~ age + bmi + sbp + C(smoking) + C(sex)"  # several hundred rounds
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("consortium"), PARTIES, ["alice", "bob"])
    d.edit_policy("hospital-c", analysts={"alice": ["counts", "statistics", "regression"], "bob": ["counts"]})
    pooled_here("certs", "--out", str(d.dir / "certs"), "--ca-key", str(d.dir / "ca-private" / "ca.key"),
                "--analysts", "eve")  # same CA, listed at no site
    eve = d.analyst_file("eve")
    eve.write_text(d.analyst_file("bob").read_text().replace('"bob"', '"eve"').replace("analyst-bob", "analyst-eve"))
    with d:
        yield d
    assert d.forced == [], f"{d.forced} did not stop on SIGTERM"
    assert d.alive() == []


@pytest.fixture(scope="module")
def pooled_frame(deployment: Deployment) -> pd.DataFrame:
    return pd.concat([pd.read_csv(deployment.dir / "data" / p / "table.csv") for p in PARTIES], ignore_index=True)


def _client(d: Deployment, analyst: str) -> tuple[ConsortiumClient, list[str]]:
    s = load_analyst(d.analyst_file(analyst))
    return ConsortiumClient(TlsMaterial.load(s.tls.cert_files), dict(s.parties)), list(s.roster)


def _session_entries(d: Deployment, party: str, query: str) -> list[dict]:
    entries = list(read_entries(d.audit_file(party)))
    sessions = {e["session"] for e in entries if e.get("query") == query}
    return [e for e in entries if e.get("session") in sessions]


def test_an_allowed_analyst_gets_the_pooled_answer_through_pooled_query(
    deployment: Deployment, pooled_frame: pd.DataFrame
) -> None:
    done = deployment.query_cli("alice", "SELECT COUNT(*), AVG(sbp) GROUP BY sex", "--format", "json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    got = {row[0]: dict(zip(body["columns"], row)) for row in body["rows"]}
    want = pooled_frame.groupby("sex").sbp.agg(["size", "mean"])
    for sex, (size, mean) in want.iterrows():
        assert got[sex]["count"] == size
        assert got[sex]["avg(sbp)"] == pytest.approx(mean, rel=1e-9)
    for party in PARTIES:  # every site decided and released, and wrote it down
        events = [e["event"] for e in _session_entries(deployment, party, "SELECT COUNT(*), AVG(sbp) GROUP BY sex")]
        assert events[:1] == ["decision"] and "release" in events


def test_an_analyst_without_the_role_is_refused_by_that_site_with_its_reason(deployment: Deployment) -> None:
    done = deployment.query_here("bob", "SELECT AVG(bmi)")
    assert done.returncode == 1
    assert "hospital-c refuses: analyst 'bob' lacks the 'statistics' role" in done.stderr
    refusal = [e for e in _session_entries(deployment, "hospital-c", "SELECT AVG(bmi)") if e["event"] == "decision"]
    assert refusal and refusal[-1]["decision"] == "refuse" and "statistics" in refusal[-1]["reason"]
    assert deployment.ask("bob", "SELECT COUNT(*)").rows  # counts are bob's role everywhere


def test_an_analyst_listed_nowhere_is_refused_and_logged(deployment: Deployment) -> None:
    done = deployment.query_here("eve", "SELECT COUNT(*) GROUP BY smoking")
    assert done.returncode == 1 and "analyst 'eve' is not authorised at this site" in done.stderr
    for party in PARTIES:
        decisions = [e for e in read_entries(deployment.audit_file(party)) if e["analyst"] == "eve"]
        assert decisions and all(e["decision"] == "refuse" for e in decisions if e["event"] == "decision")


def test_a_certificate_from_another_ca_cannot_even_connect(deployment: Deployment, tmp_path: Path) -> None:
    foreign = create_consortium(tmp_path / "other-ca", [], dealer=False, analysts=["alice"])
    (files,) = foreign.values()
    config = deployment.analyst_file("alice").read_text()
    own = tmp_path / "mallory.toml"
    own.write_text(config.replace('cert = "certs/analyst-alice.pem"', f'cert = "{files.cert}"')
                   .replace('key = "certs/analyst-alice.key"', f'key = "{files.key}"')
                   .replace('ca = "certs/ca.pem"', f'ca = "{deployment.dir / "certs" / "ca.pem"}"'))
    before = {p: len(list(read_entries(deployment.audit_file(p)))) for p in PARTIES}
    done = pooled("query", "--config", str(own), "SELECT COUNT(*)", timeout=60)
    assert done.returncode == 1 and "UNAVAILABLE" in done.stderr
    after = {p: len(list(read_entries(deployment.audit_file(p)))) for p in PARTIES}
    assert after == before  # the TLS handshake failed: no node ran anything for it


def test_the_analyst_may_not_talk_to_the_dealer(deployment: Deployment) -> None:
    import grpc

    from parties import messages
    from parties.certs import Identity
    from parties.proto import pooled_pb2_grpc as rpc

    tls = TlsMaterial.load(load_analyst(deployment.analyst_file("alice")).tls.cert_files)
    with tls.channel(f"127.0.0.1:{deployment.base_port}", Identity.dealer()) as channel:
        with pytest.raises(grpc.RpcError) as info:
            rpc.DealerStub(channel).Lookup(messages.empty(), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_twenty_sequential_and_five_concurrent_queries(deployment: Deployment, pooled_frame: pd.DataFrame) -> None:
    client, roster = _client(deployment, "alice")
    with client:
        for i in range(20):
            age = 30 + i
            result, _, _ = ask(client, roster, f"SELECT COUNT(*) WHERE age >= {age}")
            assert result.rows[0][0] == int((pooled_frame.age >= age).sum())
    queries = {
        ("alice", "SELECT AVG(bmi) GROUP BY smoking"): pooled_frame.groupby("smoking").bmi.mean().to_dict(),
        ("alice", "SELECT AVG(sbp) GROUP BY sex"): pooled_frame.groupby("sex").sbp.mean().to_dict(),
        ("bob", "SELECT COUNT(*) GROUP BY smoking"): pooled_frame.groupby("smoking").size().to_dict(),
        ("bob", "SELECT COUNT(*) GROUP BY sex"): pooled_frame.groupby("sex").size().to_dict(),
        ("bob", "SELECT COUNT(*) WHERE diabetes = 1"): {None: int((pooled_frame.diabetes == 1).sum())},
    }
    answers: dict[tuple[str, str], object] = {}

    def one(key: tuple[str, str]) -> None:
        c, r = _client(deployment, key[0])
        with c:
            answers[key] = ask(c, r, key[1])[0]

    threads = [threading.Thread(target=one, args=(key,)) for key in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(answers) == set(queries)
    for key, want in queries.items():
        rows = answers[key].rows  # type: ignore[attr-defined]
        got = {None: rows[0][0]} if None in want else {row[0]: row[-1] for row in rows}
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-9), key


def _wait_until_running(d: Deployment) -> None:
    """Return once every node runs a session (the query is in its MPC part everywhere)."""
    client, _ = _client(d, "alice")
    with client:
        deadline = time.monotonic() + 60
        while not all(client.status(p).running_sessions for p in PARTIES):
            assert time.monotonic() < deadline, "the query never started everywhere"
            time.sleep(0.02)


@pytest.mark.parametrize("fault", ["kill -9", "SIGSTOP"])
def test_a_node_lost_mid_query_fails_it_everywhere_within_ten_seconds(deployment: Deployment, fault: str) -> None:
    victim = "hospital-b"
    asking = deployment.query_process("alice", LONG_QUERY)
    _wait_until_running(deployment)
    assert asking.poll() is None, "the query should still be running"
    hit = time.monotonic()
    if fault == "kill -9":
        deployment.kill(victim)
    else:
        deployment.signal(victim, signal.SIGSTOP)
    try:
        out, err = asking.communicate(timeout=60)
        waited = time.monotonic() - hit
        assert asking.returncode == 1, (out, err)
        assert waited <= 10.0, f"the analyst waited {waited:.1f} s"  # the nodes' liveness limit is 3 s
        assert f"party {victim} failed" in err
        if fault == "SIGSTOP":  # found by the liveness pings, not by a timeout
            assert "stopped answering" in err, err
        assert "coef" not in out  # no partial result
        for party in ("hospital-a", "hospital-c"):  # the others aborted and logged it, naming the victim
            _, entries = _last_session(deployment, party, LONG_QUERY)
            last = entries[-1]
            assert last["event"] in ("abort", "failure") and victim in last["error"], last
    finally:
        if fault == "kill -9":
            deployment.start_node(victim)  # the node that comes back serves the next query
        else:
            deployment.signal(victim, signal.SIGCONT)
    assert deployment.ask("alice", "SELECT COUNT(*)").rows[0][0] > 0


def _last_session(d: Deployment, party: str, query: str) -> tuple[str, list[dict]]:
    """The last session of `query` in a node's audit log, and its entries, once its outcome is written."""
    deadline = time.monotonic() + 30
    while True:
        entries = list(read_entries(d.audit_file(party)))
        session = [e["session"] for e in entries if e.get("query") == query][-1]
        mine = [e for e in entries if e.get("session") == session]
        if mine[-1]["event"] in ("release", "abort", "failure") or time.monotonic() > deadline:
            return session, mine
        time.sleep(0.05)


def test_a_tampered_audit_line_is_found(deployment: Deployment, tmp_path: Path) -> None:
    deployment.ask("bob", "SELECT COUNT(*) GROUP BY sex")
    log = deployment.audit_file("hospital-a").read_text().splitlines()
    copy = tmp_path / "audit.jsonl"
    line = next(i for i, text in enumerate(log) if '"analyst": "bob"' in text)
    log[line] = log[line].replace('"analyst": "bob"', '"analyst": "alice"')
    copy.write_text("\n".join(log) + "\n")
    done = pooled("audit", "verify", str(copy))
    assert done.returncode == 1 and f"BROKEN at line {line + 1}" in done.stdout
    intact = pooled("audit", "verify", str(deployment.audit_file("hospital-a")))
    assert intact.returncode == 0, intact.stdout
    head = intact.stdout.split("head ")[1].strip()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(deployment.audit_file("hospital-a").read_text().splitlines()[:-1]) + "\n")
    lost = pooled("audit", "verify", str(cut), "--expect-head", head)
    assert lost.returncode == 1 and "entries lost at the end" in lost.stdout


def test_a_node_refuses_a_roster_that_is_not_its_consortium(deployment: Deployment) -> None:
    client, roster = _client(deployment, "alice")
    with client, pytest.raises(ConsortiumError, match="is not this consortium's"):
        client.run("query", {"query": "SELECT COUNT(*)"}, roster=list(reversed(roster)))


def test_a_slow_node_within_the_deadline_only_slows_the_query(deployment: Deployment) -> None:
    """A node frozen for 1 s mid-query (unanswered pings for about half of it), a third of the
    nodes' 3 s liveness limit: the answer comes, whole, and no site aborts."""
    query = "SELECT MEDIAN(bmi), QUANTILE(chol, 0.9) GROUP BY sex, smoking"  # float keys: over a hundred rounds
    client, roster = _client(deployment, "alice")
    with client:
        answer: dict[str, object] = {}

        def run() -> None:
            try:
                answer["result"] = ask(client, roster, query)[0]
            except Exception as exc:  # noqa: BLE001 - reported below
                answer["error"] = exc

        asking = threading.Thread(target=run)
        asking.start()
        _wait_until_running(deployment)
        deployment.signal("hospital-c", signal.SIGSTOP)
        try:
            time.sleep(1.0)
            frozen_mid_query = asking.is_alive()
        finally:
            deployment.signal("hospital-c", signal.SIGCONT)
        asking.join(120)
    assert frozen_mid_query, "the query ended before the node was frozen: nothing was shown"
    assert "error" not in answer, answer.get("error")
    assert answer["result"].columns == ["sex", "smoking", "median(bmi)", "quantile(chol, 0.9)"]  # type: ignore[attr-defined]
    for party in PARTIES:  # every site released; none aborted
        _, entries = _last_session(deployment, party, query)
        events = [e["event"] for e in entries]
        assert "release" in events and not {"abort", "failure"} & set(events), (party, events)


def test_a_declared_schema_is_enforced_with_a_clear_error(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "declared", ["s1", "s2"], ["alice"], rows=400)
    kinds = {"age": "float", "sex": "category", "bmi": "float", "smoking": "category", "diabetes": "int",
             "sbp": "float", "chol": "float", "outcome": "int"}
    d.edit("s1", "data", schema=kinds, domains={"smoking": ["never", "former", "current"]})
    d.edit("s2", "data", schema={**kinds, "sex": "int"})  # wrong: sex holds F and M
    with d:
        with pytest.raises(ConsortiumError, match="'sex' is declared int but holds category"):
            d.ask("alice", "SELECT AVG(age)")
    d.edit("s2", "data", schema=kinds)
    with d:
        assert d.ask("alice", "SELECT AVG(age), COUNT(*) GROUP BY smoking").rows
