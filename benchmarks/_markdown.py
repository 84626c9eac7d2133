"""Shared by the benchmark scripts: replace one ``## `` section of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def write_section(section: str, text: str, path: Path = BENCHMARKS) -> None:
    """Put ``text`` in place of the section that starts with the heading ``section``
    (up to the next ``## `` heading), or append it when the section is not there yet."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    start = doc.find(section)
    if start < 0:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        nxt = doc.find("\n## ", start + len(section))
        doc = doc[:start] + text + (doc[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(doc)
