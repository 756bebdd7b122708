"""Where a checkout keeps its files (the installed package's side: tests/unit/test_packaging.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgecascade import paths
from edgecascade.benchmarks.traces import results_dir, traces_dir
from edgecascade.config import configs_dir
from edgecascade.datasets import data_dir
from edgecascade.models import manifests_dir

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_reads_and_writes_its_own_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("EDGECASCADE_TRACES", "EDGECASCADE_MANIFESTS", "EDGECASCADE_DATA", "EDGECASCADE_CACHE"):
        monkeypatch.delenv(var, raising=False)
    assert paths.checkout_root() == ROOT
    assert (configs_dir(), manifests_dir()) == (ROOT / "configs", ROOT / "models")
    assert (traces_dir(), results_dir()) == (ROOT / "bench" / "traces", ROOT / "bench" / "results")
    assert paths.default_data_dir() == ROOT.parent / "shared" / "data"
    assert not paths.inside_installed_package(ROOT / "models")


def test_the_variables_move_what_they_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EDGECASCADE_TRACES", "~/t")
    monkeypatch.setenv("EDGECASCADE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("EDGECASCADE_DATA", str(tmp_path / "d"))
    (tmp_path / "d").mkdir()
    assert traces_dir() == tmp_path / "t"
    assert data_dir() == tmp_path / "d"
    assert results_dir() == ROOT / "bench" / "results"  # a checkout's reports stay beside its traces' default


def test_another_projects_folder_is_not_taken_for_the_checkout(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """The package's sources, vendored into a project with a pyproject.toml, configs/ and models/ of
    its own: that project is not edgecascade's checkout."""
    for name in ("configs", "models"):
        (tmp_path / name).mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someapp"\n', encoding="utf-8")
    package = tmp_path / "edgecascade"
    package.mkdir()
    monkeypatch.setattr(paths, "_PACKAGE", package)
    assert paths.checkout_root() is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "edgecascade"\n', encoding="utf-8")
    assert paths.checkout_root() == tmp_path
    shutil.copytree(ROOT / "configs", package / "_configs")  # what only a built package has
    assert paths.checkout_root() is None
    assert paths.shipped_dir("configs") == package / "_configs"
    assert paths.inside_installed_package(package / "_models")


def test_bootstrap_builds_llama_cpp_portably_whatever_cmake_args_says() -> None:
    """`setdefault` had dropped the portable flag whenever CMAKE_ARGS was set for something else (a
    GPU backend), and the native build segfaults on AMX CPUs."""
    import importlib.util

    path = Path(__file__).parents[2] / "scripts" / "bootstrap.py"
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", path)
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    assert bootstrap.portable_cmake_args(None) == "-DGGML_NATIVE=OFF"
    assert bootstrap.portable_cmake_args("-DGGML_CUDA=on") == "-DGGML_CUDA=on -DGGML_NATIVE=OFF"
    assert bootstrap.portable_cmake_args("-DGGML_NATIVE=ON") == "-DGGML_NATIVE=ON"  # the caller's own choice
    # the wheel it builds is the version pyproject asks for, kept apart per flags
    from edgecascade.config import tomllib  # tomli before Python 3.11

    local = tomllib.loads((path.parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]["local"]
    assert bootstrap.LLAMA_SPEC in local
    assert bootstrap.wheel_folder("-DGGML_NATIVE=OFF") != bootstrap.wheel_folder("-DGGML_CUDA=on -DGGML_NATIVE=OFF")
