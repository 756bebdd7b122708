"""Where a checkout keeps its files (the installed package's side: tests/unit/test_packaging.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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
    # reports go beside the traces they read: with the traces in a scratch folder, a report had been
    # written over the checkout's committed bench/results
    assert results_dir() == tmp_path / "results"


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


def _load_bootstrap() -> Any:
    import importlib.util

    path = Path(__file__).parents[2] / "scripts" / "bootstrap.py"
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", path)
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    return bootstrap


def test_bootstrap_repairs_a_venv_that_was_set_up_and_broke_since(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A matching stamp skipped the install forever: once llama_cpp or edgecascade stopped importing
    (uninstalled, another pip install over it), every later run failed the same way."""
    import subprocess

    bootstrap = _load_bootstrap()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / "bin" / "edgecascade").write_text("")
    monkeypatch.setattr(bootstrap, "VENV", venv)
    monkeypatch.setattr(bootstrap, "BIN", venv / "bin")
    monkeypatch.setattr(bootstrap, "PY", venv / "bin" / "python")
    installs: list[str] = []
    import_results = [0]
    monkeypatch.setenv("EDGECASCADE_CACHE", str(tmp_path / "cache"))
    portable = bootstrap.wheel_folder("-DGGML_NATIVE=OFF").as_uri() + "/llama_cpp_python-0.3.16-py3-none-any.whl"
    installed_from = [portable]  # what pip's direct_url.json says the venv's llama-cpp-python came from

    def fake_subprocess_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if cmd[1:3] == ["-m", "pip"]:
            return subprocess.CompletedProcess(cmd, 0)  # pip --version
        if cmd[1] == "-c":
            return subprocess.CompletedProcess(cmd, 0)  # the venv's Python is new enough
        if "direct_url.json" in cmd[-1]:
            return subprocess.CompletedProcess(cmd, 0, stdout=installed_from[0] + "\n")
        assert cmd[1:] == ["-I", "-c", "import llama_cpp, edgecascade"]  # -I: not the checkout's source tree
        return subprocess.CompletedProcess(cmd, import_results.pop(0))

    monkeypatch.setattr(bootstrap.subprocess, "run", fake_subprocess_run)
    monkeypatch.setattr(bootstrap, "run", lambda cmd, **kw: installs.append(" ".join(map(str, cmd))))
    monkeypatch.setattr(bootstrap, "llama_wheel", lambda env: tmp_path / "llama_cpp_python-0.3.16-py3-none-any.whl")
    monkeypatch.setenv("CMAKE_ARGS", "")
    bootstrap.setup()  # a fresh venv: installed once
    assert sum(" -e " in c for c in installs) == 1 and import_results == []
    stamp = (venv / ".edgecascade-installed").read_text()
    installs.clear()
    import_results.extend([0])
    bootstrap.setup()  # set up and importing: nothing to do
    assert installs == [] and (venv / ".edgecascade-installed").read_text() == stamp
    # a `pip install llama-cpp-python` over it still imports, but may be pip's cached native build:
    # the portable one is installed again (it had been left as it was)
    installed_from[0] = ""
    import_results.extend([0])
    bootstrap.setup()
    assert sum(str(tmp_path / "llama_cpp_python") in c for c in installs) == 1
    installs.clear()
    installed_from[0] = portable
    import_results.extend([1, 0])
    bootstrap.setup()  # set up, then broken: installed again although the stamp matches
    assert sum(" -e " in c for c in installs) == 1 and import_results == []
    import_results.extend([1, 1])
    with pytest.raises(SystemExit, match="still does not import .* delete"):
        bootstrap.setup()
    (venv / ".edgecascade-installed").unlink()
    import_results.extend([1])
    with pytest.raises(SystemExit, match="just after installing them .* delete"):
        bootstrap.setup()
    # the command gone (edgecascade uninstalled: the checkout alone would still import): repaired
    (venv / "bin" / "edgecascade").unlink()
    installs.clear()
    monkeypatch.setattr(bootstrap, "run", lambda cmd, **kw: installs.append(" ".join(map(str, cmd))) or (
        (venv / "bin" / "edgecascade").write_text("") if " -e " in " ".join(map(str, cmd)) else None))
    import_results.extend([0])
    bootstrap.setup()
    assert sum(" -e " in c for c in installs) == 1 and (venv / "bin" / "edgecascade").exists()


