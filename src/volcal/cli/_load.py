"""Read one snapshot from one or several files (one per venue) for the CLI commands.

One file: its chain, as before. Several files (or a Tardis ``options_chain`` CSV holding
several exchanges): one chain per venue, consolidated with :func:`volcal.aggregate`; the
commands then clean and fit the consolidated chain.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from volcal.errors import DataError


def _tardis_header(path: Path) -> bool:
    from volcal._io import read_bytes
    from volcal.feeds.csv_formats import is_svcj_snapshot_header

    raw = read_bytes(path)
    head = raw[:4096].decode("utf-8-sig", errors="replace").lstrip()
    if not head or head[0] in "{[":
        return False
    first = next(csv.reader([head.splitlines()[0]]), [])
    if is_svcj_snapshot_header(first):  # a Deribit snapshot file (the Tardis reader and
        return False  # pandas, which it imports, are not needed to tell)
    from volcal.feeds.tardis import is_tardis

    return is_tardis(first)


def load_chains(sources: list[Path], currency: str | None, snapshot: str | None) -> dict[str, Any]:
    """``{venue: chain}`` of the files; a Tardis file contributes each of its exchanges.

    Two files of the same venue are a mistake (one line error).
    """
    import volcal

    if not sources:
        raise DataError("give at least one chain file")
    out: dict[str, Any] = {}
    for src in sources:
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(2, "No such file", str(path))
        if _tardis_header(path):
            import io

            import pandas as pd

            from volcal._io import read_bytes
            from volcal.feeds.tardis import read_tardis_venues

            df = pd.read_csv(io.BytesIO(read_bytes(path)), low_memory=False)
            if len(df) == 0:
                raise DataError(f"{path.name}: no option quotes (empty chain)")
            got = read_tardis_venues(df, path.name, currency, snapshot)
        else:
            ch = volcal.read_chain(path, currency=currency, snapshot=snapshot)
            got = {ch.venue: ch}
        for venue, ch in got.items():
            if venue in out:
                raise DataError(
                    f"{path.name}: a second chain of venue {venue!r} (one file per venue)"
                )
            out[venue] = ch
    return out


def load_snapshot(
    sources: list[Path], currency: str | None, snapshot: str | None
) -> tuple[Any, Any]:
    """``(chain, aggregate result or None)``: the one chain, or the consolidated chain of
    several venues and its :class:`~volcal.aggregate.AggregateResult`."""
    chains = load_chains(sources, currency, snapshot)
    if len(chains) == 1:
        return next(iter(chains.values())), None
    import volcal

    res = volcal.aggregate(chains)
    return res.chain, res


def source_text(sources: list[Path]) -> str:
    """The files as one string for JSON output."""
    return str(sources[0]) if len(sources) == 1 else ", ".join(map(str, sources))


__all__ = ["load_chains", "load_snapshot", "source_text"]
