"""The calibrations shipped for the default drafter are complete, say where they came from, and
the right one is picked: the one that executes nothing unless a config opts in to the examples check."""

from __future__ import annotations

import pytest

from edgecascade.config import load_config
from edgecascade.engine import calibration_for, calibration_path
from edgecascade.models import manifests_dir
from edgecascade.quality.calibration import Calibration


@pytest.mark.parametrize("config,examples", [("default", False), ("calibrated", True)])
def test_shipped_calibration_for_the_shipped_configs(config: str, examples: bool) -> None:
    cfg = load_config(config)
    tier = cfg.tiers[0]
    cal = calibration_for(tier, cfg.cascade.run_examples)
    assert cal is not None and cal.model == "qwen2.5-coder-0.5b"
    assert cfg.cascade.run_examples is examples is cal.runs_examples  # opted in exactly when it must be
    assert cal.threshold_for(tier.accept.quality_target or 0.95) >= 0.0
    meta = cal.meta
    assert meta["command"].startswith("edgecascade bench report") and meta["seed"] and meta["data"]
    for d in meta["held_out"].values():  # held-out quality is recorded with it
        assert 0.5 < d["auroc"] <= 1.0 and 0.0 <= d["ece"] <= 1.0


def test_examples_calibration_only_with_the_opt_in() -> None:
    tier = load_config("calibrated").tiers[0]
    assert calibration_path(tier.model, examples=True).is_file()
    assert calibration_for(tier, run_examples=False).runs_examples is False  # type: ignore[union-attr]
    assert calibration_for(tier, run_examples=True).runs_examples is True  # type: ignore[union-attr]


def test_calibration_files_parse() -> None:
    files = sorted(manifests_dir().glob("*.calibration.json"))
    assert files, "no calibration shipped"
    for f in files:
        cal = Calibration.load(f)
        assert len(cal.features) == len(cal.coef) == len(cal.mean) == len(cal.scale)
        assert all(s > 0 for s in cal.scale)
