"""Chain commands: ``fetch``, ``quality``, ``calibrate``, ``demo``."""

from __future__ import annotations
