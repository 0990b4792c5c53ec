"""Order statistics of keys the parties hold privately, found without opening anything.

Each party (the *owner* of its slots) holds, for each of S searches, L_p slots: a K-bit
key it knows in the clear and a membership bit (the slot belongs to the search: right
group, not padding). The parties hold a shared rank r per search. `select_ranks` returns
XOR shares of the bits of the r-th smallest member key of every search — the smallest P
with count(key <= P) >= r — and opens nothing but uniformly masked values: no party
learns the keys' order, a count, a comparison, or the result.

The search decides P from the top, B bits per step (a 2^B-way search; M = 2^B - 1
thresholds). With P the bits decided so far and `c_i` the next B-bit chunk of slot i's
key, every (slot, search) keeps XOR-shared bits

    eq_i  = [member_i and prefix(key_i) == P]      u_ij = eq_i AND [c_i <= j]   (j < M)

and every search an additive count LT = #{member keys with prefix < P} in Z_2^64. A step:

1. (one round) Convert the u_ij to additive shares with daBits (open u XOR s) and sum per
   search: U_j = #{prefix == P, chunk <= j}; in the same message, the Beaver product that
   finishes the previous step's LT update, and the ANDs that prepare the next step (2).
   Then c_j = LT + U_j = count(key <= (P, j, 1...1)).
2. The owner's next chunk enters as XOR-shared indicator bits q_j = [c'_i <= j] (input
   sharing from pairwise seeds: no message). With v_J = eq AND [c_i == J] (XOR of
   neighbouring u's) and x_K = v_(K-1) XOR v_K, the ANDs v_0 AND q_j and x_K AND q_j do
   not depend on this step's outcome, so they ride along with round 1.
3. (1 + 2 or 3 rounds) d_j = [c_j < r] for every j and search: open c_j - r + rho, then the
   borrow circuit on the low b bits, 2^b above the number of slots in all (`sign_bit`; exact
   while |c_j - r| < 2^b, which holds for every member rank; `protocols.circuits`: ceil(log4 b)
   levels, 2 up to 2^16 slots). The chunk of the answer is D = sum_j d_j (the d_j are a
   thermometer code), so its bits are XORs of d's.
4. (one round) eq' = v_0 XOR sum_K d_(K-1) AND x_K and u'_j = (v_0 AND q_j) XOR
   sum_K d_(K-1) AND (x_K AND q_j) — eq' = eq AND [c_i == D] — with the d's broadcast
   over the slots; in the same message, a daBit turns each d_j into an additive bit for
   LT' = LT + sum_j d_j (U_j - U_(j-1)), whose product finishes in the next round 1.

Rounds: 5 per step up to 2^16 slots in all (6 beyond), one fewer for a search's last. Per slot,
search and step, each party sends every peer M + 4 M (M + 1) bits (9 for B = 1, 51 for B = 2)
and the dealer sends the last party M daBits (64 bits each) and 2 M (M + 1) AND-triple bits. Slots are padded to a
public count per party, so sizes reveal nothing about the keys or the groups.

References: the bitwise "search by counting below a threshold" is that of Aggarwal,
Mishra & Pinkas, "Secure computation of the k-th ranked element", EUROCRYPT 2004, which
opens each comparison; here the threshold stays shared. Comparison from a bitwise-shared
mask: Damgard et al., TCC 2006; daBits: Rotaru & Wood, INDOCRYPT 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.ring import RING64
from mpc.share import Share
from protocols.beaver import PendingMul
from protocols.bits import PendingRowsToArith, rows_of
from protocols.boolean import PendingAnd, from_opened_bit, pack_lanes, unpack_lanes
from protocols.circuits import Circuit, borrow_out_gates, generate_propagate, run_circuits
from protocols.opening import open_arith, open_mixed, open_xor
from protocols.sharing import share_words

COUNT_BITS = 30
"""Counts and ranks stay below 2^COUNT_BITS, so a count minus a rank has its sign in bit 31."""


@dataclass(frozen=True)
class Layout:
    """The public shape of a search: slots per party, key width per search, bits per step."""

    slots: tuple[int, ...]  # L_p per party, each a positive multiple of 64
    widths: tuple[int, ...]  # K per search (bits of its keys)
    step_bits: int  # B

    def __post_init__(self) -> None:
        if any(s <= 0 or s % 64 for s in self.slots):
            raise ValueError(f"slots per party must be positive multiples of 64, got {self.slots}")
        if sum(self.slots) >= 1 << COUNT_BITS:
            raise ValueError(f"at most 2^{COUNT_BITS} slots in all")
        if not 1 <= self.step_bits <= 4 or any(not 1 <= k <= 64 for k in self.widths):
            raise ValueError("keys of 1 to 64 bits, searched 1 to 4 bits per step")

    @property
    def searches(self) -> int:
        return len(self.widths)

    def steps(self, search: int) -> int:
        return -(-self.widths[search] // self.step_bits)

    @property
    def max_steps(self) -> int:
        return max((self.steps(s) for s in range(self.searches)), default=0)


def owner_bits(layout: Layout, keys: np.ndarray, member: np.ndarray) -> np.ndarray:
    """This party's private input, as words: membership, the first step's u, and every
    step's indicators q_j = [chunk <= j], shape (1 + M + T M, S, L / 64), keys (S, L)."""
    b, m = layout.step_bits, (1 << layout.step_bits) - 1
    s_count, slots = keys.shape
    t_max = layout.max_steps
    keys = np.asarray(keys, dtype=np.uint64)
    rows = np.zeros((1 + m + t_max * m, s_count, slots), dtype=bool)
    rows[0] = member
    for s in range(s_count):
        steps = layout.steps(s)
        for t in range(steps):  # the first chunk is padded with zeros at the top
            chunk = (keys[s] >> np.uint64((steps - 1 - t) * b)) & np.uint64(m)
            for j in range(m):
                rows[1 + m + t * m + j, s] = chunk <= np.uint64(j)
        if steps:
            rows[1 : 1 + m, s] = rows[1 + m : 1 + 2 * m, s] & member[s]
    return np.stack([pack_lanes(r.ravel()) for r in rows.reshape(rows.shape[0], -1)]).reshape(
        rows.shape[0], s_count, slots // 64
    )


