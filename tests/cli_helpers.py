"""Read a ``volcal ... --json`` document: the envelope every command shares."""

from __future__ import annotations

import json
from typing import Any

ENVELOPE = {"schema_version", "command", "units", "result"}


def cli_json(text: str, command: str | None = None) -> Any:
    """The ``result`` of one ``--json`` document, after checking its envelope."""
    doc = json.loads(text)
    assert set(doc) == ENVELOPE, sorted(doc)
    assert doc["schema_version"] == 1
    assert isinstance(doc["units"], dict) and doc["units"]
    if command is not None:
        assert doc["command"] == command
    return doc["result"]
