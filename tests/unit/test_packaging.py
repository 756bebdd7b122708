"""The installed package, not the checkout: a wheel must carry every module, the shipped configs and
the model manifests with their calibrations, and must run without the repository around it.

The wheel is built offline from a copy of the sources (setuptools, from the dev extra, without
build isolation), unpacked into a folder of its own and imported from there by a separate Python
whose working directory and home are elsewhere, so nothing can fall back on the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "edgecascade", "configs", "models")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as pip builds it from the source distribution (sdist, then a wheel from the sdist
    unpacked), so both carry every file."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    sdist = out / _build(src, "build_sdist", out)
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(unpacked, filter="data")
        else:  # pragma: no cover - our own sdist, built a moment ago
            tar.extractall(unpacked)
    (tree,) = unpacked.iterdir()
    return out / _build(tree, "build_wheel", out)


def _build(tree: Path, hook: str, out: Path) -> str:
    """Run one of setuptools' PEP 517 hooks on ``tree`` in a fresh process; the file name it built."""
    backend = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    run = subprocess.run([sys.executable, "-c", backend, str(out)], cwd=tree, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed as `pip install --target APP` lays it out, into an app's own folder that
    happens to have a pyproject.toml, configs/ and models/ of its own: none of them is edgecascade's."""
    target = tmp_path_factory.mktemp("app")
    (target / "pyproject.toml").write_text('[project]\nname = "someapp"\nversion = "1"\n', encoding="utf-8")
    (target / "configs").mkdir()
    (target / "models").mkdir()
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return target


def _installed_python(site: Path, tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` against the unpacked wheel, from a folder outside the checkout, with a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECASCADE_")}
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path / "home"), NO_COLOR="1", COLUMNS="200")
    work = tmp_path / "elsewhere"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_carries_every_module_config_manifest_and_calibration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "edgecascade").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set(), "modules missing from the wheel: add their package to pyproject.toml"
    shipped = {f"edgecascade/_configs/{p.name}" for p in (ROOT / "configs").iterdir() if p.is_file()}
    shipped |= {f"edgecascade/_models/{p.name}" for p in (ROOT / "models").iterdir() if p.is_file()}
    assert shipped - names == set()
    assert not any(n.startswith(("tests/", "bench/", "scripts/")) for n in names)


def test_an_installed_package_finds_its_shipped_files_and_writes_outside_itself(site: Path, tmp_path: Path) -> None:
    run = _installed_python(site, tmp_path, """
        import json
        import edgecascade, edgecascade.paths as paths
        from edgecascade.config import configs_dir, load_config, resolve_config_path
        from edgecascade.engine import calibration_file
        from edgecascade.models import list_manifests, manifests_dir
        from edgecascade.benchmarks.traces import results_dir, traces_dir
        from edgecascade.quality.calibration import Calibration

        cfg = load_config(resolve_config_path(None))
        calibrated = load_config(resolve_config_path("calibrated"))
        path = calibration_file(calibrated.tiers[0], calibrated.cascade.run_examples, calibrated.cascade.cross_check)
        print(json.dumps({
            "package": edgecascade.__file__,
            "checkout": str(paths.checkout_root()),
            "configs": str(configs_dir()),
            "config_names": sorted(p.stem for p in configs_dir().glob("*.toml")),
            "default_tiers": [t.model for t in cfg.tiers],
            "manifests": str(manifests_dir()),
            "models": [m.name for m in list_manifests()],
            "calibration": path.name,
            "quality_targets": sorted(Calibration.load(path).thresholds),
            "traces": str(traces_dir()),
            "results": str(results_dir()),
        }))
    """)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    package = site / "edgecascade"
    assert got["package"] == str(package / "__init__.py")
    assert got["checkout"] == "None"
    assert got["configs"] == str(package / "_configs")
    assert got["config_names"] == sorted(p.stem for p in (ROOT / "configs").glob("*.toml"))
    assert got["default_tiers"] == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    assert got["manifests"] == str(package / "_models")
    assert got["models"] == sorted(p.stem for p in (ROOT / "models").glob("*.toml"))
    assert got["calibration"] == "qwen2.5-coder-0.5b.examples.cross-check.calibration.json"
    assert "0.95" in got["quality_targets"]  # what the config's quality_target = 0.95 needs
    bench = tmp_path / "home" / ".cache" / "edgecascade" / "bench"
    assert (got["traces"], got["results"]) == (str(bench / "traces"), str(bench / "results"))


def test_installed_cli_lists_models_and_refuses_what_it_cannot_do_there(site: Path, tmp_path: Path) -> None:
    listing = _installed_python(site, tmp_path, """
        import sys
        from edgecascade.cli import main
        sys.exit(main(["models", "list"]))
    """)
    assert listing.returncode == 0, listing.stderr
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m"):
        assert name in listing.stdout

    # the benchmark data has no default outside a checkout: say which variable to set
    data = _installed_python(site, tmp_path, """
        import sys
        from edgecascade.cli import main
        sys.exit(main(["bench", "run", "--dataset", "gsm8k", "--limit", "1"]))
    """)
    assert data.returncode == 2, data.stderr
    assert "EDGECASCADE_DATA" in data.stderr and "Traceback" not in data.stderr

    # a calibration saved inside the installed package would vanish with the next upgrade
    save = _installed_python(site, tmp_path, """
        import sys
        from edgecascade.cli import main
        sys.exit(main(["bench", "report", "--save-calibration"]))
    """)
    assert save.returncode == 2, save.stderr
    assert "EDGECASCADE_MANIFESTS" in save.stderr and "Traceback" not in save.stderr
    assert sorted(p.name for p in (site / "edgecascade" / "_models").iterdir()) == \
        sorted(p.name for p in (ROOT / "models").iterdir() if p.is_file())