class _State:
    """Every party's slots for every search, XOR-shared: eq (S, W_p), u (M, S, W_p), and the
    owners' indicator rows q (T, M, S, W_p), per party p; gathered per step for the active searches."""

    def __init__(self, layout: Layout, shared: list[np.ndarray]) -> None:
        m, t_max, s_count = (1 << layout.step_bits) - 1, layout.max_steps, layout.searches
        self.layout = layout
        self.eq, self.u, self.q = [], [], []
        for p, words in enumerate(shared):
            w = words.reshape(1 + m + t_max * m, s_count, layout.slots[p] // 64)
            self.eq.append(w[0].copy())
            self.u.append(w[1 : 1 + m].copy())
            self.q.append(w[1 + m :].reshape(t_max, m, s_count, -1))

    def gather(self, arrays: list[np.ndarray], sel: Sequence[int]) -> np.ndarray:
        """Concatenate party by party the selected searches' words (last two axes: search, word)."""
        return np.concatenate([a[..., list(sel), :].reshape(*a.shape[:-2], -1) for a in arrays], axis=-1)

    def scatter(self, arrays: list[np.ndarray], sel: Sequence[int], flat: np.ndarray) -> None:
        pos = 0
        for a in arrays:
            size = len(sel) * a.shape[-1]
            a[..., list(sel), :] = flat[..., pos : pos + size].reshape(*a.shape[:-2], len(sel), a.shape[-1])
            pos += size

    def broadcast(self, bits: np.ndarray, sel: Sequence[int]) -> np.ndarray:
        """One XOR-shared bit per selected search (bits: 0/1, shape (..., len(sel))) spread
        over all that search's slot words of every party: all-ones or all-zero words."""
        full = np.uint64(0) - np.asarray(bits, dtype=np.uint64)
        parts = [np.repeat(full, self.layout.slots[p] // 64, axis=-1) for p in range(len(self.eq))]
        return np.concatenate(parts, axis=-1)

    def block_sums(self, values: np.ndarray, sel: Sequence[int]) -> np.ndarray:
        """Per selected search, the Z_2^64 sum over all parties' slots of per-slot values (..., bits)."""
        out = np.zeros((*values.shape[:-1], len(sel)), dtype=np.uint64)
        pos = 0
        for p in range(len(self.eq)):
            size = len(sel) * self.layout.slots[p]
            block = values[..., pos : pos + size].reshape(*values.shape[:-1], len(sel), self.layout.slots[p])
            out += block.sum(axis=-1, dtype=np.uint64)
            pos += size
        return out


def sign_bit(layout: Layout) -> int:
    """b with every count and member rank below 2^b (the slots in all): c - r has its sign in bit b."""
    return sum(layout.slots).bit_length()


def _sign_gates(ctx: PartyContext, opened: np.ndarray, r_rows: np.ndarray, b: int) -> Circuit:
    """Bit b of c - r for public c and shared r (bit rows): the sign of x = c - r when
    |x| < 2^b. Borrow out of bits 0..b-1 (ceil(log4 b) levels: 2 up to 2^16 slots), XOR bit b of both."""
    c_rows = rows_of(RING64, opened)
    g, p = generate_propagate(ctx, c_rows[:b], r_rows[:b])
    borrow = yield from borrow_out_gates(g, p)
    top = borrow ^ r_rows[b]
    return top ^ c_rows[b] if ctx.is_leader else top


def select_ranks(ctx: PartyContext, layout: Layout, mine: np.ndarray, ranks: Share) -> np.ndarray:
    """XOR shares of the bits of the ranks[s]-th smallest member key of every search s.

    `mine` is this party's `owner_bits`; `ranks` integer shares in Z_2^64, 1 <= r <= the
    number of member keys for the result to be meaningful (otherwise the bits are those of
    the largest key of the width, and nothing reveals which happened). Returns this party's
    XOR shares, 0/1 in a uint64 array of shape (S, max width), bit 0 first.
    """
    m = (1 << layout.step_bits) - 1
    s_count, t_max = layout.searches, layout.max_steps
    out = np.zeros((s_count, max(layout.widths, default=0)), dtype=np.uint64)
    if not s_count:
        return out
    shapes = [(1 + m + t_max * m, s_count, s // 64) for s in layout.slots]
    st = _State(layout, share_words(ctx, mine, shapes, "rank-inputs"))
    lt = np.zeros(s_count, dtype=np.uint64)
    pending_lt: tuple[PendingMul, list[int]] | None = None
    for t in range(t_max):
        act = [s for s in range(s_count) if layout.steps(s) > t]
        nxt = [s for s in act if layout.steps(s) > t + 1]
        bits = sum(len(act) * L for L in layout.slots)

        # Round 1: counts of the current u's, the last LT product, the next step's private ANDs.
        b2a = PendingRowsToArith.begin(ctx, st.gather(st.u, act), bits, RING64)
        v = _onehot(st.gather(st.eq, nxt), st.gather(st.u, nxt), m)
        xs = [v[k - 1] ^ v[k] for k in range(1, m + 1)]
        q_next = st.gather([q[t + 1] for q in st.q], nxt) if nxt else np.zeros((m, 0), np.uint64)
        prep = PendingAnd.begin(ctx, [(v[0], q_next[j]) for j in range(m)]
                                + [(x, q_next[j]) for x in xs for j in range(m)] if nxt else [])
        mul = pending_lt[0] if pending_lt else None
        words, shares = open_mixed(ctx, b2a.words() + prep.words(), mul.shares() if mul else [], "rank-count")
        e, s_arith = b2a.opened_bits(words[:1])
        counts = st.block_sums(_signed_sum_terms(e, s_arith), act)
        if ctx.is_leader:
            counts += st.block_sums(e, act)
        if mul is not None and pending_lt is not None:
            (prod,) = mul.finish(ctx, shares)
            lt[pending_lt[1]] += prod.data.reshape(m, -1).sum(axis=0, dtype=np.uint64)
        pre = prep.finish(ctx, words[1:])
        c = lt[act][None, :] + counts  # (M, |act|): count(key <= (P, j, 1..1))

        # Rounds 2-7: d_j = [c_j < r], XOR-shared.
        flat = (c - ranks.data[act][None, :]).ravel()
        mask = ctx.dealer(MaterialRequest("cmp_mask", {"shape": [int(flat.size)], "ring": 64}))
        (opened,) = open_arith(ctx, [Share(flat + mask["r"], RING64)], "rank-cmp-open")
        (d_row,) = run_circuits(ctx, [_sign_gates(ctx, opened, mask["r_bits"], sign_bit(layout))], "rank-cmp-level")
        d = unpack_lanes(d_row, int(flat.size)).reshape(m, len(act))
        _record_chunk(out, layout, act, t, d)
        if not nxt:
            continue

        # Round 8: eq' = eq AND [chunk == D] and the next u' from the prepared ANDs; d to additive.
        pos = [act.index(s) for s in nxt]
        dk = [st.broadcast(d[k - 1, pos], nxt) for k in range(1, m + 1)]
        pre0, prex = pre[:m], [pre[m + (k - 1) * m : m + k * m] for k in range(1, m + 1)]
        upd = PendingAnd.begin(ctx, [(dk[k], xs[k]) for k in range(m)]
                               + [(dk[k], prex[k][j]) for k in range(m) for j in range(m)])
        words = open_xor(ctx, upd.words() + [d_row ^ mask["s"]], "rank-update")
        ands = upd.finish(ctx, words[:2])
        eq_next = v[0].copy()
        u_next = np.stack(pre0)
        for k in range(m):
            eq_next ^= ands[k]
            for j in range(m):
                u_next[j] ^= ands[m + k * m + j]
        st.scatter(st.eq, nxt, eq_next)
        st.scatter(st.u, nxt, u_next)
        d_arith = from_opened_bit(ctx, unpack_lanes(words[2], int(flat.size)), RING64, mask["s_arith"])
        d_arith = d_arith.reshape(m, len(act))[:, pos]
        steps_u = counts[:, pos] - np.concatenate([np.zeros((1, len(nxt)), np.uint64), counts[:-1, pos]])
        pending_lt = (PendingMul.begin(ctx, [(Share(d_arith.ravel(), RING64), Share(steps_u.ravel(), RING64))]), nxt)
    return out


def _onehot(eq: np.ndarray, u: np.ndarray, m: int) -> list[np.ndarray]:
    """v_J = eq AND [chunk == J], J = 0..M, from the thermometer u_j = eq AND [chunk <= j] (local)."""
    return [u[0]] + [u[j] ^ u[j - 1] for j in range(1, m)] + [eq ^ u[m - 1]]


def _signed_sum_terms(e: np.ndarray, s_arith: np.ndarray) -> np.ndarray:
    """(1 - 2e) [s] per converted bit: its additive share minus the public part e."""
    return np.where(e.astype(bool), np.uint64(0) - s_arith, s_arith)


def _record_chunk(out: np.ndarray, layout: Layout, act: list[int], t: int, d: np.ndarray) -> None:
    """Write the bits of D = sum_j d_j (bit b = XOR of d_(k-1) over k a multiple of 2^b) for step t."""
    b, m = layout.step_bits, (1 << layout.step_bits) - 1
    for col, s in enumerate(act):
        low = (layout.steps(s) - 1 - t) * b
        for bit in range(min(b, layout.widths[s] - low)):
            value = np.uint64(0)
            for k in range(1 << bit, m + 1, 1 << bit):
                value ^= d[k - 1, col]
            out[s, low + bit] = value
