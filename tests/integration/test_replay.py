"""`edgecascade bench replay`: the live cascade against its traces and the offline rule (real SmolLM2 tiers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecascade.cli import main

ITEMS = [
    {"id": "q1", "prompt": "What is 2 + 2? End with 'The answer is N.'", "reference": "4"},
    {"id": "q2", "prompt": "What is 10 - 3? End with 'The answer is N.'", "reference": "7"},
    {"id": "q3", "prompt": "What is 6 * 7? End with 'The answer is N.'", "reference": "42"},
]


def _setup(tmp_path: Path, smollm2: Path, tiers: int = 2) -> tuple[Path, Path, Path]:
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in ITEMS) + "\n")
    cfg = tmp_path / "replay.toml"
    # a rule that turns on the draft's logprobs alone (no checks), so the decision is the confidence's
    tier = ('[[tiers]]\nname = "{name}"\nmodel = "{model}"\nn_ctx = 1024\n'
            '[tiers.accept]\nconfidence = "geo_mean_prob"\nmin_confidence = 0.6\nchecks = []\n')
    body = "[cascade]\nmax_tokens = 24\n" + tier.format(name="small", model="smollm2-135m")
    for i in range(tiers - 1):
        body += tier.format(name=f"large{i}", model=smollm2)
    cfg.write_text(body)
    return data, cfg, tmp_path / "traces"


def test_replay_finds_the_live_cascade_as_the_benchmark_judged_it(tmp_path: Path, smollm2: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, cfg, traces = _setup(tmp_path, smollm2)
    assert main(["bench", "run", "--dataset", str(data), "--config", str(cfg), "--traces", str(traces)]) == 0
    capsys.readouterr()
    args = ["bench", "replay", "--dataset", str(data), "--config", str(cfg), "--traces", str(traces), "--json"]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["items"] == 3 and s["same_draft"] == 3  # greedy: the same draft again
    assert s["decision_agrees"] == 3 and s["same_answer"] == 3 and s["broken"] == []
    assert s["same_evidence"] == 3 and s["max_confidence_gap_on_same_evidence"] < 1e-3
    assert s["failed_live"] == []
    assert s["live_accuracy"] == s["offline_accuracy"]
    for r in s["rows"]:
        assert r["live_tier"] == ("small" if r["live_accepted"] else "large0")
        assert r["live_s"] > 0 and r["offline_s"] > 0
    # --start and --limit pick the items
    assert main([*args, "--start", "1", "--limit", "1"]) == 0
    assert [r["item_id"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["q2"]


def test_replay_fails_when_the_offline_rule_judges_a_draft_otherwise(tmp_path: Path, smollm2: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Stored logprobs that no longer match the draft (as a bug in capture or storage would make them)
    flip the offline decision on a draft the model writes again unchanged: replay says so and exits 1."""
    data, cfg, traces = _setup(tmp_path, smollm2)
    assert main(["bench", "run", "--dataset", str(data), "--config", str(cfg), "--traces", str(traces),
                 "--limit", "1"]) == 0
    capsys.readouterr()
    args = ["bench", "replay", "--dataset", str(data), "--config", str(cfg), "--traces", str(traces), "--limit", "1"]
    assert main([*args, "--json"]) == 0
    accepted = json.loads(capsys.readouterr().out)["rows"][0]["live_accepted"]
    [small] = [f for f in (traces / "tiny").glob("*.jsonl") if "smollm2-135m-" in f.name and
               json.loads(f.read_text().splitlines()[0])["tier"] == "small"]
    row = json.loads(small.read_text())
    row["logprobs"] = [-5.0 if accepted else 0.0] * len(row["logprobs"])
    small.write_text(json.dumps(row) + "\n")
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "judged differently live and offline on q1" in out


def test_replay_refuses_what_it_cannot_compare(tmp_path: Path, smollm2: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data, cfg, traces = _setup(tmp_path, smollm2)
    args = ["bench", "replay", "--dataset", str(data), "--traces", str(traces)]
    assert main([*args, "--config", str(cfg)]) == 2  # nothing traced yet
    assert "not traced on both tiers" in capsys.readouterr().err
    assert main([*args, "--config", str(cfg), "--start", "3"]) == 2
    assert "past the end" in capsys.readouterr().err
    (tmp_path / "three").mkdir()
    _, three, _ = _setup(tmp_path / "three", smollm2, tiers=3)
    assert main([*args, "--config", str(three)]) == 2
    assert "two-tier cascade" in capsys.readouterr().err
