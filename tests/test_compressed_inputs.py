"""Compressed inputs (gzip, zstd) read exactly like the plain files (issue: history store).

Market-data archives ship ``.csv.gz``; the readers detect compression from the first
bytes, so a compressed file gives the same chain as the plain one, and a damaged
archive is a one-line error naming the file.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import volcal
from volcal._io import compression_of, decompress, read_bytes
from volcal.errors import DataError


def test_gzip_and_zstd_round_trip(tmp_path: Path) -> None:
    import zstandard

    payload = b"strike,is_call\n100,1\n" * 50
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(payload))
    zs = tmp_path / "a.csv.zst"
    zs.write_bytes(zstandard.ZstdCompressor().compress(payload))
    assert compression_of(gz.read_bytes()) == "gzip"
    assert compression_of(zs.read_bytes()) == "zstd"
    assert read_bytes(gz) == payload
    assert read_bytes(zs) == payload
    assert decompress(payload, "x") == payload  # plain content passes through


def test_corrupt_archives_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"strike,is_call\n" * 1000)[:40])
    with pytest.raises(DataError, match=r"bad\.csv\.gz: corrupt gzip archive"):
        volcal.read_chain(bad)
    zs = tmp_path / "bad.zst"
    import zstandard

    whole = zstandard.ZstdCompressor().compress(b"strike,is_call\n" * 1000)
    zs.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"bad\.zst: corrupt zstd archive"):
        read_bytes(zs)
    with pytest.raises(DataError, match="is a directory"):
        read_bytes(tmp_path)


@pytest.mark.data
def test_real_gzip_snapshot_equals_plain(raw_data: Path, tmp_path: Path) -> None:
    hist = raw_data / "svcj-deribit-history"
    files = sorted(hist.glob("*.csv.gz"))
    assert len(files) > 800, "the history folder holds the gzip snapshots"
    src = files[len(files) // 2]
    plain = tmp_path / src.name.removesuffix(".gz")
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    for cur in ("BTC", "ETH"):
        a = volcal.read_chain(src, currency=cur)
        b = volcal.read_chain(plain, currency=cur)
        assert len(a) == len(b) > 100
        np.testing.assert_array_equal(a.strike, b.strike)
        np.testing.assert_array_equal(a.bid, b.bid)
    # cleaned and fitted like any snapshot
    fit = volcal.calibrate(volcal.clean(volcal.read_chain(src, currency="BTC")), "svi")
    assert fit.status == "ok"


def test_compressed_price_history_and_portfolio(tmp_path: Path) -> None:
    from volcal.risk.portfolio import Portfolio
    from volcal.risk.series import read_prices

    rows = ["date,close"] + [f"2024-01-{d:02d},{100 + d}" for d in range(1, 29)]
    p = tmp_path / "px.csv.gz"
    p.write_bytes(gzip.compress("\n".join(rows).encode()))
    s = read_prices(p)
    assert len(s) == 28
    j = tmp_path / "book.json.gz"
    j.write_bytes(gzip.compress(b'[{"instrument": "BTC-PERPETUAL", "size": 1}]'))
    assert len(Portfolio.from_json(j).positions) == 1
