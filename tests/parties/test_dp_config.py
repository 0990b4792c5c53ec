"""Declared numeric ranges in a node's file (`{ min, max }` in [data.domains]) and how they join a site's
DP terms: read back, errors named by key, and merged with the policy's bounds (the wider wins)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parties.certs import CertFiles, Identity
from parties.config import ConfigError, load_node
from parties.datasets_config import datasets_of
from parties.policy import SitePolicy
from parties.privacy_terms import site_terms
from queries.parser import parse
from tests.parties.test_config import _consortium, certs, node_file

__all__ = ["certs"]  # the module-scoped fixture, shared with test_config


def _with_domains(tmp_path: Path, certs: dict[Identity, CertFiles], domains: str, schema: str = "") -> Path:
    _consortium(tmp_path, certs)
    path = tmp_path / node_file("hospital-a")
    path.write_text(path.read_text().replace("[policy]", f"{schema}[data.domains]\n{domains}\n\n[policy]", 1))
    return path


def test_a_numeric_range_is_read_and_reaches_the_sites_dp_terms(tmp_path: Path,
                                                               certs: dict[Identity, CertFiles]) -> None:
    path = _with_domains(tmp_path, certs, 'sex = ["F", "M"]\nage = { min = 18, max = 90 }')
    settings = load_node(path)
    assert dict(settings.data.bounds) == {"age": (18.0, 90.0)} and dict(settings.data.domains) == {"sex": ("F", "M")}
    source = datasets_of(settings.datasets, settings.data).pick(parse("SELECT COUNT(*)"))
    assert source.bounds == {"age": (18.0, 90.0)}
    policy = SitePolicy(disclosure="dp", bounds={"age": (0.0, 80.0), "bmi": (10.0, 60.0)})
    assert site_terms(policy, source.bounds)["bounds"] == {"age": [0.0, 90.0], "bmi": [10.0, 60.0]}


@pytest.mark.parametrize(("domains", "schema", "message"), [
    ("age = { min = 90, max = 18 }", "", "data.domains.age: a numeric range is { min = .., max = .. }"),
    ("age = { min = 1 }", "", "data.domains.age: a numeric range is { min = .., max = .. }"),
    ("sex = { min = 0, max = 1 }", '[data.schema]\nage = "int"\nsex = "category"\n\n',
     "data.domains.sex: a range is declared only for a numeric column"),
])
def test_a_malformed_range_is_named(tmp_path: Path, certs: dict[Identity, CertFiles], domains: str, schema: str,
                                    message: str) -> None:
    path = _with_domains(tmp_path, certs, domains, schema)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_node(path)
