"""`edgecascade bench run | report` and `edgecascade calibrate` end to end (real SmolLM2 tiers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecascade.benchmarks.traces import Trace, TraceStore, tier_specs
from edgecascade.cli import main
from edgecascade.engine import Cascade
from tests.fakes.check_runs import count_check_runs


def two_tier_config(tmp_path: Path, smollm2: Path) -> Path:
    p = tmp_path / "bench.toml"
    p.write_text(
        "[cascade]\nmax_tokens = 24\n"
        '[[tiers]]\nname = "small"\nmodel = "smollm2-135m"\nn_ctx = 1024\n'
        f'[[tiers]]\nname = "large"\nmodel = "{smollm2}"\nn_ctx = 1024\n'
    )
    return p


def test_bench_run_traces_every_tier_and_resumes_from_cache(tmp_path: Path, smollm2: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in [
        {"id": "q1", "prompt": "What is 2 + 2? End with 'The answer is N.'", "reference": "4"},
        {"id": "q2", "prompt": "What is 10 - 3? End with 'The answer is N.'", "reference": "7"},
    ]) + "\n")
    cfg = two_tier_config(tmp_path, smollm2)
    traces = tmp_path / "traces"
    args = ["bench", "run", "--dataset", str(data), "--config", str(cfg), "--traces", str(traces), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "tiny" and set(summary["tiers"]) == {"small", "large"}
    files = sorted((traces / "tiny").glob("*.jsonl"))
    assert len(files) == 2
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(rows) == 4 and {r["item_id"] for r in rows} == {"q1", "q2"}
    for r in rows:
        assert len(r["tokens"]) == len(r["logprobs"]) == r["completion_tokens"] > 0
        assert isinstance(r["correct"], bool) and r["latency_s"] > 0

    # a rerun generates nothing: every provider call would fail
    async def boom(self, request):  # type: ignore[no-untyped-def]
        raise AssertionError("a cached trace was generated again")

    from edgecascade.providers.llamacpp import LlamaCppProvider

    monkeypatch.setattr(LlamaCppProvider, "complete", boom)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["tiers"]["small"]["items"] == 2


def test_bench_run_traces_cross_checks_of_math_items_where_the_config_opts_in(
        tmp_path: Path, smollm2: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in [
        {"id": "m1", "prompt": "Tom has 3 boxes of 4 apples and eats 2. How many apples are left?", "reference": "10"},
        {"id": "c1", "prompt": "Name the capital of France.", "reference": "Paris", "grader": "contains"},
    ]) + "\n")
    cfg = two_tier_config(tmp_path, smollm2)
    cfg.write_text(cfg.read_text().replace("[cascade]\n", "[cascade]\ncross_check = true\n"))
    traces = tmp_path / "traces"
    args = ["bench", "run", "--dataset", str(data), "--config", str(cfg), "--traces", str(traces), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)["tiers"]
    assert summary["cross-check"]["items"] == 1  # the math item only
    rows = [json.loads(line) for f in (traces / "mixed").glob("*.jsonl") for line in f.read_text().splitlines()]
    [check] = [r for r in rows if r["tier"] == "cross-check"]
    [draft] = [r for r in rows if r["tier"] == "small" and r["item_id"] == "m1"]
    assert check["item_id"] == "m1" and check["settings"] != draft["settings"]  # a file of its own
    assert check["prompt_sha256"] == draft["prompt_sha256"]
    assert check["result"] is None or isinstance(check["result"], float)
    assert check["latency_s"] > 0 and check["completion_tokens"] > 0

    async def boom(self, request):  # type: ignore[no-untyped-def]
        raise AssertionError("a cached cross-check was generated again")

    from edgecascade.providers.llamacpp import LlamaCppProvider

    monkeypatch.setattr(LlamaCppProvider, "complete", boom)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["tiers"]["cross-check"]["items"] == 1


def _synthetic_traces(store: TraceStore, cascade: Cascade, dataset: str, n: int, offset: int = 0) -> None:
    """Item i's reference is i + offset; each answer states it when its label says right, so a grade
    made again from the answer (as a report does when it can reload the dataset) is the label."""
    small, large = tier_specs(cascade, cascade.settings.max_tokens)
    rng = np.random.default_rng(0)
    for i in range(n):
        good = bool(rng.random() < 0.5)
        lp = float(rng.normal(-0.1 if good else -0.8, 0.1))
        for spec, ok, lat in ((small, good, 1.0), (large, bool(rng.random() < 0.85), 3.0)):
            said = str(i + offset if ok else -1)
            store.append(Trace(dataset, f"{dataset}{i}", "math", spec.name, spec.model, spec.key,
                               f"The answer is {said}.", ok, "stop", 10, 3, lat, None, 0.0,
                               tokens=["The answer is ", said, "."], logprobs=[lp, lp, lp],
                               # five alternatives per token, as a tier's default top_logprobs keeps
                               top_logprobs=[[lp, lp - 2, lp - 3, lp - 4, lp - 5]] * 3))


def test_bench_report_json_and_figure(tmp_path: Path, smollm2: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to measure it
    cfg = two_tier_config(tmp_path, smollm2)
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(cfg), "synth", 120)
    out = tmp_path / "results"
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    d = report["datasets"]["synth"]
    assert d["items"]["calibration"] + d["items"]["held_out"] == 120
    names = [p["name"] for p in d["policies"]]
    assert names[-1].startswith("this config's rule (") and "config rule" in d["at_target"]
    assert set(names[:-1]) == {"always small", "always large", "mean logprob", "cascadeflow-style", "calibrated",
                               "calibrated + examples", "router (escalation would not help)",
                               "calibrated, one for all domains", "calibrated + examples, one for all domains",
                               "random", "oracle",
                               "calibrated, deployed threshold", "calibrated + examples, deployed threshold"}
    assert d["auroc"]["calibrated"] > 0.9 and 0 <= d["at_target"]["calibrated"]["share"] <= 1
    lo, hi = d["auroc_interval"]["calibrated"]
    assert set(d["auroc_interval"]) == set(d["auroc"]) and lo <= d["auroc"]["calibrated"] <= hi
    assert (out / "report.json").exists() and (out / "cost_quality.png").stat().st_size > 10_000
    # with one dataset the figure is one column wide: its title and legend must still fit inside it
    [fig] = figures
    renderer = fig.canvas.get_renderer()
    for artist in (*fig.legends, fig._suptitle):
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, artist
    # a dataset of your own is named by its file, as `bench run --dataset FILE.jsonl` was: its traces
    # are found under the file's stem and its prompts reach the prompt features (no warning)
    data = tmp_path / "synth.jsonl"
    data.write_text("".join(json.dumps({"id": f"synth{i}", "prompt": f"What is {i} + 0?", "reference": str(i)}) + "\n"
                            for i in range(120)))
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(data),
                 "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)["datasets"]["synth"]
    assert again["items"] == d["items"] and "cannot reload" not in captured.err
    # too few traced items is a clear error, whose command traces them where this report reads
    few = tmp_path / "few.jsonl"
    few.write_text(json.dumps({"id": "f1", "prompt": "What is 1 + 1?", "reference": "2"}) + "\n")
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(few),
                 "--max-tokens", "24", "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"bench run --dataset {few} --config {cfg} --traces {store.root} --max-tokens 24" in said
    assert f"{few} holds only 1 item, and a report needs at least 10" in said and "add items to it" in said
    # a file with enough items, too few of them traced yet: tracing them is the way
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"id": f"m{i}", "prompt": f"What is {i} + 1?", "reference": str(i + 1)}) + "\n"
                            for i in range(12)))
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(more),
                 "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "only 0 more items are traced on both" in said and "needs at least 10: run `" in said
    assert "another token limit" not in said  # nothing of it is traced under other settings either
    # nor is the drafter's cross-check file (same model, a key of its own) traces made under other settings
    from edgecascade.benchmarks.traces import cross_check_spec

    cc = cross_check_spec(Cascade.from_config(cfg))
    (store.root / "more").mkdir(exist_ok=True)
    (store.root / "more" / f"{cc.model}-{cc.key}.jsonl").write_text("")
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(more),
                 "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "needs at least 10: run `" in said and "other settings" not in said and "--max-tokens" not in said
    # traced, but with another token limit than the report's: it says with which, rather than only
    # suggesting to trace everything again
    traced_with = Cascade.from_config(cfg).settings.max_tokens
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(data),
                 "--max-tokens", str(traced_with + 1), "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "only 0 synth items are traced" in said and f"were made with --max-tokens {traced_with}" in said
    # ... first: tracing everything again comes after, as the other way ("else trace them")
    assert said.index(f"were made with --max-tokens {traced_with}") < said.index("else trace them with these settings")
    # a dataset file that is there but wrong is an error, not a report judged without its prompts
    broken = tmp_path / "synth2" / "synth.jsonl"
    broken.parent.mkdir()
    broken.write_text(data.read_text() + json.dumps({"id": "x", "prompt": "p", "reference": "Paris"}) + "\n")
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(broken),
                 "--out", str(out)]) == 2
    said = capsys.readouterr().err
    assert f"{broken}:121: reference 'Paris' is not a finite number" in " ".join(said.split())
    assert "cannot reload" not in said
    # and a name no `bench run` could trace is not offered as one
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "none",
                 "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "'none' is no dataset `bench run` can trace" in said and "bench run --dataset none" not in said


def test_bench_report_fits_the_cross_check_variant_and_charges_its_time(
        tmp_path: Path, smollm2: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from edgecascade.benchmarks.traces import cross_check_spec

    cfg = two_tier_config(tmp_path, smollm2)
    store = TraceStore(tmp_path / "traces")
    cascade = Cascade.from_config(cfg)
    _synthetic_traces(store, cascade, "synth", 120, offset=3)  # the dataset file below: i apples and 3 more
    spec = cross_check_spec(cascade)
    rng = np.random.default_rng(1)
    for i, line in enumerate((store.root / "synth" / f"smollm2-135m-{tier_specs(cascade, 24)[0].key}.jsonl")
                             .read_text().splitlines()):
        draft = json.loads(line)
        agrees = rng.random() < (0.8 if draft["correct"] else 0.2)  # right drafts' programs mostly agree
        store.append(Trace("synth", draft["item_id"], "math", spec.name, spec.model, spec.key, "", agrees, "stop",
                           10, 5, 0.5, None, 0.0, result=float(i + 3 if agrees else -1)))
    out = tmp_path / "results"
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["variants"] == ["calibrated", "calibrated + examples", "calibrated + examples + cross-check"]
    d = report["datasets"]["synth"]
    rows = {p["name"]: p for p in d["policies"]}
    for name in ("calibrated + examples + cross-check", "calibrated + examples + cross-check, deployed threshold"):
        # every item's cross-check (0.5 s) is paid on top of the draft (1 s); escalated ones add the large (3 s)
        r = rows[name]
        assert r["latency_s"] == pytest.approx(1.5 + 3.0 * (1 - r["small_share"]))
    r = rows["calibrated + examples"]
    assert r["latency_s"] == pytest.approx(1.0 + 3.0 * (1 - r["small_share"]))
    assert "calibrated + examples + cross-check" in report["calibration_thresholds"]
    # with one math item's cross-check missing, the variant is left out, and the report says why (the
    # items' prompts, read from the dataset file, make them math items)
    data = tmp_path / "synth.jsonl"
    data.write_text("".join(json.dumps({"id": f"synth{i}", "prompt": f"Tom has {i} apples and buys 3 more. How many "
                                        "apples does he have?", "reference": str(i + 3)}) + "\n" for i in range(120)))
    cc_file = store.path("synth", spec.model, spec.key)
    lines = cc_file.read_text().splitlines()
    cc_file.write_text("\n".join(lines[1:]) + "\n")
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", str(data),
                 "--out", str(tmp_path / "partial"), "--json"]) == 0
    partial = capsys.readouterr()
    assert json.loads(partial.out)["variants"] == ["calibrated", "calibrated + examples"]
    assert "1 synth math items have no traced cross-check" in partial.err
    # without the prompts (a dataset that cannot be reloaded), the traces' own domain says which are math
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
                 "--out", str(tmp_path / "partial"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["variants"] == ["calibrated", "calibrated + examples"]
    cc_file.write_text("\n".join(lines) + "\n")
    # a config whose own rule cross-checks: its row pays the cross-check of each math draft its checks pass
    from edgecascade.quality.calibration import CROSS_CHECK_FEATURES, FEATURE_NAMES, Calibration

    names = [*FEATURE_NAMES, *CROSS_CHECK_FEATURES]
    coef = [0.0] * len(names)
    coef[names.index("cross_check_agrees")] = 3.0  # P = 0.88 when the program agrees, 0.27 when not
    cal_path = tmp_path / "cc.calibration.json"
    Calibration("smollm2-135m", names, [0.0] * len(names), [1.0] * len(names), coef, -1.0).save(cal_path)
    checked = tmp_path / "checked.toml"
    checked.write_text(cfg.read_text().replace("[cascade]\n", "[cascade]\ncross_check = true\n").replace(
        "n_ctx = 1024\n", f'n_ctx = 1024\n[tiers.accept]\nconfidence = "calibrated"\ncalibration = "{cal_path}"\n'
        "min_confidence = 0.5\n", 1))
    judged = count_check_runs(monkeypatch)  # the config's rule runs a draft's checks once: cross-check and verdict
    assert main(["bench", "report", "--config", str(checked), "--traces", str(store.root), "--datasets", str(data),
                 "--out", str(tmp_path / "checked"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["datasets"]["synth"]
    [rule] = [p for p in d["policies"] if p["name"].startswith("this config's rule")]
    assert 0 < rule["small_share"] < 1
    assert len(judged) == d["items"]["held_out"]
    assert rule["latency_s"] == pytest.approx(1.5 + 3.0 * (1 - rule["small_share"]))
    # the reliability study cuts the same items, cross-checks and all
    assert main(["bench", "reliability", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
                 "--out", str(out), "--repeats", "2", "--margins", "1", "--json"]) == 0
    study = json.loads(capsys.readouterr().out)
    row = study["summary"]["1"]["synth"]["calibrated + examples + cross-check"]
    assert 0 <= row["meets_rate"] <= 1 and 0 < row["share_mean"] <= 1  # it kept drafts: it was fitted and judged


def test_bench_reliability_and_report_margin(tmp_path: Path, smollm2: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = two_tier_config(tmp_path, smollm2)
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(cfg), "synth", 160)
    out = tmp_path / "results"
    base = ["--config", str(cfg), "--traces", str(store.root), "--datasets", "synth", "--out", str(out)]
    assert main(["bench", "reliability", *base, "--repeats", "3", "--margins", "0", "2", "--json"]) == 0
    study = json.loads(capsys.readouterr().out)
    assert study["repeats"] == 3 and study["margins"] == [0.0, 2.0]
    assert json.loads((out / "reliability.json").read_text()) == study
    n = study["items"]["synth"]
    assert n["fit_part"] + n["judge_part"] == n["calibration"] < 160  # the calibration half only
    for z in ("0", "2"):
        row = study["summary"][z]["synth"]["calibrated"]
        assert 0 <= row["meets_rate"] <= 1 and 0 <= row["share_mean"] <= 1
    assert main(["bench", "reliability", *base, "--repeats", "1", "--margins", "1"]) == 0
    assert f"random splits of the {n['calibration']} items a report" in capsys.readouterr().out
    # the report takes the margin, says it, and chooses its thresholds with it
    reports = {}
    for z in ("0", "3"):
        assert main(["bench", "report", *base, "--margin", z, "--json"]) == 0
        reports[z] = json.loads(capsys.readouterr().out)
    assert reports["3"]["margin_z"] == 3.0
    t0, t3 = (reports[z]["datasets"]["synth"]["thresholds"]["calibrated"] for z in ("0", "3"))
    assert t3 > t0
    with pytest.raises(SystemExit) as refused:
        main(["bench", "reliability", *base, "--repeats", "0"])
    assert refused.value.code == 2 and "--repeats must be at least 1, not 0" in capsys.readouterr().err


def test_calibrate_from_user_traces_and_use_it_in_a_cascade(tmp_path: Path, smollm2: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    lines = []
    for i in range(200):
        good = bool(rng.random() < 0.5)
        lp = float(rng.normal(-0.1 if good else -1.0, 0.2))
        lines.append({"id": i, "answer": "Sure.", "tokens": ["Sure", "."], "logprobs": [lp, lp], "accepted": good,
                      "prompt": f"Tom has {i} apples and buys 4 more. How many apples does he have?"})
    traces = tmp_path / "mine.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "mine.calibration.json"
    assert main(["calibrate", "--traces", str(traces), "--model", "smollm2-135m", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["held_out"]["auroc"] > 0.9
    assert result["calibration_items"] + result["held_out_items"] == 200 and 70 < result["calibration_items"] < 130
    # the traces are all word problems, enough of them for a math calibrator of its own
    assert set(result["domains"]) == {"math"} and result["domains"]["math"]["items"] == result["calibration_items"]
    cal = json.loads(out.read_text())
    assert cal["model"] == "smollm2-135m" and len(cal["coef"]) == len(cal["features"])
    assert cal["domains"]["math"]["domain"] == "math"
    # a config uses it: confidence = "calibrated" with this file
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[cascade]\nmax_tokens = 16\n"
        f'[[tiers]]\nname = "small"\nmodel = "smollm2-135m"\nn_ctx = 1024\n[tiers.accept]\nconfidence = "calibrated"\n'
        f'calibration = "{out}"\nmin_confidence = 0.0\nchecks = []\n'
        f'[[tiers]]\nname = "large"\nmodel = "{smollm2}"\nn_ctx = 1024\n'
    )
    cascade = Cascade.from_config(cfg)
    r = cascade.run_sync("Say hi.")
    assert r.tier == "small" and r.confidence is not None and 0.0 <= r.confidence <= 1.0
    assert "accepted: calibrated " in r.reason  # no domain: the pooled calibrator
    r = cascade.run_sync("Ann has 2 pens and buys 3 more. How many pens does she have?")
    assert r.tier == "small" and "accepted: calibrated[math] " in r.reason


def _calibrated_setup(tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(a config whose first tier is calibrated for smollm2-135m, a private copy of the manifests dir)."""
    import shutil

    from edgecascade.models import manifests_dir

    manifests = tmp_path / "manifests"
    shutil.copytree(manifests_dir(), manifests)
    monkeypatch.setenv("EDGECASCADE_MANIFESTS", str(manifests))
    cfg = tmp_path / "calibrated.toml"
    cfg.write_text(
        "[cascade]\nmax_tokens = 24\n"
        '[[tiers]]\nname = "small"\nmodel = "smollm2-135m"\nn_ctx = 1024\n'
        '[tiers.accept]\nconfidence = "calibrated"\nquality_target = 0.95\n'
        f'[[tiers]]\nname = "large"\nmodel = "{smollm2}"\nn_ctx = 1024\n'
    )
    return cfg, manifests


