"""Integration fixtures: real GGUF models pulled by `scripts/bootstrap.py test` (never downloaded here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgecascade.errors import ModelError
from edgecascade.models import resolve

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'edgecascade[local]')")


def _model(name: str) -> Path:
    try:
        return resolve(name).path
    except ModelError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not available in CI: {e}")
        pytest.skip(f"{name} is not pulled: run `edgecascade models pull {name}` ({e})")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return _model("smollm2-135m")
