"""Feeds: readers of option-chain files and tables, and the live Deribit fetcher.

``read_chain`` turns every supported format into an :class:`~volcal.market.OptionChain`
(format detected from content). The live fetcher lives in :mod:`volcal.feeds.deribit`
and is imported only when used, so reading files never loads ``httpx``.
"""

from __future__ import annotations

from typing import Any

from volcal.feeds.reader import detect_csv_layout, read_chain


def __getattr__(name: str) -> Any:
    if name == "fetch_chain":
        from volcal.feeds.deribit import fetch_chain

        return fetch_chain
    raise AttributeError(f"module 'volcal.feeds' has no attribute {name!r}")


__all__ = ["detect_csv_layout", "fetch_chain", "read_chain"]
