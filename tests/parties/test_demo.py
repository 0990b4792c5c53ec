"""`pooled demo`, the README's main job: every query answered over real processes, the models'
coefficients equal to the plaintext fits it prints beside them, and every process stopped."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from parties.commands.demo import QUERIES


def _sections(out: str) -> dict[str, str]:
    """The demo's output cut at each `>>> query` line: {query: what follows, up to the next one}."""
    parts = re.split(r"^>>> (.*)$", out, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def _coefficients(section: str) -> tuple[dict[str, float], dict[str, float]]:
    """A model's (pooled, plaintext) coefficients by term, read from its table and its reference lines."""
    pooled_part, plain_part = section.split("--- plaintext")
    pooled = {m[1]: float(m[2]) for m in re.finditer(r"^\s*(\S+)\s+(-?[\d.]+(?:e-?\d+)?)\s+[\d.]", pooled_part, re.M)
              if m[1] not in ("term",)}
    plain = {m[1]: float(m[2]) for m in re.finditer(r"^(\S+)\s+(-?[\d.]+(?:e-?\d+)?)$", plain_part, re.M)}
    return pooled, plain


@pytest.mark.network
def test_the_demo_answers_every_query_as_the_plaintext_does_and_stops_its_processes() -> None:
    run = subprocess.run([sys.executable, "-m", "parties", "demo", "--rows", "1500"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    sections = _sections(run.stdout)
    assert list(sections) == list(QUERIES)
    for query, section in sections.items():
        assert "[pooled in MPC:" in section and "refused" not in section, query
    for query in (q for q in QUERIES if q.startswith(("LOGISTIC", "POISSON"))):
        pooled, plain = _coefficients(sections[query])
        assert set(plain) <= set(pooled) and len(plain) >= 4, (query, pooled, plain)
        for term, value in plain.items():
            assert pooled[term] == pytest.approx(value, rel=2e-3, abs=1e-4), (query, term)
    assert run.stdout.rstrip().endswith("all processes stopped")
