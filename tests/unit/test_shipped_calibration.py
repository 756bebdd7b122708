"""The calibrations shipped for the default drafter are complete, say where they came from, and
the right one is picked: the one that executes nothing unless a config opts in to the examples check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecascade.cli import main
from edgecascade.config import load_config
from edgecascade.engine import calibration_for, calibration_path
from edgecascade.models import manifests_dir
from edgecascade.quality.calibration import Calibration
from edgecascade.quality.thresholds import threshold_for_target

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("run_examples, cross_check", [(False, False), (True, False), (True, True)])
def test_shipped_calibrations_for_the_default_drafter(run_examples: bool, cross_check: bool) -> None:
    # configs/calibrated.toml opts in to the examples check and the cross-check; the same rule
    # without an opt-in gets the calibration that does not need it
    cfg = load_config("calibrated")
    assert cfg.cascade.run_examples is True and cfg.cascade.cross_check is True
    tier = cfg.tiers[0]
    cal = calibration_for(tier, run_examples, cross_check)
    assert cal is not None and cal.model == "qwen2.5-coder-0.5b"
    assert cal.runs_examples is run_examples and cal.runs_cross_check is cross_check
    assert meta_cross_check(cal) is cross_check
    assert cal.threshold_for(tier.accept.quality_target or 0.95) >= 0.0
    meta = cal.meta
    assert meta["command"].startswith("edgecascade bench report") and meta["seed"] and meta["data"]
    assert meta["run_examples"] is run_examples
    for d in meta["held_out"].values():  # held-out quality is recorded with it
        assert 0.5 < d["auroc"] <= 1.0 and 0.0 <= d["ece"] <= 1.0
    # one calibrator per benchmark domain, each with its own threshold and the same features
    key = f"{tier.accept.quality_target or 0.95:g}"
    assert set(cal.domains) == {"math", "code"}
    for name, sub in cal.domains.items():
        assert sub.domain == name and sub.features == cal.features and key in sub.thresholds
        assert sub.meta["items"] >= 60
    # each calibrator keeps the table its thresholds were chosen on, and the rule gives them back
    # exactly from it (what adapting to unlabelled traffic chooses again)
    for c in (cal, *cal.domains.values()):
        t = c.threshold_table
        assert t is not None and len(t.scores) >= c.meta.get("items", 60) and 0 < t.prior < 1
        assert threshold_for_target(np.array(t.scores), np.array(t.small_right), np.array(t.large_right),
                                    float(key), t.margin_z) == c.thresholds[key]
        assert t.margin_z == meta["margin_z"]


def meta_cross_check(cal: Calibration) -> bool:
    """What the file says it was fitted with (older files predate the cross-check: without it)."""
    return bool(cal.meta.get("cross_check", False))


def test_calibration_paths() -> None:
    assert calibration_path("m", examples=False) == manifests_dir() / "m.calibration.json"
    assert calibration_path("m", examples=True) == manifests_dir() / "m.examples.calibration.json"
    assert calibration_path("m", examples=True, cross_check=True) == \
        manifests_dir() / "m.examples.cross-check.calibration.json"


def test_calibration_files_parse() -> None:
    files = sorted(manifests_dir().glob("*.calibration.json"))
    assert files, "no calibration shipped"
    for f in files:
        cal = Calibration.load(f)
        assert len(cal.features) == len(cal.coef) == len(cal.mean) == len(cal.scale)
        assert all(s > 0 for s in cal.scale)


def test_the_hybrid_middle_tier_is_judged_by_the_shipped_calibration_of_the_1_5b() -> None:
    # local 0.5B -> local 1.5B -> cloud: the 1.5B's answer goes to the cloud when its own calibrated
    # P(correct) is under 0.5, not only when a check fails
    tier = load_config("hybrid").tiers[1]
    assert tier.model == "qwen2.5-coder-1.5b" and tier.accept.confidence == "calibrated"
    assert tier.accept.min_confidence == 0.5 and tier.accept.quality_target is None
    cal = calibration_for(tier, False)
    assert cal is not None and cal.model == "qwen2.5-coder-1.5b" and not cal.runs_examples
    assert set(cal.domains) == {"math", "code"}
    # it says how it was made and how it did on the answers it was not fitted on
    assert cal.meta["command"].startswith("edgecascade calibrate --traces bench/traces/gsm8k/qwen2.5-coder-1.5b")
    assert 0.5 < cal.meta["held_out"]["auroc"] <= 1.0 and cal.meta["held_out_items"] >= 700


def test_the_shipped_calibration_adapts_to_the_committed_traces_without_their_labels(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the 0.5B's HumanEval drafts as `bench run` wrote them (their labels are ignored): all 164 are code
    # prompts, so only the code calibrator moves, by its own table
    [traces] = sorted((ROOT / "bench" / "traces" / "humaneval").glob("qwen2.5-coder-0.5b-*.jsonl"))
    base_path = manifests_dir() / "qwen2.5-coder-0.5b.calibration.json"
    out = tmp_path / "mine.json"
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--unlabelled",
                 "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    by = {c["calibrator"]: c for c in result["calibrators"]}
    code = by["calibrated[code]"]
    # the estimate, made without them, is within its error of the share the labels say was right
    right = np.mean([json.loads(line)["correct"] for line in traces.read_text().splitlines() if line.strip()])
    assert code["drafts"] == 164 and abs(code["prior"] - right) < 3 * code["prior_se"] and code["prior_se"] < 0.1
    base, adapted = Calibration.load(base_path), Calibration.load(out)
    table = base.domains["code"].threshold_table
    assert table is not None and code["source_prior"] == table.prior
    assert adapted.domains["code"].thresholds == table.thresholds_at(code["shift"], ["0.95"])
    assert adapted.domains["code"].intercept == pytest.approx(table.intercept + code["shift"])
    assert by["calibrated[math]"]["drafts"] == 0 and adapted.domains["math"] == base.domains["math"]
