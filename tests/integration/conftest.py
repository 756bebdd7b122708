"""Integration fixtures: real GGUF models pulled by `scripts/bootstrap.py test` (never downloaded here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgecascade.errors import ModelError
from edgecascade.models import resolve


def _model(name: str) -> Path:
    """A pulled registry model; in CI its absence is a failure, elsewhere a skip that says what to do."""
    if os.environ.get("CI"):
        import llama_cpp  # noqa: F401 - CI installs it: a missing one must fail loudly
    else:
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'edgecascade[local]')")
    try:
        return resolve(name).path
    except ModelError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not available in CI: {e}")
        pytest.skip(f"{name} is not pulled: run `edgecascade models pull {name}` ({e})")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return _model("smollm2-135m")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@pytest.fixture(scope="session")
def llamacpp_server(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server (llama-cpp-python's) on SmolLM2; yields its base URL (.../v1).

    It stands in for vLLM and hosted APIs, which cannot run here. No --chat_format: the GGUF's own
    chat template is used, as the in-process provider does. Output goes to a file, not a pipe, so a
    chatty server can never block on a full pipe; its tail is shown if it fails to start.
    """
    if os.environ.get("CI"):
        import llama_cpp.server.app  # noqa: F401 - CI installs the server extra: a missing one must fail loudly
    else:
        pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    port = _free_port()
    log = tmp_path_factory.mktemp("llamacpp-server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "1024"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode} while starting:\n{_tail(log)}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server was not ready after 60 s:\n{_tail(log)}")
            time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
