"""The assets' own error: what to run or fix, printed without a traceback."""

from __future__ import annotations

from instructpt.errors import InstructptError


class AssetError(InstructptError):
    """An asset cannot be fetched or found; the message says what to run or fix."""
