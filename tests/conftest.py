"""Shared test fixtures.

Real market data is read from ``../shared/data`` next to the repository (or from
``$VOLCAL_DATA_DIR``). Outside CI a test that needs it is skipped with a reason when it
is absent; in CI (``CI`` set) its absence is a failure, so CI never passes vacuously.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]


# In CI the property tests draw the same examples on every run (a red CI names a change,
# not a lucky draw); outside CI they keep exploring, and what they find is added to the
# tests as an explicit @example.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

_DATA_FIXTURES = {"raw_data", "snapshot_dir"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that reaches the real data through its fixtures carries the ``data``
    marker (so ``-m "not data"`` really runs nothing that reads ../shared/data)."""
    for item in items:
        if _DATA_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker(
            "data"
        ):
            item.add_marker(pytest.mark.data)


def _data_root() -> Path:
    env = os.environ.get("VOLCAL_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def raw_data() -> Path:
    """Folder of the real raw market data (``.../shared/data/raw``)."""
    root = _data_root() / "raw"
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real market data missing in CI: {root}")
        pytest.skip(f"real market data not found at {root}")
    return root


@pytest.fixture(scope="session")
def snapshot_dir(raw_data: Path) -> Path:
    """Folder of the Deribit full-chain snapshots (BTC and ETH)."""
    return raw_data / "svcj-deribit-snapshots"


@pytest.fixture(scope="session")
def quote_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generic quote-table CSV (strike, is_call, bid, ask, forward, t) of the built-in
    synthetic Heston chain: CLI tests that need no real data read it."""
    import pandas as pd

    from volcal.synthetic import synthetic_chain

    ch = synthetic_chain(seed=3)
    df = pd.DataFrame(
        {
            "strike": ch.strike,
            "is_call": ch.is_call,
            "bid": ch.usd("bid"),
            "ask": ch.usd("ask"),
            "forward": ch.forward,
            "t": ch.t,
        }
    )
    path = tmp_path_factory.mktemp("quote_table") / "chain.csv"
    df.to_csv(path, index=False)
    return path
