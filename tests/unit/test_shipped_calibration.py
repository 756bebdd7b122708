"""The calibration shipped for the default drafter is complete and says where it came from."""

from __future__ import annotations

from edgecascade.config import load_config
from edgecascade.engine import calibration_for
from edgecascade.models import manifests_dir
from edgecascade.quality.calibration import Calibration


def test_shipped_calibration_for_the_calibrated_config() -> None:
    cfg = load_config("calibrated")
    cal = calibration_for(cfg.tiers[0])
    assert cal is not None and cal.model == "qwen2.5-coder-0.5b"
    assert cal.threshold_for(cfg.tiers[0].accept.quality_target or 0.95) >= 0.0
    assert cfg.cascade.run_examples is cal.runs_examples  # the config opts in exactly when it must
    meta = cal.meta
    assert meta["command"].startswith("edgecascade bench report") and meta["seed"] and meta["data"]
    for d in meta["held_out"].values():  # held-out quality is recorded with it
        assert 0.5 < d["auroc"] <= 1.0 and 0.0 <= d["ece"] <= 1.0


def test_calibration_files_parse() -> None:
    files = sorted(manifests_dir().glob("*.calibration.json"))
    assert files, "no calibration shipped"
    for f in files:
        cal = Calibration.load(f)
        assert len(cal.features) == len(cal.coef) == len(cal.mean) == len(cal.scale)
        assert all(s > 0 for s in cal.scale)
