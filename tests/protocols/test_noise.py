"""Discrete Laplace noise drawn inside MPC: the right distribution (chi-square against scipy's
exact probabilities), 4 rounds whatever the size, the bytes `laplace_bytes` says, a transcript
of masked values only, and noise that n - 1 parties and the dealer cannot determine."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import product
from typing import Any

import numpy as np
import pytest
from scipy import stats

from mpc.context import PartyContext
from mpc.dealer import DealerEngine, SeededMaterial
from mpc.fixedpoint import FAST
from mpc.inprocess import InProcessNetwork, make_contexts, run_parties
from mpc.ring import RING64, RING128, Ring
from mpc.share import Share, reconstruct
from mpc.stats import CommStats
from protocols.material import KINDS
from protocols.noise import (
    ROUNDS,
    WordSource,
    add_laplace,
    bit_thresholds,
    discrete_laplace,
    laplace_bits,
    laplace_bytes,
    laplace_dealer_bytes,
    laplace_distance,
    scale_for,
    seeded_words,
)
from protocols.opening import open_arith
from tests.support import Recorder, deal

SCALES = (0.7, 3.0, 12.0)


def _seed(*parts: Any) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def _noise(shares: list[Share]) -> np.ndarray:
    ring = shares[0].ring
    return np.array([int(v) for v in np.ravel(ring.to_signed(reconstruct(shares)))], dtype=np.int64)


def _draw(n: int, t: Any, size: int, ring: Ring, sources: list[WordSource] | None = None,
          contexts: list[PartyContext] | None = None) -> tuple[np.ndarray, list[CommStats]]:
    """Run the sampler on n in-process parties: the opened noise and each party's counters."""

    def program(ctx: PartyContext) -> tuple[Share, CommStats]:
        before = ctx.stats.snapshot()
        z = discrete_laplace(ctx, t, size, ring) if sources is None else \
            discrete_laplace(ctx, t, size, ring, source=sources[ctx.rank])
        return z, ctx.stats.since(before)

    out = run_parties(n, program, kinds=KINDS, contexts=contexts)
    assert all(z.frac == 0 and z.shape == (size,) for z, _ in out)
    return _noise([z for z, _ in out]), [s for _, s in out]


def _chi_square(draws: np.ndarray, t: float) -> float:
    """p-value of the draws against the exact discrete Laplace of scale t (bins with >= 20 expected, tails pooled)."""
    law = stats.dlaplace(1.0 / t)
    count = len(draws)
    k = 0
    while count * law.pmf(k + 1) >= 20:
        k += 1
    inner = np.arange(-k, k + 1)
    observed = [np.sum(draws < -k)] + [np.sum(draws == v) for v in inner] + [np.sum(draws > k)]
    expected = np.array([law.cdf(-k - 1)] + list(law.pmf(inner)) + [law.sf(k)]) * count
    return float(stats.chisquare(observed, expected).pvalue)


def test_the_draws_follow_the_exact_discrete_laplace_at_three_scales_in_one_call() -> None:
    """12,000 draws per scale, the three scales one per-element array of one call on two parties,
    against scipy's dlaplace; the same draws reject a scale 10% off (the test can fail)."""
    per = 12_000
    t = np.repeat(np.array(SCALES), per)
    sources = [seeded_words(_seed("chi2", rank)) for rank in range(2)]
    draws, spent = _draw(2, t, t.size, RING64, sources)  # three: test_one_honest_party_is_enough_for_the_exact_law
    assert spent[0].rounds == ROUNDS
    for i, scale in enumerate(SCALES):
        part = draws[i * per : (i + 1) * per]
        assert _chi_square(part, scale) > 0.01, scale
        assert _chi_square(part, scale * 1.1) < 1e-4, scale
        assert abs(part.mean()) < 4 * np.sqrt(stats.dlaplace(1.0 / scale).var() / per)


@pytest.mark.parametrize(("ring", "n"), [(RING64, 2), (RING64, 3), (RING64, 5), (RING128, 2), (RING128, 3)],
                         ids=["z64-2", "z64-3", "z64-5", "z128-2", "z128-3"])
def test_four_rounds_whatever_the_size_and_the_bytes_laplace_bytes_says(n: int, ring: Ring) -> None:
    """The parties' bytes depend on n, not on the ring, and the dealer's on the ring, not on n: five
    parties on Z_2^64 and two and three on both rings check both counts everywhere they vary."""
    for size, t in ((1, 2.0**20), (700, np.repeat(np.geomspace(0.5, 2.0**30, 7), 100))):
        draws, spent = _draw(n, t, size, ring)
        assert {s.rounds for s in spent} == {ROUNDS} == {4}
        assert {s.bytes_sent for s in spent} == {laplace_bytes(t, size) * (n - 1)}
        assert spent[-1].dealer_bytes == laplace_dealer_bytes(t, size, ring)
        assert np.all(np.abs(draws) < 2 ** (max(laplace_bits(float(v)) for v in np.ravel(t)) + 1))
    assert laplace_bytes(2.0**20, 1) == 1184 and laplace_bytes(2.0**20, 64) == 1184 * 52


