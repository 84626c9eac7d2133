"""Calibration history: backfill on Dask and analytics over a store.

``backfill`` (:mod:`volcal.history.jobs`) calibrates a history of snapshot files on
a Dask cluster into a :mod:`volcal.store`; ``history`` (:mod:`volcal.history.analytics`)
reads the stored fits back as parameter series, term structures, fit quality, the vol
index against DVOL and a stability table. Dask is imported only when a backfill runs.
"""

from __future__ import annotations

from volcal._lazy import lazy_attributes

_LAZY = {
    "backfill": "volcal.history.jobs",
    "BackfillReport": "volcal.history.jobs",
    "ClusterError": "volcal.history.jobs",
    "discover": "volcal.history.jobs",
    "history": "volcal.history.analytics",
    "History": "volcal.history.analytics",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes("volcal.history", _LAZY, globals())