def test_bootstrap_says_what_to_set_when_its_cache_cannot_be_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A HOME that cannot be written (a container's HOME=/) raised a bare traceback."""
    bootstrap = _load_bootstrap()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("EDGECASCADE_CACHE", str(blocker / "cache"))  # under a file: cannot be made
    with pytest.raises(SystemExit, match="cannot create .* set EDGECASCADE_CACHE to a writable folder"):
        bootstrap.llama_wheel({"CMAKE_ARGS": "-DGGML_NATIVE=OFF"})


def test_bootstrap_refuses_a_venv_of_an_old_python_and_expands_its_venv_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .venv made earlier by Python 3.9 was reused and failed in pip with no word of what to do; an
    EDGECASCADE_VENV of "~/ec" (unexpanded, as a CI env block passes it) made a folder named "~"."""
    import subprocess

    monkeypatch.setenv("EDGECASCADE_VENV", "~/ec-venv")
    monkeypatch.setenv("HOME", str(tmp_path))
    bootstrap = _load_bootstrap()
    assert tmp_path / "ec-venv" == bootstrap.VENV
    (bootstrap.BIN).mkdir(parents=True)
    bootstrap.PY.write_text("")

    def old_python(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1] == "-c"  # the version check comes first
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(bootstrap.subprocess, "run", old_python)
    with pytest.raises(SystemExit, match="older than 3.10: delete .*ec-venv"):
        bootstrap.setup()


def test_bootstrap_reads_relative_folders_from_where_it_was_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It moves into the checkout before set-up: a relative EDGECASCADE_CACHE put the wheel and the
    models in the checkout, where the user's own commands later found nothing ("not pulled yet")."""
    bootstrap = _load_bootstrap()
    (tmp_path / "mine.toml").write_text("")
    env = {"EDGECASCADE_CACHE": "cache", "EDGECASCADE_MANIFESTS": "~/manifests", "EDGECASCADE_DATA": "",
           "EDGECASCADE_CONFIG": "mine.toml", "OTHER": "x"}
    monkeypatch.chdir(tmp_path)
    bootstrap.absolute_path_variables(env)
    assert env["EDGECASCADE_CACHE"] == str(tmp_path / "cache")
    assert env["EDGECASCADE_MANIFESTS"] == str(Path.home() / "manifests")
    assert env["EDGECASCADE_CONFIG"] == str(tmp_path / "mine.toml") and env["EDGECASCADE_DATA"] == ""
    env["EDGECASCADE_CONFIG"] = "tiny"  # a shipped config's name stays a name
    bootstrap.absolute_path_variables(env)
    assert env["EDGECASCADE_CONFIG"] == "tiny" and env["OTHER"] == "x"
    # and the wheel folder follows: read from the absolute cache whatever the current folder
    monkeypatch.setenv("EDGECASCADE_CACHE", env["EDGECASCADE_CACHE"])
    monkeypatch.chdir(Path(__file__).parent)
    assert bootstrap.wheel_folder("-DGGML_NATIVE=OFF").is_relative_to(tmp_path / "cache")


def test_bootstrap_takes_an_empty_venv_variable_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI env block's `EDGECASCADE_VENV:` (empty) made the current folder the venv."""
    monkeypatch.setenv("EDGECASCADE_VENV", "")
    venv = _load_bootstrap().VENV
    assert venv == Path(__file__).resolve().parents[2] / ".venv"


def test_bootstrap_knows_its_wheel_however_the_cache_folder_is_spelt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EDGECASCADE_CACHE=../cache: pip records the wheel's path with ".." folded, the script compared it
    with its own spelling, never matched, and every run reinstalled llama-cpp-python and the package."""
    import subprocess

    bootstrap = _load_bootstrap()
    (tmp_path / "checkout").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "checkout")
    for given in ("../cache", str(tmp_path / "link" / "cache")):
        env = {"EDGECASCADE_CACHE": given, "CMAKE_ARGS": "-DGGML_NATIVE=OFF"}
        bootstrap.absolute_path_variables(env)
        assert ".." not in env["EDGECASCADE_CACHE"]
        monkeypatch.setenv("EDGECASCADE_CACHE", env["EDGECASCADE_CACHE"])
        folder = bootstrap.wheel_folder(env["CMAKE_ARGS"])
        # what pip writes in direct_url.json: the normalised, link-resolved path of the wheel it installed
        recorded = (folder.resolve() / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl").as_uri()

        def pip_says(cmd: list[str], url: str = recorded, **kw: object) -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(cmd, 0, stdout=url + "\n", stderr="")

        monkeypatch.setattr(bootstrap.subprocess, "run", pip_says)
        assert bootstrap.portable_llama(env), given
        other = (tmp_path / "elsewhere" / "x.whl").as_uri()
        monkeypatch.setattr(bootstrap.subprocess, "run", lambda cmd, other=other, **kw: pip_says(cmd, other))
        assert not bootstrap.portable_llama(env)
        monkeypatch.setattr(bootstrap.subprocess, "run", lambda cmd, **kw: pip_says(cmd, ""))  # from an index
        assert not bootstrap.portable_llama(env)


def test_no_home_folder_is_a_clear_error_naming_what_to_set(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """With $HOME unset and a user that has no passwd entry (some containers), Path.home() raised
    RuntimeError and `models pull` printed a traceback."""
    from edgecascade.cli import main
    from edgecascade.errors import ConfigError

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("EDGECASCADE_CACHE", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.raises(ConfigError, match="set EDGECASCADE_CACHE to a writable folder"):
        paths.cache_dir()
    assert main(["models", "path", "smollm2-135m"]) == 2
    assert "set EDGECASCADE_CACHE" in capsys.readouterr().err


def test_the_bootstrap_script_parses_on_an_old_python_so_its_version_check_can_speak() -> None:
    """`from __future__ import annotations` is a SyntaxError before Python 3.7: an old python3 (3.6 on
    RHEL 8 and Ubuntu 18.04) stopped at "future feature annotations is not defined" instead of the
    script's own "edgecascade needs Python >= 3.10"."""
    import ast

    source = (Path(__file__).parents[2] / "scripts" / "bootstrap.py").read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 6))  # syntax newer than 3.6 (a walrus, ...) fails here
    futures = {a.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "__future__"
               for a in node.names}
    assert futures <= {"absolute_import", "division", "generator_stop", "print_function", "unicode_literals"}


def test_bootstrap_without_a_home_folder_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HOME and no home for the user (a container's bare user id): a RuntimeError traceback."""
    bootstrap = _load_bootstrap()
    monkeypatch.delenv("EDGECASCADE_CACHE", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.raises(SystemExit, match="no home folder .* set EDGECASCADE_CACHE"):
        bootstrap.wheel_folder("-DGGML_NATIVE=OFF")
    monkeypatch.setenv("EDGECASCADE_CACHE", "/somewhere")
    assert str(bootstrap.wheel_folder("-DGGML_NATIVE=OFF")).startswith("/somewhere/wheels/llama-cpp-")
