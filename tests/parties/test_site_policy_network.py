"""Each site decides on its own: a refusal by one node fails the query with its reason, and is logged."""

from __future__ import annotations

from pathlib import Path

import pytest

from parties.audit import verify
from parties.client import ConsortiumError
from parties.local import LocalConsortium
from queries.errors import TooManyParameters
from queries.synth import write_synthetic
from tests.parties.deployment import run_here


@pytest.mark.network
def test_roles_are_enforced_per_site_and_every_decision_is_audited(tmp_path: Path) -> None:
    files = write_synthetic(300, 2, tmp_path / "data", seed=2)
    policy = tmp_path / "policy.toml"
    policy.write_text('min_cell = 5\n[analysts]\nanalyst = ["counts"]\n')
    names = ["s1", "s2"]
    with LocalConsortium(names, data=dict(zip(names, files)), node_args=["--policy", str(policy)],
                         audit_dir=tmp_path / "audit") as consortium:
        ok = consortium.query("SELECT COUNT(*) GROUP BY sex")
        assert sum(r[1] for r in ok.rows) == 300
        with pytest.raises(ConsortiumError) as info:
            consortium.query("SELECT AVG(bmi)")
        assert "lacks the 'statistics' role" in str(info.value)
        ok_again = consortium.query("CROSSTAB sex BY diabetes")  # the refused query left nothing behind
        assert ok_again.rows[-1][-1] == 300
    for name in names:
        log = tmp_path / "audit" / f"{name}.audit.jsonl"
        report = verify(log)
        assert report.ok, report
        text = log.read_text()
        assert '"decision": "refuse"' in text and '"decision": "allow"' in text and '"event": "release"' in text
        assert "27." not in text  # no data values (e.g. a mean BMI) in the log
    tampered = tmp_path / "audit" / "s1.audit.jsonl"
    lines = tampered.read_text().splitlines()
    where = next(i for i, line in enumerate(lines) if '"refuse"' in line)
    lines[where] = lines[where].replace('"refuse"', '"allow"')
    tampered.write_text("\n".join(lines) + "\n")
    out = run_here(["audit", "verify", str(tampered)], timeout=60)  # the command's code, in this process
    assert out.returncode == 1 and f"BROKEN at line {where + 1}" in out.stdout


@pytest.mark.network
def test_a_sites_parameter_fraction_is_enforced(tmp_path: Path) -> None:
    files = write_synthetic(200, 2, tmp_path / "data", seed=3)
    names = ["s1", "s2"]
    # 3 parameters and ~190 complete cases: allowed at 0.33, refused when a site allows only 0.01.
    with LocalConsortium(names, data=dict(zip(names, files)), node_args=["--max-param-fraction", "0.01"]) as c:
        with pytest.raises(TooManyParameters, match="0.01 of the complete cases"):
            c.query("LINEAR sbp ~ age + bmi")
