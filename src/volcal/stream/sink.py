"""Where calibrations go: a small sink interface, written asynchronously.

The engine hands each record (an ``OptionChain`` of the quotes used and the
``CalibrationResult``) to :meth:`CalibrationSink.submit`, which must not block: the
:class:`ThreadedSink` puts it on a bounded queue that one writer thread drains into
the wrapped writer (``volcal.store`` when present). When the queue is full the record
is dropped *and counted* (``metrics()["sink"]["dropped"]``): the hot path never waits
on disk. :meth:`latest` reads the last stored fit back, which is how a restarted
engine recovers its last surface.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["CalibrationRecord", "CalibrationSink", "JsonlWriter", "StoreWriter", "ThreadedSink"]


@dataclass(frozen=True)
class CalibrationRecord:
    """One calibration to persist."""

    underlying: str
    model: str
    chain: Any  # OptionChain of the quotes used
    result: Any  # CalibrationResult
    settings: dict[str, Any]
    source: str = "volcal.stream"


class CalibrationSink(Protocol):
    def submit(self, record: CalibrationRecord) -> bool: ...

    def latest(self, underlying: str, model: str) -> dict[str, Any] | None: ...

    def metrics(self) -> dict[str, Any]: ...

    def close(self, timeout: float = 5.0) -> None: ...


class Writer(Protocol):
    def write(self, record: CalibrationRecord) -> None: ...

    def latest(self, underlying: str, model: str) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """Appends each calibration's ``to_dict()`` as one JSON line (a dependency-free
    writer for tests and for machines without the store)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, record: CalibrationRecord) -> None:
        row = {
            "underlying": record.underlying,
            "model": record.model,
            "snapshot": record.chain.snapshot.isoformat(),
            "settings": record.settings,
            "result": record.result.to_dict(),
        }
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, allow_nan=False, default=str) + "\n")

    def latest(self, underlying: str, model: str) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        last = None
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("underlying") == underlying and row.get("model") == model:
                    last = row
        if last is None:
            return None
        return {**last["result"], "snapshot": last["snapshot"], "underlying": underlying}

    def close(self) -> None:
        pass


class StoreWriter:
    """Writes into ``volcal.store`` (snapshot of the quotes used, then the calibration)."""

    def __init__(self, path: str | Path) -> None:
        import volcal.store

        self.store = volcal.store.open(path)

    def write(self, record: CalibrationRecord) -> None:
        snap_id = self.store.add_snapshot(record.chain, source=record.source)
        # the conventions / surface grid of a stored fit are left to readers (volcal
        # history): computing them here would compete with the hot path for the GIL
        self.store.add_calibration(
            record.result,
            snapshot_id=snap_id,
            settings=record.settings,
            model=record.model,
            surface=False,
        )

    def latest(self, underlying: str, model: str) -> dict[str, Any] | None:
        out = self.store.latest(underlying, model)
        return dict(out) if out is not None else None

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if callable(close):
            close()


class ThreadedSink:
    """A :class:`CalibrationSink` that writes on its own thread through a bounded queue."""

    def __init__(self, writer: Writer, maxsize: int = 256) -> None:
        self.writer = writer
        self._q: queue.Queue[CalibrationRecord | None] = queue.Queue(maxsize)
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self.last_error = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="volcal-stream-sink", daemon=True)
        self._thread.start()

    def submit(self, record: CalibrationRecord) -> bool:
        try:
            self._q.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            return False
        self.submitted += 1
        return True

    def _run(self) -> None:
        while True:
            rec = self._q.get()
            if rec is None:
                return
            try:
                with self._lock:
                    self.writer.write(rec)
                self.written += 1
            except Exception as exc:
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"

    def latest(self, underlying: str, model: str) -> dict[str, Any] | None:
        with self._lock:
            return self.writer.latest(underlying, model)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the queue is drained (tests, shutdown)."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.written + self.failed >= self.submitted:
                return
            time.sleep(0.005)

    def metrics(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self._q.qsize(),
            "last_error": self.last_error,
        }

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self.writer.close()