def test_saved_calibration_is_what_the_config_rule_is_judged_with(tmp_path: Path, smollm2: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    cfg, manifests = _calibrated_setup(tmp_path, smollm2, monkeypatch)
    # a stale calibration whose threshold keeps no draft at all
    n = len(FEATURE_NAMES)
    Calibration("smollm2-135m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.0] * n, 0.0,
                thresholds={"0.95": 2.0}).save(manifests / "smollm2-135m.calibration.json")
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(cfg), "synth", 120)
    args = ["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
            "--out", str(tmp_path / "out"), "--no-examples", "--json"]
    assert main(args) == 0
    stale = json.loads(capsys.readouterr().out)["datasets"]["synth"]["at_target"]["config rule"]
    # the stale calibration has no record of being fitted on this split: its row is not called held-out
    assert stale["share"] == 0.0 and stale["held_out"] is False
    # a cross-check calibration from an earlier fit, which this report cannot refit (no --examples,
    # no traced cross-checks): kept, and said to be stale rather than left to be loaded silently
    older = manifests / "smollm2-135m.examples.cross-check.calibration.json"
    older.write_text((manifests / "smollm2-135m.calibration.json").read_text())
    assert main([*args, "--save-calibration"]) == 0
    captured = capsys.readouterr()
    said = " ".join(captured.err.split())
    assert (f"note: {older} was not refitted (--no-examples) and is still what a config with run_examples = true "
            "and cross_check = true loads") in said
    d = json.loads(captured.out)["datasets"]["synth"]
    saved = Calibration.load(manifests / "smollm2-135m.calibration.json")
    assert saved.threshold_for(0.95) < 1.0
    # judged with the calibration just written, not the stale one the config had loaded
    assert d["at_target"]["config rule"]["share"] > 0.0
    assert d["at_target"]["config rule"]["held_out"] is True
    # the saved one was fitted on seed 20261125's halves: under another seed its row is not held-out
    assert main([*args, "--seed", "7"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["datasets"]["synth"]["at_target"]["config rule"]["held_out"] is False
    assert "not a held-out result" in captured.err
    # with the examples check the examples variant is refitted; the cross-check one still cannot be
    no_flag = [a for a in args if a != "--no-examples"]
    assert main([*no_flag, "--save-calibration"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert f"{older} was not refitted (the traces hold no cross-checks" in said
    assert "examples.calibration.json was not refitted" not in said
    # a cross-check calibration without the examples check is one `bench report` never fits: it said
    # "the traces hold no cross-checks" whatever they held
    alone = manifests / "smollm2-135m.cross-check.calibration.json"
    alone.write_text((manifests / "smollm2-135m.calibration.json").read_text())
    assert main([*no_flag, "--save-calibration"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert (f"{alone} was not refitted (`bench report` fits the cross-check only with the examples check: the "
            "cross-check calibration it refits is the .examples.cross-check one)") in said
    # without matplotlib the report (minutes of fitting) is still written, and the figure's absence said:
    # it had ended in a ModuleNotFoundError traceback before report.json was written
    import sys

    written = tmp_path / "out" / "report.json"
    written.unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(no_flag) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "the cost-quality figure needs matplotlib: pip install 'edgecascade[bench]'" in said
    assert json.loads(written.read_text())["datasets"]["synth"]


def test_a_new_model_is_traced_and_reported_before_its_first_calibration(
        tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, manifests = _calibrated_setup(tmp_path, smollm2, monkeypatch)
    assert not (manifests / "smollm2-135m.calibration.json").exists()
    with pytest.raises(Exception, match="no calibration at"):  # what running the cascade says
        Cascade.from_config(cfg)
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(two_tier_config(tmp_path, smollm2)), "synth", 120)
    args = ["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
            "--out", str(tmp_path / "out"), "--no-examples", "--json"]
    assert main(args) == 0  # the report runs; the rule that has no calibration yet is not judged
    captured = capsys.readouterr()
    assert "config rule" not in json.loads(captured.out)["datasets"]["synth"]["at_target"]
    assert "no calibration yet for small" in captured.err
    assert main([*args, "--save-calibration"]) == 0  # ... and once fitted, it is
    assert "config rule" in json.loads(capsys.readouterr().out)["datasets"]["synth"]["at_target"]
    assert Cascade.from_config(cfg).tiers[0].calibration is not None


def test_a_new_quality_target_is_traced_and_reported_until_the_report_chooses_it(
        tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A config asking for a target its calibration has no threshold for is refused when a cascade
    is built for answering; but the report is what chooses that threshold, so tracing and
    reporting go on without the rule (as for a model with no calibration yet) until it has."""
    from edgecascade.cli.bench_traces import _bench_cascade
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    cfg, manifests = _calibrated_setup(tmp_path, smollm2, monkeypatch)
    n = len(FEATURE_NAMES)
    Calibration("smollm2-135m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.0] * n, 0.0,
                thresholds={"0.95": 0.5}).save(manifests / "smollm2-135m.calibration.json")
    cfg.write_text(cfg.read_text().replace("quality_target = 0.95", "quality_target = 0.9"))
    with pytest.raises(Exception, match="quality_target = 0.9 needs a threshold.*them only for 0.95"):
        Cascade.from_config(cfg)
    cascade, _, as_configured = _bench_cascade(str(cfg))
    assert not as_configured and cascade.tiers[0].accept.quality_target is None
    assert "has no threshold for quality_target 0.9 yet" in capsys.readouterr().err
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(two_tier_config(tmp_path, smollm2)), "synth", 120)
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
                 "--out", str(tmp_path / "out"), "--no-examples", "--target", "0.9", "--save-calibration"]) == 0
    capsys.readouterr()
    assert Cascade.from_config(cfg).tiers[0].calibration is not None  # chosen: the config now loads as written


def test_save_calibration_refuses_to_drop_a_domain_calibrator(
        tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A report on data without code prompts replaced a calibration that had a code calibrator, and
    said only 'written': code prompts then fell to a pooled calibrator fitted on math alone."""
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    cfg, manifests = _calibrated_setup(tmp_path, smollm2, monkeypatch)
    n = len(FEATURE_NAMES)

    def cal() -> Calibration:
        return Calibration("smollm2-135m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.0] * n, 0.0,
                           thresholds={"0.95": 0.5})

    old = cal()
    old.domains["code"] = cal()
    path = manifests / "smollm2-135m.calibration.json"
    old.save(path)
    before = path.read_bytes()
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(two_tier_config(tmp_path, smollm2)), "synth", 120)
    assert main(["bench", "report", "--config", str(cfg), "--traces", str(store.root), "--datasets", "synth",
                 "--out", str(tmp_path / "out"), "--no-examples", "--save-calibration"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"--save-calibration would drop domain calibrators: {path} (code)" in said and "nothing was written" in said
    assert path.read_bytes() == before


def test_bench_report_refuses_what_it_cannot_do_right(tmp_path: Path, smollm2: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    cfg, manifests = _calibrated_setup(tmp_path, smollm2, monkeypatch)
    store = TraceStore(tmp_path / "traces")
    _synthetic_traces(store, Cascade.from_config(two_tier_config(tmp_path, smollm2)), "synth", 120)
    base = ["bench", "report", "--traces", str(store.root), "--datasets", "synth", "--out", str(tmp_path / "out"),
            "--no-examples"]
    # saving for another target would leave the config's rule without its threshold: refused, nothing written
    assert main([*base, "--config", str(cfg), "--target", "0.9", "--save-calibration"]) == 2
    assert "quality_target 0.95" in capsys.readouterr().err
    assert not (manifests / "smollm2-135m.calibration.json").exists()
    # an explicit calibration path that does not exist is a config error, not a "new model"
    typo = tmp_path / "typo.toml"
    typo.write_text(cfg.read_text().replace("quality_target = 0.95",
                                            f'quality_target = 0.95\ncalibration = "{tmp_path}/nope.json"'))
    assert main([*base, "--config", str(typo)]) == 2
    assert "no calibration at" in capsys.readouterr().err
    # only an examples calibration, and a config that does not allow running examples: not loadable by
    # this config, so the tier is traced with its checks only instead of failing
    n = len(FEATURE_NAMES)
    Calibration("smollm2-135m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.0] * n, 0.0,
                thresholds={"0.95": 0.5}).save(manifests / "smollm2-135m.examples.calibration.json")
    assert main([*base, "--config", str(cfg), "--json"]) == 0
    captured = capsys.readouterr()
    assert "no calibration yet for small" in captured.err
    assert "config rule" not in json.loads(captured.out)["datasets"]["synth"]["at_target"]


def test_fresh_from_fits_on_the_first_items_and_judges_only_the_later_ones(
        tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import dataclasses

    from edgecascade.cli.bench_traces import _traced_datasets

    cfg, manifests = _calibrated_setup(tmp_path, smollm2, monkeypatch)
    plain = Cascade.from_config(two_tier_config(tmp_path, smollm2))
    more = TraceStore(tmp_path / "more")
    _synthetic_traces(more, plain, "synth", 200)  # 120 items to fit on, then 80 traced later
    specs = tier_specs(plain, plain.settings.max_tokens)

    def split(store: TraceStore, dataset: str) -> tuple[set[int], set[int]]:
        ns = argparse.Namespace(datasets=[dataset], traces=str(store.root), max_tokens=None, seed=20261125,
                                config=None, fresh_from=[("synth", 120)])
        (d,), _ = _traced_datasets(ns, plain)
        return ({int(p[0].item_id.removeprefix("synth")) for p in d.calibration},
                {int(p[0].item_id.removeprefix("synth")) for p in d.held_out})

    # a dataset that cannot be reloaded is ordered as it was traced: all of the first 120 are fitted on
    assert split(more, "synth") == (set(range(120)), set(range(120, 200)))
    # a dataset that can be reloaded is ordered as the dataset is, whatever order the traces were made in
    backwards = TraceStore(tmp_path / "backwards")
    for spec in specs:
        for t in reversed(list(more.load("synth", spec.model, spec.key).values())):
            backwards.append(t)
    data = tmp_path / "synth.jsonl"
    data.write_text("".join(json.dumps({"id": f"synth{i}", "prompt": f"What is {i} + 0?", "reference": str(i)}) + "\n"
                            for i in range(200)))
    assert split(backwards, str(data)) == (set(range(120)), set(range(120, 200)))
    # traced items the dataset no longer holds are left out, with a warning: their place is unknown
    data.write_text("".join(json.dumps({"id": f"synth{i}", "prompt": f"What is {i} + 0?", "reference": str(i)}) + "\n"
                            for i in range(190)))
    assert split(backwards, str(data)) == (set(range(120)), set(range(120, 190)))
    assert "10 traced synth items are not in the dataset as it is now" in capsys.readouterr().err

    base = ["bench", "report", "--config", str(cfg), "--datasets", "synth", "--out", str(tmp_path / "out"),
            "--no-examples", "--json"]
    assert main([*base, "--traces", str(more.root), "--fresh-from", "synth=120", "--save-calibration"]) == 0
    d = json.loads(capsys.readouterr().out)["datasets"]["synth"]
    assert d["items"] == {"calibration": 120, "held_out": 80, "fresh_from": 120}
    # the saved calibration was fitted on exactly these first items: its row is a result on unseen items
    assert d["at_target"]["config rule"]["held_out"] is True
    # no fit and no threshold reads the later items: with every later draft's label and logprobs
    # changed, the thresholds are the same, and what is judged moves
    changed = TraceStore(tmp_path / "changed")
    for spec in specs:
        for t in more.load("synth", spec.model, spec.key).values():
            late = int(t.item_id.removeprefix("synth")) >= 120
            changed.append(dataclasses.replace(t, correct=not t.correct, logprobs=[-0.05] * 3) if late else t)
    assert main([*base, "--traces", str(changed.root), "--fresh-from", "synth=120"]) == 0
    c = json.loads(capsys.readouterr().out)["datasets"]["synth"]
    assert c["thresholds"] == d["thresholds"] and c["auroc"] != d["auroc"]
    md = [a for a in base if a != "--json"]
    assert main([*md, "--traces", str(more.root), "--fresh-from", "synth=120", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "fitted on its first 120 items" in text and "judged on the 80 items from item 120 on" in text
    assert "on the fresh items." in text and "on held-out" not in text
    # fitted on other items than the first 100, which this report fits on: not a result on unseen items
    assert main([*base, "--traces", str(more.root), "--fresh-from", "synth=100"]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"]["synth"]["at_target"]["config rule"]["held_out"] is False
    assert main([*base, "--traces", str(more.root), "--fresh-from", "synth=195"]) == 2  # 5 fresh items: too few
    said = " ".join(capsys.readouterr().err.split())
    assert "--fresh-from synth=195" in said and "--limit M` (M > 195)" in said
    # past the dataset's end no tracing can help: it says so, rather than advise tracing more
    assert main([*base, "--traces", str(more.root), "--fresh-from", "synth=300"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "the dataset holds only 200 items, so none comes from item 300 on" in said and "--limit" not in said
    assert main([*base, "--traces", str(more.root), "--fresh-from", "synth=5"]) == 2  # 5 items to fit on
    assert "use a larger N" in capsys.readouterr().err
    assert main([*base, "--traces", str(more.root), "--fresh-from", "gsm8k=900"]) == 2  # not a dataset of this report
    assert "--fresh-from names gsm8k" in capsys.readouterr().err
    assert main([*base, "--traces", str(more.root), "--fresh-from", "synth=120", "synth=100"]) == 2
    assert "names synth twice" in capsys.readouterr().err
    # the reliability study reads the same first 120 items, never the later ones
    rel = ["bench", "reliability", "--config", str(cfg), "--datasets", "synth", "--out", str(tmp_path / "out"),
           "--no-examples", "--repeats", "2", "--margins", "1", "--json", "--fresh-from", "synth=120"]
    assert main([*rel, "--traces", str(more.root)]) == 0
    on_more = json.loads(capsys.readouterr().out)
    assert on_more["items"]["synth"]["calibration"] == 120
    assert main([*rel, "--traces", str(changed.root)]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == on_more["summary"]
    # it needs no item from N on (a report judging 5 fresh items refuses, above): it reads none
    assert main([*rel[:-1], "synth=195", "--traces", str(more.root)]) == 0
    assert json.loads(capsys.readouterr().out)["items"]["synth"]["calibration"] == 195
    for bad in ("synth=0", "900", "synth=x"):
        with pytest.raises(SystemExit):
            main([*base, "--traces", str(more.root), "--fresh-from", bad])
        assert "as in gsm8k=900" in capsys.readouterr().err
