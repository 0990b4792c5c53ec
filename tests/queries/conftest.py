"""Fixtures shared by the query tests."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def pooled(sites: list[pd.DataFrame]) -> pd.DataFrame:
    """Every site's rows in one table, the plaintext a reference answer reads (`sites`: the module's)."""
    return pd.concat(sites, ignore_index=True)
