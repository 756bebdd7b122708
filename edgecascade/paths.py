"""Where edgecascade's own files live, in a source checkout and in an installed package.

Why one module: the shipped configs and model manifests (with the calibrations fitted for them) sit
at the top of the repository, where they are read, refitted and committed; a wheel carries the same
files inside the package (``pyproject.toml`` maps ``configs/`` to ``edgecascade/_configs`` and
``models/`` to ``edgecascade/_models``). The benchmark's traces and reports belong to the checkout
when there is one (they are committed there), and to the user's cache folder when there is not
(nothing may be written inside an installed package, which the next upgrade replaces). Every other
module asks here instead of guessing from ``__file__``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_PACKAGE = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The edgecascade repository this package runs from (an editable install, ``PYTHONPATH=.``, an
    unpacked sdist), or None for an installed package: one built from a wheel carries its shipped
    files inside it, and the folder it was installed into (``pip install --target /app``) may be
    another project's with a pyproject.toml, configs/ and models/ of its own."""
    if (_PACKAGE / "_configs").is_dir():
        return None
    root = _PACKAGE.parent
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "configs").is_dir() and (root / "models").is_dir()):
        return None
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return root if name == "edgecascade" else None


def shipped_dir(name: Literal["configs", "models"]) -> Path:
    """The shipped ``configs`` or ``models`` (manifests and calibrations): the checkout's own
    folder, else the copy inside the installed package."""
    root = checkout_root()
    return root / name if root is not None else _PACKAGE / f"_{name}"


def inside_installed_package(path: Path) -> bool:
    """Whether ``path`` lies inside an installed package (where nothing should be written)."""
    if checkout_root() is not None:
        return False
    return path.resolve().is_relative_to(_PACKAGE)


def cache_dir() -> Path:
    """``$EDGECASCADE_CACHE`` if set, else ``~/.cache/edgecascade``; model files go in ``models/``."""
    env = os.environ.get("EDGECASCADE_CACHE")
    if env:
        return Path(env).expanduser()
    try:
        return Path.home() / ".cache" / "edgecascade"
    except RuntimeError:  # no $HOME and a user with no home folder (some containers)
        from .errors import ConfigError

        raise ConfigError("no home folder to keep models in ($HOME is unset and this user has none): set "
                          "EDGECASCADE_CACHE to a writable folder") from None


def bench_dir() -> Path:
    """The benchmark's folder: the checkout's ``bench/`` (traces committed there, so results can be
    re-derived and long runs resumed on another machine), else ``<cache>/bench``, so an installed
    package keeps its traces, and resumes from them, wherever the command runs."""
    root = checkout_root()
    return root / "bench" if root is not None else cache_dir() / "bench"


def default_data_dir() -> Path | None:
    """Where GSM8K and HumanEval are looked for when ``$EDGECASCADE_DATA`` is not set: beside the
    checkout (``<repo>/../shared/data``); an installed package has no default."""
    root = checkout_root()
    return root.parent / "shared" / "data" if root is not None else None
