"""The full table of dealer material kinds: the core's plus those protocols add.

The dealer service and every party read this one table, so a kind a protocol asks for
is always one the dealer knows how to make.
"""

from __future__ import annotations

from mpc.material import CORE_KINDS, with_kinds
from protocols.bits import DABIT_ROWS
from protocols.convert import EXTEND_MASK
from protocols.cox_owned import OWNED_COLUMNS
from protocols.gates import AND_MONOMIALS
from protocols.lookup import LUT_MASK
from protocols.masks import CMP_MASK
from protocols.newton_schulz import NS_FINAL, NS_STEP
from protocols.products import PRODUCT_MASKS
from protocols.trunc_mul import TRUNC_MUL

KINDS = with_kinds(CORE_KINDS, CMP_MASK, DABIT_ROWS, EXTEND_MASK, LUT_MASK, PRODUCT_MASKS, AND_MONOMIALS,
                   NS_STEP, NS_FINAL, TRUNC_MUL, OWNED_COLUMNS)