def test_a_large_scale_gives_large_noise_of_the_right_spread() -> None:
    """t = 2^20 (f = 20, sensitivity 1, eps 1): 26 bits per geometric, spread as the exact law's."""
    t = 2.0**20
    draws, _ = _draw(2, t, 4000, RING64, [seeded_words(_seed("wide", r)) for r in range(2)])
    sd = np.sqrt(2 * np.exp(-1 / t)) / (1 - np.exp(-1 / t))
    assert abs(draws.std() / sd - 1) < 0.05
    assert laplace_bits(t) == 26


def test_the_sampled_law_is_within_laplace_distance_of_the_exact_one() -> None:
    """The exact law of one sampled geometric (product of its coins, in fractions) against the
    exact geometric (60-digit decimals): its distance is below half of `laplace_distance`."""
    for t in (0.5, 3.0):
        coins = [Fraction(c, 2**64) for c in bit_thresholds(t)]
        with localcontext() as dec:
            dec.prec = 60
            q = (-1 / Decimal(t)).exp()
            total = Decimal(0)
            for bits in product((0, 1), repeat=len(coins)):
                sampled = Fraction(1)
                for b, p in zip(bits, coins):
                    sampled *= p if b else 1 - p
                k = sum(b << i for i, b in enumerate(bits))
                exact = (1 - q) * q**k
                total += abs(Decimal(sampled.numerator) / Decimal(sampled.denominator) - exact)
            total += q ** (2 ** len(coins))  # P(G >= 2^B): the sampler never draws it
            assert 0 < total / 2 <= Decimal(laplace_distance(t)) / 2
    for t in np.geomspace(1e-3, 2.0**48, 200):
        assert laplace_distance(float(t)) <= (laplace_bits(float(t)) + 1) * 2.0**-64 < 2.0**-58
    for i, threshold in enumerate(bit_thresholds(1.0)):  # p_i = 1 / (1 + e^(2^i)) for t = 1
        reference = 2**64 / (1 + np.exp(2.0**i))  # in floats: right to 1e-14 relative
        assert abs(threshold - reference) <= 0.5 + 1e-14 * reference


def _transcripts(n: int, program: Callable[[PartyContext], Any]) -> list[list[tuple[str, int, bytes]]]:
    ctxs = make_contexts(n, kinds=KINDS)
    recorders = [Recorder(c.transport) for c in ctxs]
    for c, r in zip(ctxs, recorders):
        c.transport = r
    run_parties(n, program, contexts=ctxs)
    return [r.log for r in recorders]


