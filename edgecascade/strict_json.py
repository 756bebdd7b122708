"""Strict JSON for what edgecascade writes: NaN and infinities become null.

Python's ``json`` writes ``NaN`` and ``Infinity``, which most JSON readers reject; a report, a
study or a calibration file is read by other tools, so every one is written through here.
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (an undefined ratio, a threshold that keeps nothing) as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = None, *, ensure_ascii: bool = True) -> str:
    """``obj`` as strict JSON (non-finite floats as null)."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False, ensure_ascii=ensure_ascii)
