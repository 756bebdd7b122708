"""A real two-tier cascade on SmolLM2-135M through the engine and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecascade import Cascade
from edgecascade.cli import main


def config(tmp_path: Path, smollm2: Path, first_rule: str) -> Path:
    p = tmp_path / "cascade.toml"
    p.write_text(
        "[cascade]\nmax_tokens = 32\n"
        f'[[tiers]]\nname = "draft"\nmodel = "smollm2-135m"\nn_ctx = 1024\n[tiers.accept]\n{first_rule}\n'
        f'[[tiers]]\nname = "strong"\nmodel = "{smollm2}"\nn_ctx = 1024\n'
        "[tiers.price]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"
    )
    return p


async def test_real_cascade_escalates_on_an_impossible_threshold(tmp_path: Path, smollm2: Path) -> None:
    cascade = Cascade.from_config(config(tmp_path, smollm2, "min_confidence = 1.0\nchecks = []"))
    r = await cascade.run("What is 2 + 2?")
    assert [a.tier for a in r.attempts] == ["draft", "strong"]
    assert r.attempts[0].accepted is False and "< 1" in r.attempts[0].reason
    assert r.tier == "strong" and r.content == r.attempts[1].completion.text  # type: ignore[union-attr]
    u = r.attempts[1].completion.usage  # type: ignore[union-attr]
    assert r.cost == pytest.approx((u.prompt_tokens * 1.0 + u.completion_tokens * 2.0) / 1e6)
    assert r.baseline_estimated is False and r.baseline_cost == pytest.approx(r.cost)
    assert r.overhead_ms < r.latency_ms


async def test_real_cascade_accepts_on_checks_alone(tmp_path: Path, smollm2: Path) -> None:
    cascade = Cascade.from_config(config(tmp_path, smollm2, 'checks = ["empty"]'))
    r = await cascade.run("Say hello.")
    assert r.tier == "draft" and len(r.attempts) == 1 and r.confidence is not None
    assert r.baseline_estimated is True  # the strong tier did not run: its cost is an estimate
    u = r.attempts[0].completion.usage  # type: ignore[union-attr]
    assert r.baseline_cost == pytest.approx((u.prompt_tokens * 1.0 + u.completion_tokens * 2.0) / 1e6)


def test_cli_json(tmp_path: Path, smollm2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, smollm2, "min_confidence = 1.0")
    assert main(["run", "--json", "--config", str(cfg), "What is the capital of Italy?"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("content", "model", "tier", "confidence", "reason", "cost", "baseline_cost", "saving",
                "latency_ms", "attempts"):
        assert key in d, key
    assert [a["tier"] for a in d["attempts"]] == ["draft", "strong"]
    for a in d["attempts"]:
        assert set(a) >= {"model", "confidence", "accepted", "reason", "tokens", "latency_ms", "cost"}
        assert a["tokens"]["completion"] > 0
    assert d["saving"] == pytest.approx(d["baseline_cost"] - d["cost"])
    assert "prompt" not in d
    # with --logprobs the line carries the question too: `edgecascade calibrate` reads it
    assert main(["run", "--json", "--logprobs", "--config", str(cfg), "What is the capital of Italy?"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["prompt"] == "What is the capital of Italy?" and d["attempts"][0]["logprobs"]["tokens"]


def test_cli_explain_shows_every_tier(tmp_path: Path, smollm2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, smollm2, "min_confidence = 1.0")
    assert main(["run", "--explain", "--config", str(cfg), "Hi"]) == 0
    err = capsys.readouterr().err
    assert "tier 1: draft" in err and "tier 2: strong" in err and "rejected" in err and "ACCEPTED" in err
