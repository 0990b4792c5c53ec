"""Seeds that two computing parties share with each other and with no one else.

With a seed per pair, a party's private input becomes an additive sharing without a
message: the share that party j would have received from party i is instead drawn by
both of them from AES-CTR(seed_ij, label), and i keeps its input minus every such share
(`protocols.sharing`). What each party holds is exactly what the sent version would give
it — a uniformly random share from everyone but the owner — so the security argument is
unchanged, and a round and (n-1) arrays per party are saved on every input.

Each seed is chosen by the lower-ranked party of its pair and sent once per session over
the mutually authenticated TLS link between the two (the dealer never sees it), during
the job's setup, before any of the computation's rounds are counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from mpc.prg import SEED_BYTES, Prg, fresh_seed
from mpc.transport import Transport


def pair_prgs_from_seeds(rank: int, seeds: Mapping[tuple[int, int], bytes]) -> dict[int, Prg]:
    """This party's PRG with each peer, from seeds keyed by (lower rank, higher rank)."""
    return {(j if i == rank else i): Prg(s) for (i, j), s in seeds.items() if rank in (i, j)}


def fresh_pair_seeds(n: int) -> dict[tuple[int, int], bytes]:
    """A new seed for every pair of n parties (for runs where all parties share a process)."""
    return {(i, j): fresh_seed() for i in range(n) for j in range(i + 1, n)}


def agree_pair_seeds(transport: Transport, rank: int, n: int, tag: str) -> dict[int, Prg]:
    """This party's pairwise PRGs, agreed over `transport`; also a barrier.

    Every party sends a fresh seed to each higher-ranked peer and an empty message to each
    lower-ranked one, then waits for a message from every peer: when it returns, all
    parties have reached this point. Every party must call it at the same point of the
    same session with the same `tag`.
    """
    mine = {peer: fresh_seed() for peer in range(rank + 1, n)}
    for peer in range(n):
        if peer != rank:
            transport.send(peer, tag, mine.get(peer, b""))
    prgs = {peer: Prg(seed) for peer, seed in mine.items()}
    for peer in range(n):
        if peer == rank:
            continue
        got = transport.recv(peer, tag)
        if peer < rank:
            if len(got) != SEED_BYTES:
                raise ValueError(f"party {peer} sent a pair seed of {len(got)} bytes, expected {SEED_BYTES}")
            prgs[peer] = Prg(got)
    return prgs