def _repeated(first: list[list], second: list[list]) -> list[str]:
    """Rounds in which some opened word (the XOR or the sum of the parties' messages, read as
    64-bit words) is the same in two runs: a masked opening differs from run to run."""

    def opened(logs: list[list]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        rounds: dict[str, list[bytes]] = {}
        for log in logs:
            first = {tag: payload for tag, _, payload in reversed(log)}  # a party sends every peer the same
            for tag, payload in first.items():
                rounds.setdefault(tag, []).append(payload)
        words = {t: np.stack([np.frombuffer(p, dtype=np.uint64) for p in ps]) for t, ps in rounds.items()}
        return {t: (np.bitwise_xor.reduce(w, axis=0), w.sum(axis=0, dtype=np.uint64)) for t, w in words.items()}

    a, b = opened(first), opened(second)
    assert a.keys() == b.keys()
    return [t for t in a if any(np.any(x == y) for x, y in zip(a[t], b[t]))]


def test_the_transcript_opens_masked_values_only() -> None:
    """The same noise twice (same contributions): every opened word differs between the runs.
    Other noise: the same messages, of the same sizes, in the same order. And the check
    catches an opening of the noise itself."""
    t = np.repeat([1.5, 40.0], 500)

    def sampler(tag: str) -> Callable[[PartyContext], Share]:
        return lambda ctx: discrete_laplace(ctx, t, t.size, RING64, source=seeded_words(_seed(tag, ctx.rank)))

    a1, a2, b1 = _transcripts(3, sampler("a")), _transcripts(3, sampler("a")), _transcripts(3, sampler("b"))
    shapes = [[(tag, dst, len(p)) for tag, dst, p in log] for log in a1]
    assert shapes == [[(tag, dst, len(p)) for tag, dst, p in log] for log in b1]
    assert len({tag for tag, _, _ in a1[0]}) == ROUNDS
    assert _repeated(a1, a2) == []

    def leaky(ctx: PartyContext) -> Any:
        return open_arith(ctx, [sampler("a")(ctx)], "leak")

    assert _repeated(_transcripts(3, leaky), _transcripts(3, leaky)) == ["5/leak"]


def _fixed_contexts(n: int, dealer_seeds: list[bytes], session: str) -> list[PartyContext]:
    """Contexts whose dealer material is fixed by `dealer_seeds` and `session` (no pairwise seeds)."""
    engine = DealerEngine(dealer_seeds, session, KINDS)
    net = InProcessNetwork(n)
    return [
        PartyContext(rank, n, net.transport(rank),
                     SeededMaterial(rank, n, dealer_seeds[rank], session, KINDS,
                                    engine.correction if rank == n - 1 else None), session)
        for rank in range(n)
    ]


@pytest.mark.parametrize("n", [2, 3])
def test_n_minus_one_contributions_and_the_dealer_material_do_not_determine_the_noise(n: int) -> None:
    """All else equal — the dealer's seeds and session, parties 0..n-2's contributions — the
    noise is reproduced exactly, and changing only the last party's contribution changes it."""
    t, size = 6.0, 2000
    dealer = [_seed("dealer", r) for r in range(n)]

    def run(last: str) -> np.ndarray:
        sources = [seeded_words(_seed("party", r)) for r in range(n - 1)] + [seeded_words(_seed(last))]
        return _draw(n, t, size, RING64, sources, _fixed_contexts(n, dealer, "fixed-session"))[0]

    first, again, other = run("last-a"), run("last-a"), run("last-b")
    assert np.array_equal(first, again)
    coincide = np.mean(first == other)
    assert coincide < 2 * float(np.sum(stats.dlaplace(1 / t).pmf(np.arange(-60, 61)) ** 2))
    assert np.std(first) > 5 and np.std(other) > 5


def test_one_honest_party_is_enough_for_the_exact_law() -> None:
    """Parties 0 and 1 contribute all-zero words (the worst they can do); party 2's fresh words
    alone make the draws exact discrete Laplace."""

    def zeros(shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.uint64)

    draws, _ = _draw(3, 2.5, 12_000, RING64, [zeros, zeros, seeded_words(_seed("honest"))])
    assert _chi_square(draws, 2.5) > 0.01
    all_zero, _ = _draw(3, 2.5, 1000, RING64, [zeros, zeros, zeros])
    assert np.all(all_zero == 0)  # u = 0 < T for every coin: G1 = G2 = 2^B - 1


@pytest.mark.parametrize(
    "t, size, message",
    [
        (0.0, 3, "noise scale t must be a positive"),
        (-1.0, 3, "noise scale t must be a positive"),
        (float("nan"), 3, "noise scale t must be a positive"),
        (float("inf"), 3, "noise scale t must be a positive"),
        (2.0**49, 3, r"too large for Z_2\^64"),
        ([1.0, 2.0], 3, "2 noise scales for 3 values"),
        (1.0, -1, "non-negative integer"),
        (1.0, True, "non-negative integer"),
        (1.0, 2.5, "non-negative integer"),
    ],
)
def test_bad_arguments_fail_before_any_message(t: Any, size: Any, message: str) -> None:
    ctx = make_contexts(2, kinds=KINDS)[0]
    with pytest.raises(ValueError, match=message):
        discrete_laplace(ctx, t, size, RING64)
    assert ctx.stats.rounds == 0 and ctx.stats.bytes_sent == 0


def test_no_values_no_rounds_and_the_scale_for_a_release() -> None:
    ctx = make_contexts(2, kinds=KINDS)[0]
    assert discrete_laplace(ctx, 1.0, 0, RING64).shape == (0,) and ctx.stats.rounds == 0
    assert float(scale_for(2.0, 0.5, frac=20)) == 4.0 * 2**20
    assert np.array_equal(scale_for(1.0, [1.0, 0.25]), [1.0, 4.0])
    with pytest.raises(ValueError, match="epsilon must be a positive"):
        scale_for(1.0, 0.0)
    with pytest.raises(ValueError, match="sensitivity must be a positive"):
        scale_for(-1.0, 1.0)


def test_add_laplace_adds_the_same_noise_at_the_value_s_scale() -> None:
    """x + Z at x's scale; with the same contributions Z is exactly what discrete_laplace draws."""
    values = np.array([[1.5, -2.25], [1000.0, 0.0]])
    dealt = deal(FAST, values, 3)
    t = scale_for(1.0, 2.0, frac=FAST.frac)  # noise of spread ~ 1/2 in real units
    sources = [seeded_words(_seed("add", r)) for r in range(3)]
    noisy = run_parties(3, lambda ctx, x: add_laplace(ctx, x, t, source=sources[ctx.rank]), kinds=KINDS,
                        args=dealt)
    assert {(s.frac, s.shape) for s in noisy} == {(FAST.frac, (2, 2))}
    added = FAST.ring.to_signed(reconstruct(noisy)) - FAST.ring.to_signed(reconstruct(dealt))
    again = [seeded_words(_seed("add", r)) for r in range(3)]
    assert np.array_equal(added.ravel(), _draw(3, t, 4, RING64, again)[0])
    assert np.all(added != 0) and np.all(np.abs(FAST.decode(reconstruct(noisy), FAST.frac) - values) < 40)
