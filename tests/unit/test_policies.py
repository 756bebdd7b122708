"""Offline policy evaluation, splits, calibration and the report, on synthetic traces."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgecascade.benchmarks.policies import (
    always_large,
    always_small,
    cascadeflow_score,
    choose_threshold,
    evaluate,
    oracle,
    random_routing,
)
from edgecascade.benchmarks.report import DatasetPairs, build_report, max_random_share, split_ids
from edgecascade.benchmarks.traces import Trace, TraceStore, load_labelled_traces
from edgecascade.errors import ConfigError
from edgecascade.providers.scripted import ScriptedReply
from edgecascade.quality.calibration import auroc, auroc_interval, expected_calibration_error, fit_calibration


def trace(item: str, correct: bool, *, tier: str = "small", cost: float = 0.0, latency: float = 1.0,
          lps: list[float] | None = None, answer: str = "The answer is 4.") -> Trace:
    lps = lps if lps is not None else [-0.1, -0.2]
    return Trace("d", item, "math", tier, tier, "k", answer, correct, "stop", 10, len(lps), latency, None, cost,
                 tokens=[f"t{i}" for i in range(len(lps))], logprobs=lps,
                 top_logprobs=[[x, x - 1.0] for x in lps])


def pairs_example() -> list[list[Trace]]:
    # small: right on a, b; wrong on c, d.  large: right on a, c, d; wrong on b.
    small = [trace("a", True, cost=1, latency=1), trace("b", True, cost=1, latency=1),
             trace("c", False, cost=1, latency=1), trace("d", False, cost=1, latency=1)]
    large = [trace(i, ok, tier="large", cost=10, latency=5) for i, ok in zip("abcd", (True, False, True, True))]
    return [[s, lg] for s, lg in zip(small, large)]


def test_policy_arithmetic_matches_hand_computation() -> None:
    pairs = pairs_example()
    # keep the small draft on a and c only: answers a(small ok) b(large wrong) c(small wrong) d(large ok)
    r = evaluate("x", pairs, np.array([True, False, True, False]))
    assert r.small_share == 0.5
    assert r.accuracy == 0.5
    assert r.cost == pytest.approx((1 + 11 + 1 + 11) / 4)  # escalation pays both calls
    assert r.latency_s == pytest.approx((1 + 6 + 1 + 6) / 4)
    assert always_large(pairs).accuracy == 0.75 and always_large(pairs).cost == 10
    assert always_small(pairs).accuracy == 0.5 and always_small(pairs).cost == 1
    o = oracle(pairs)  # keeps a, b; escalates c, d (large right on both)
    assert (o.small_share, o.accuracy) == (0.5, 1.0)
    rnd = random_routing(pairs, 0.5)
    assert rnd.accuracy == pytest.approx(0.5 * 0.5 + 0.5 * 0.75)
    assert rnd.cost == pytest.approx(1 + 0.5 * 10)


def test_threshold_is_the_lowest_that_meets_the_target() -> None:
    pairs = pairs_example()
    scores = np.array([0.9, 0.8, 0.3, 0.2])  # a perfect ranking: right drafts score higher
    # without a margin: target 100% of large (0.75). t=0.2 keeps all: 0.5. t=0.3 keeps a,b,c: 0.75
    assert choose_threshold(pairs, scores, 1.0, margin_z=0) == 0.3
    # target 0.6 of large (0.45): keeping everything (0.5) already meets it
    assert choose_threshold(pairs, scores, 0.6, margin_z=0) == 0.2
    # with one standard error of margin, t=0.3 (mean change 0, sd 0.82/2) no longer qualifies; t=0.8
    # (changes 0,+1,0,0: mean 0.25, standard error 0.25) does
    assert choose_threshold(pairs, scores, 1.0, margin_z=1.0) == 0.8
    # the default margin, 1.645 standard errors, rules out t=0.8 too (0.25 - 1.645 x 0.25 < 0); t=0.9
    # keeps only a, where both tiers are right: no change, nothing to doubt
    assert choose_threshold(pairs, scores, 1.0) == 0.9
    # an impossible target keeps no draft
    bad = np.array([0.1, 0.1, 0.9, 0.9])
    assert math.isinf(choose_threshold(pairs, bad, 1.0))
    # a score that could not be computed is never a threshold (nan had qualified as "keep none",
    # and then judged every draft "< nan"), weighted or not
    assert math.isinf(choose_threshold(pairs, np.array([0.1, np.nan, 0.9, 0.9]), 1.0))
    # c's score is nan: c always goes to the large model, so 0.2 keeps a, b and d: changes 0, +1, -1
    assert choose_threshold(pairs, np.array([0.9, 0.8, np.nan, 0.2]), 1.0, margin_z=0) == 0.2


def test_max_random_share() -> None:
    pairs = pairs_example()  # small 0.5, large 0.75
    # expected accuracy s*0.5 + (1-s)*0.75 >= 0.95*0.75 -> s <= (0.75-0.7125)/0.25 = 0.15
    assert max_random_share(pairs, 0.95) == pytest.approx(0.15)


def test_split_is_seeded_disjoint_complete_and_stable_as_data_grows() -> None:
    ids = [f"i{n}" for n in range(1000)]
    cal, held = split_ids(ids, seed=7)
    assert cal.isdisjoint(held) and cal | held == set(ids) and 440 < len(cal) < 560
    assert split_ids(list(reversed(ids)), seed=7) == (cal, held)  # order of input does not matter
    assert split_ids(ids, seed=8) != (cal, held)
    cal_more, held_more = split_ids(ids + [f"i{n}" for n in range(1000, 1500)], seed=7)
    assert cal <= cal_more and held <= held_more  # new items never move old ones across the split


def test_auroc_and_ece() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5
    assert math.isnan(auroc([0.1, 0.2], [True, True]))
    assert expected_calibration_error([0.95] * 20, [True] * 19 + [False]) == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error([0.9] * 10, [False] * 10) == pytest.approx(0.9)


def test_a_score_that_could_not_be_computed_ranks_lowest_and_is_no_confidence(
        caplog: pytest.LogCaptureFixture) -> None:
    """A NaN score (a backend's null logprob) is never accepted, yet it had ranked as the most
    confident, with an AUROC that depended on the items' order; ECE counted it in no bin; and one
    such draft among the fitting rows stopped the fit with scikit-learn's "Input X contains NaN"."""
    nan = math.nan
    assert auroc([nan, nan, 0.8, 0.2], [True, False, True, False]) == auroc([nan, nan, 0.8, 0.2],
                                                                           [False, True, True, False]) == 0.625
    assert auroc([nan, 0.8, 0.2], [False, True, False]) == 1.0
    assert expected_calibration_error([0.95, nan], [True, False]) == pytest.approx(0.025)
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    rows = [{"mean_logprob": float(v)} for v in x] + [{"mean_logprob": nan}, {"mean_logprob": -math.inf}]
    labels = (x > 0).tolist() + [True, False]
    cal = fit_calibration(rows, labels, model="m", features=["mean_logprob"])
    assert cal.coef[0] > 0 and "2 of the 202 drafts" in caplog.text


def test_calibrator_recovers_a_known_relation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    p_true = 1 / (1 + np.exp(-(2.0 * x - 0.5)))
    y = rng.random(2000) < p_true
    rows = [{"mean_logprob": float(v), "noise": float(rng.normal())} for v in x]
    cal = fit_calibration(rows, y.tolist(), model="m", features=["mean_logprob", "noise"])
    pred = cal.predict_many(rows)
    assert abs(cal.coef[0] / cal.scale[0] - 2.0) < 0.3  # the true slope, on the original scale
    assert abs(cal.coef[1]) < 0.15  # noise gets ~no weight
    assert expected_calibration_error(pred, y) < 0.05
    assert cal.predict(rows[0]) == pytest.approx(pred[0])


def synthetic_dataset(name: str, n: int, seed: int) -> list[list[Trace]]:
    """Small drafts whose token confidence truly predicts correctness; large is right 80% of the time."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        good = rng.random() < 0.5
        lp = float(rng.normal(-0.1 if good else -0.6, 0.15))
        small = trace(f"{name}{i}", good, lps=[lp, lp - 0.05, lp + 0.05], latency=1.0)
        large = trace(f"{name}{i}", bool(rng.random() < 0.8), tier="large", latency=3.0)
        pairs.append([small, large])
    return pairs


def test_report_fits_on_calibration_half_only_and_reports_held_out(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = synthetic_dataset("g", 200, 1)
    cal_ids, held_ids = split_ids([p[0].item_id for p in pairs], 3)
    data = DatasetPairs("g", [p for p in pairs if p[0].item_id in cal_ids],
                        [p for p in pairs if p[0].item_id in held_ids])
    import edgecascade.benchmarks.report as report_mod
    from edgecascade.benchmarks.report import DraftFeatures

    feats = DraftFeatures([data], False)
    held_rows = {id(feats(p[0])) for p in data.held_out}
    real_fit = report_mod.fit_calibration
    seen: list[int] = []
    fitted_labels: list[list[bool]] = []

    def spy(rows, labels, **kw):  # type: ignore[no-untyped-def]
        assert not any(id(r) in held_rows for r in rows)  # no held-out item ever reaches a fit
        seen.append(len(rows))
        fitted_labels.append(list(labels))
        return real_fit(rows, labels, **kw)

    monkeypatch.setattr(report_mod, "fit_calibration", spy)
    report, cals = build_report([data], model="small", target=0.95, seed=3, command="test", features=feats)
    n = len(data.calibration)
    # the calibrator and the router experiment: each fitted once on the whole calibration half, and
    # then 5 times on 4/5 of it for the out-of-fold scores their thresholds are chosen on (each
    # item left out of exactly one fold)
    assert [k == n for k in seen] == [True] + [False] * 5 + [True] + [False] * 5
    assert sum(seen[1:6]) == sum(seen[7:]) == 4 * n
    # the calibrator learns "the draft is right"; the router "keeping the draft loses nothing"
    assert fitted_labels[0] == [p[0].correct for p in data.calibration]
    assert fitted_labels[6] == [p[0].correct or not p[1].correct for p in data.calibration]
    assert fitted_labels[0] != fitted_labels[6]
    d = report["datasets"]["g"]
    assert d["items"] == {"calibration": len(data.calibration), "held_out": len(data.held_out), "fresh_from": None}
    names = [p["name"] for p in d["policies"]]
    assert names == ["always small", "always large", "mean logprob", "cascadeflow-style", "calibrated",
                     "router (escalation would not help)", "calibrated, one for all domains", "random", "oracle",
                     "calibrated, deployed threshold"]
    assert report["domain_calibrators"] == {"calibrated": {}}  # no prompts, no domains
    assert d["auroc"]["calibrated"] > 0.85  # the signal is real in this synthetic data
    assert list(cals) == ["calibrated"] and "0.95" in cals["calibrated"].thresholds
    assert not cals["calibrated"].runs_examples
    assert cals["calibrated"].meta["top_logprobs"] == 2  # the alternatives per token its drafts kept
    # with the examples check allowed, a second calibrator that uses it is fitted (again on the
    # calibration half only) and reported beside the first
    seen.clear()
    report, cals = build_report([data], model="small", target=0.95, seed=3, command="test", run_examples=True)
    assert seen.count(n) == 3 and len(seen) == 18
    assert list(cals) == ["calibrated", "calibrated + examples"] and cals["calibrated + examples"].runs_examples
    d = report["datasets"]["g"]
    assert [p["name"] for p in d["policies"]][-2:] == ["calibrated, deployed threshold",
                                                        "calibrated + examples, deployed threshold"]
    for v in ("calibrated", "calibrated + examples"):
        at = d["at_target"][v]
        assert 0 <= at["share"] <= 1 and isinstance(at["meets_target"], bool) and v in d["ece"]
    from edgecascade.benchmarks.render import markdown_report

    md = markdown_report(report)
    assert "| calibrated + examples |" in md and "held-out " + str(len(data.held_out)) in md
    from edgecascade.strict_json import json_safe

    json.dumps(json_safe(report), allow_nan=False)  # strict JSON once NaN/inf are nulled
    # a saved report.json (NaN written as null) prints as the report did: an unmeasured gap says nothing
    d["at_target"]["calibrated"]["gap_closed"] = float("nan")
    saved = json.loads(json.dumps(json_safe(report)))
    assert saved["datasets"]["g"]["at_target"]["calibrated"]["gap_closed"] is None
    assert markdown_report(saved) == markdown_report(report)
    assert "*calibrated* keeps" in markdown_report(saved)
    assert json_safe({"a": [float("nan"), float("inf"), 1.0]}) == {"a": [None, None, 1.0]}


def domain_dataset(name: str, n: int, seed: int, prompt: str, slope: float) -> DatasetPairs:
    """Drafts whose mean logprob predicts correctness with the given sign; the large model is right 80%."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        x = float(rng.normal())
        good = bool(rng.random() < 1 / (1 + math.exp(-slope * x)))
        lp = -0.5 + 0.2 * x
        pairs.append([trace(f"{name}{i}", good, lps=[lp, lp]),
                      trace(f"{name}{i}", bool(rng.random() < 0.8), tier="large", latency=3.0)])
    cal_ids, _ = split_ids([p[0].item_id for p in pairs], 5)
    return DatasetPairs(name, [p for p in pairs if p[0].item_id in cal_ids],
                        [p for p in pairs if p[0].item_id not in cal_ids], {f"{name}{i}": prompt for i in range(n)})


def test_report_fits_and_applies_one_calibrator_per_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgecascade.quality.calibration as cal_mod

    math_prompt = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    code_prompt = "Complete this Python function.\n```python\ndef f(x):\n```"
    # in math a confident draft is right; in code (synthetic, a known answer) it is wrong
    g = domain_dataset("g", 400, 1, math_prompt, 4.0)
    h = domain_dataset("h", 400, 2, code_prompt, -4.0)
    import edgecascade.benchmarks.report as report_mod

    fitted: list[int] = []
    real = cal_mod._fit_one
    thresholded: list[set[str]] = []
    real_choose = report_mod.choose_threshold

    def spy(rows, labels, **kw):  # type: ignore[no-untyped-def]
        fitted.append(len(rows))
        return real(rows, labels, **kw)

    def choose_spy(pairs, scores, target, margin_z):  # type: ignore[no-untyped-def]
        thresholded.append({p[0].item_id for p in pairs})
        return real_choose(pairs, scores, target, margin_z)

    monkeypatch.setattr(cal_mod, "_fit_one", spy)
    monkeypatch.setattr(report_mod, "choose_threshold", choose_spy)
    report, cals = build_report([g, h], model="small", target=0.95, seed=3, command="test")
    held = {p[0].item_id for p in (*g.held_out, *h.held_out)}
    assert thresholded and not any(ids & held for ids in thresholded)  # every threshold: calibration items only
    # deployed thresholds, chosen on each calibrator's threshold table: pooled (every item judged here has a
    # domain calibrator, so all items), code, math; calibration items only, in their order
    deployed_cals = cals["calibrated"]
    for c, pairs in ((deployed_cals, [*g.calibration, *h.calibration]), (deployed_cals.domains["code"], h.calibration),
                     (deployed_cals.domains["math"], g.calibration)):
        assert c.threshold_table is not None
        assert c.threshold_table.small_right == [p[0].correct for p in pairs]
        assert c.threshold_table.large_right == [p[-1].correct for p in pairs]
        assert c.thresholds == c.threshold_table.thresholds_at(0.0, c.thresholds)
    n_g, n_h = len(g.calibration), len(h.calibration)
    # pooled, then each domain (sorted: code, math), then the router: calibration halves only; after
    # each of the two, 5 fits for the out-of-fold scores, each on 4/5 of every domain's items
    assert len(fitted) == 24 and fitted[:3] == [n_g + n_h, n_h, n_g] and fitted[18] == n_g + n_h
    folds = [fitted[i:i + 3] for i in range(3, 18, 3)]
    assert [sum(f[k] for f in folds) for k in range(3)] == [4 * (n_g + n_h), 4 * n_h, 4 * n_g]
    assert sum(fitted[19:]) == 4 * (n_g + n_h)  # the router's folds: no prompts, so no domain calibrators
    cal = cals["calibrated"]
    assert set(cal.domains) == {"math", "code"}
    assert set(report["domain_calibrators"]["calibrated"]) == {"math", "code"}
    assert report["domain_calibrators"]["calibrated"]["math"]["items"] == n_g
    pooled_auroc = []
    for name, d in (("g", "math"), ("h", "code")):
        entry = report["datasets"][name]
        # each domain calibrator ranks its own domain
        assert entry["auroc"]["calibrated"] > 0.8
        pooled_auroc.append(entry["auroc"]["calibrated, one for all domains"])
        deployed = next(p for p in entry["policies"] if p["name"] == "calibrated, deployed threshold")
        assert deployed["threshold"] == cal.domains[d].thresholds["0.95"]
    assert cal.domains["math"].thresholds["0.95"] != cal.domains["code"].thresholds["0.95"]
    # the pooled calibrator, pulled both ways, ranks one of the two domains backwards
    assert min(pooled_auroc) < 0.5
    from edgecascade.benchmarks.render import markdown_report

    assert f"calibrated: code ({n_h} drafts, threshold" in markdown_report(report)


def test_cascadeflow_score_components() -> None:
    t = trace("a", True, lps=[math.log(0.5)] * 4)
    # geo 0.5, harmonic 0.5, min 0.5, pseudo-entropy mean(-0.5 ln 0.5) * e
    expect = 0.5 * 0.5 + 0.2 * 0.5 + 0.15 * 0.5 + 0.15 * (1 - 0.5 * math.log(2) * math.e)
    assert cascadeflow_score(t) == pytest.approx(expect)
    # the top 80% of three tokens: ceil keeps all three (every reported number), cascadeflow's own
    # floor two, leaving out the least likely one (a review found the README's recipe silent on it)
    p = [0.9, 0.9, 0.01]
    t = trace("b", True, lps=[math.log(x) for x in p])
    rest = 0.5 * math.prod(p) ** (1 / 3) + 0.15 * 0.01 + 0.15 * (1 - sum(-x * math.log(x) for x in p) / 3 * math.e)
    assert cascadeflow_score(t) == pytest.approx(rest + 0.2 * 3 / sum(1 / x for x in p))
    assert cascadeflow_score(t, floor=True) == pytest.approx(rest + 0.2 * 0.9)


def test_a_model_named_by_its_path_is_traced_inside_the_traces_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A server's model named by its path ("/models/Qwen2.5") wrote its traces outside the folder."""
    store = TraceStore(tmp_path / "traces")
    for model in ("/models/Qwen2.5-0.5B", "org/Big-Model", "..\\up", "C:model", ".hidden"):
        p = store.path("d", model, "k")
        assert p.parent == tmp_path / "traces" / "d" and not p.name.startswith("."), p
        store.append(replace(trace(f"x-{model}", True), model=model))
        assert f"x-{model}" in store.load("d", model, "k")
    assert store.path("d", "qwen2.5-coder-0.5b", "k").name == "qwen2.5-coder-0.5b-k.jsonl"  # as committed


def test_two_writers_to_one_trace_file_lose_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A second writer took the first's half-written line for one cut by an interruption, and
    dropped it: 36 of 600 long traces were lost in a reviewer's run."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from edgecascade.benchmarks.traces import Trace, TraceStore\n"
            "s = TraceStore(Path(sys.argv[1]))\n"
            "for i in range(150):\n"
            "    s.append(Trace('d', f'{sys.argv[2]}-{i}', 'math', 's', 'm', 'k', 'x' * 200000, True, 'stop', 1, 1,"
            " 0.1, None, 0.0))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), who]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(TraceStore(tmp_path).load("d", "m", "k")) == 300


def test_trace_store_resumes_and_skips_torn_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = TraceStore(tmp_path)
    store.append(trace("a", True))
    store.append(trace("b", False))
    p = store.path("d", "small", "k")
    with p.open("a") as f:
        f.write('{"dataset": "d", "item_id": "c", "dom')  # a write cut by an interruption
    loaded = store.load("d", "small", "k")
    assert set(loaded) == {"a", "b"} and loaded["b"].correct is False
    # a write cut inside a character ("€" is 3 bytes) stopped every later run with "not UTF-8 text"
    with p.open("ab") as f:
        f.write(b'\n{"dataset": "d", "item_id": "e", "answer": "costs \xe2\x82')
    assert set(store.load("d", "small", "k")) == {"a", "b"}
    store.append(trace("e", True))  # and the next append replaces the cut line
    assert set(store.load("d", "small", "k")) == {"a", "b", "e"}
    assert loaded["a"].token_logprobs() is not None and len(loaded["a"].token_logprobs()) == 2  # type: ignore[arg-type]


def test_load_labelled_traces_plain_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"id": 1, "answer": "ok", "tokens": ["o", "k"], "logprobs": [-0.1, -0.2],
                             "accepted": True}) + "\n")
    [t] = load_labelled_traces(p)
    assert t.correct is True and t.logprobs == [-0.1, -0.2] and t.item_id == "1"
    p.write_text(json.dumps({"id": "q7", "prompt": "What is 2 + 3?", "answer": "5", "tokens": ["5"],
                             "logprobs": [-0.1], "correct": True}) + "\n")
    prompts: dict[str, str] = {}
    [t] = load_labelled_traces(p, prompts)
    assert prompts == {"q7": "What is 2 + 3?"}  # the question reaches the prompt features
    p.write_text(json.dumps({"answer": "ok", "tokens": ["o"], "logprobs": [-0.1]}) + "\n")
    with pytest.raises(ConfigError, match="has no boolean label"):
        load_labelled_traces(p)


def test_run_json_lines_are_labelled_traces(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgecascade import Cascade, ScriptedProvider, Tier

    r = Cascade([Tier("t", ScriptedProvider([ScriptedReply("Paris is it", logprob=-0.2)]))]).run_sync("q")
    line = {"prompt": "q", **r.to_dict(logprobs=True), "correct": True}  # what `run --json --logprobs` prints
    p = tmp_path / "runs.jsonl"
    p.write_text(json.dumps(line) + "\n")
    prompts: dict[str, str] = {}
    [t] = load_labelled_traces(p, prompts)
    assert t.correct is True and t.answer == "Paris is it" and t.logprobs == [-0.2, -0.2, -0.2]
    assert list(prompts.values()) == ["q"]
    p.write_text(json.dumps(r.to_dict(logprobs=True)) + "\n")  # the cascade's own 'accepted' is no label
    with pytest.raises(Exception, match="no boolean label"):
        load_labelled_traces(p)


def test_a_run_line_keeps_alternatives_that_print_alike(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Byte tokens that each decode to U+FFFD collapsed into one {token: logprob} entry, and the
    reader cut every step to the fewest alternatives: `calibrate` fitted on other features than the
    engine computes."""
    from edgecascade.quality.features import logprob_features
    from edgecascade.types import TokenLogprobs

    lp = TokenLogprobs(["is", "\ufffd", "x"], np.array([-0.1, -0.5, -0.2]),
                       [["is", "a", "b"], ["\ufffd", "\ufffd", "\ufffd"], ["x", "y", "z"]],
                       np.array([[-0.1, -2.5, -3.0], [-0.5, -1.0, -1.5], [-0.2, -2.0, -4.0]]))
    attempt = {"tier": "t", "model": "m", "content": "is\ufffdx", "finish_reason": "stop",
               "tokens": {"prompt": 5, "completion": 3}, "logprobs": lp.to_dict()}
    line = {"prompt": "q", "correct": True, "attempts": [attempt]}
    p = tmp_path / "runs.jsonl"
    p.write_text(json.dumps(line) + "\n")
    [t] = load_labelled_traces(p)
    assert t.top_logprobs == [[-0.1, -2.5, -3.0], [-0.5, -1.0, -1.5], [-0.2, -2.0, -4.0]]
    live, read = logprob_features(lp), logprob_features(t.token_logprobs())  # type: ignore[arg-type]
    assert read.mean_margin == pytest.approx(live.mean_margin) and read.mean_entropy == pytest.approx(live.mean_entropy)
    # a line printed before, with an object per step, still reads
    line["attempts"][0]["logprobs"]["top"] = [{"is": -0.1, "a": -2.5}, {"\ufffd": -0.5, "b": -1.0},
                                              {"x": -0.2, "y": -2.0}]
    p.write_text(json.dumps(line) + "\n")
    assert load_labelled_traces(p)[0].top_logprobs == [[-0.1, -2.5], [-0.5, -1.0], [-0.2, -2.0]]
    line["attempts"][0]["logprobs"]["top"] = [[["is"]], [], []]
    p.write_text(json.dumps(line) + "\n")
    with pytest.raises(Exception, match="pairs per token"):
        load_labelled_traces(p)


def test_run_lines_give_the_answer_that_was_returned_and_ids_of_their_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A `run --json` line whose upper tier failed after the draft was returned was read by its last
    attempt (the failed one: "no per-token logprobs"); and lines without an id were named by their
    line number, so two days' files clashed on "1"."""
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.config import AcceptRule
    from edgecascade.errors import ProviderTimeoutError

    r = Cascade([Tier("small", ScriptedProvider([ScriptedReply("It is 4", logprob=-0.2)], model="s"),
                      AcceptRule(min_confidence=0.99)),
                 Tier("big", ScriptedProvider([ScriptedReply(error=ProviderTimeoutError("slow"))], model="b"))]
                ).run_sync("q")
    assert r.tier == "small" and r.attempts[-1].error is not None  # the draft came back, the big tier failed
    days = [tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"]
    for day in days:
        day.write_text(json.dumps({"prompt": "q", **r.to_dict(logprobs=True), "correct": True}) + "\n")
    [a], [b] = (load_labelled_traces(day) for day in days)
    assert a.answer == "It is 4" and a.logprobs == [-0.2, -0.2, -0.2]
    assert (a.item_id, b.item_id) == ("day1.jsonl:1", "day2.jsonl:1")  # by file name: the same anywhere


def test_oracle_share_at_target() -> None:
    from edgecascade.benchmarks.policies import oracle_share_at_target

    pairs = pairs_example()  # small right on a, b; large right on a, c, d (0.75)
    # free: a (small right), b (small right). costly: c, d (small wrong, large right).
    # perfect accuracy 1.0; goal 0.95*0.75 = 0.7125 -> 1 costly item may be kept (1.0 - 0.25 >= 0.7125)
    assert oracle_share_at_target(pairs, 0.95) == 0.75
    assert oracle_share_at_target(pairs, 1.0) == 0.75  # 1.0 - 0.25 = 0.75 >= 0.75
    assert oracle_share_at_target(pairs, 0.5) == 1.0


def test_run_traces_caches_and_regenerates_only_changed_prompts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import run_traces
    from edgecascade.datasets import Item

    small = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="small")
    large = ScriptedProvider([ScriptedReply("It is 5", logprob=-0.1)], model="large")
    cascade = Cascade([Tier("s", small), Tier("l", large)])
    items = [Item(f"q{i}", f"question {i}", "4", "math", {"dataset": "toy", "grader": "contains"}) for i in range(2)]
    store = TraceStore(tmp_path)
    out = run_traces(cascade, items, dataset="toy", store=store, max_tokens=16)
    assert len(small.requests) == 2 and len(large.requests) == 2
    assert out["s"]["q0"].correct is True and out["l"]["q0"].correct is False
    run_traces(cascade, items, dataset="toy", store=store, max_tokens=16)
    assert len(small.requests) == 2  # all cached
    items[1] = Item("q1", "question 1, reworded", "4", "math", {"dataset": "toy", "grader": "contains"})
    run_traces(cascade, items, dataset="toy", store=store, max_tokens=16)
    assert len(small.requests) == 3 and small.requests[-1].messages[-1].content == "question 1, reworded"
    run_traces(cascade, items, dataset="toy", store=store, max_tokens=32)  # other settings: a new trace set
    assert len(small.requests) == 5


def test_two_tiers_of_one_model_and_settings_are_traced_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two tiers with the same model and settings write one trace file: each item was generated
    twice (the same greedy answer) and both traces appended to it. Now it is generated once and
    both tiers read it; the progress counts what is generated."""
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import run_traces
    from edgecascade.datasets import Item

    one = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="m")
    same = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="m")
    other = ScriptedProvider([ScriptedReply("It is 5", logprob=-0.1)], model="big")
    cascade = Cascade([Tier("a", one), Tier("b", same), Tier("c", other)])
    items = [Item(f"q{i}", f"question {i}", "4", "math", {"dataset": "toy", "grader": "contains"}) for i in range(3)]
    store = TraceStore(tmp_path)
    seen: list[tuple[int, int]] = []
    out = run_traces(cascade, items, dataset="toy", store=store, max_tokens=16,
                     on_progress=lambda msg, done, total: seen.append((done, total)))
    assert len(one.requests) == 3 and len(same.requests) == 0 and len(other.requests) == 3
    assert out["a"] == out["b"] and set(out["b"]) == {"q0", "q1", "q2"} and out["b"]["q0"].correct is True
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert sum(1 for _ in (tmp_path / "toy").glob("m-*.jsonl")) == 1
    assert len((next((tmp_path / "toy").glob("m-*.jsonl"))).read_text().splitlines()) == 3


def test_traced_costs_follow_each_tiers_price_now(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A trace kept the cost of its call at the price of the run that made it, and the settings key
    leaves the price out: a tier priced anew read its old cost from the cache, and a second tier of
    the same model and settings (one file) at another price read the first tier's."""
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import run_traces
    from edgecascade.config import Price
    from edgecascade.datasets import Item

    def price(per_m: float) -> Price:
        return Price(input_per_mtok=per_m, output_per_mtok=per_m)

    items = [Item("q0", "question 0", "4", "math", {"dataset": "toy", "grader": "contains"})]
    store = TraceStore(tmp_path)

    def cost(per_m: float) -> float:
        cloud = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="cloud")
        out = run_traces(Cascade([Tier("cloud", cloud, price=price(per_m))]), items, dataset="toy", store=store,
                         max_tokens=16)
        t = out["cloud"]["q0"]
        assert t.prompt_tokens + t.completion_tokens > 0
        return t.cost / (t.prompt_tokens + t.completion_tokens) * 1e6

    assert cost(1.0) == pytest.approx(1.0)
    assert cost(100.0) == pytest.approx(100.0)  # from the cache, at the price now (it read 1.0)
    free = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="m")
    paid = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="m")
    out = run_traces(Cascade([Tier("free", free), Tier("paid", paid, price=price(50.0))]), items, dataset="toy",
                     store=store, max_tokens=16)
    assert len(paid.requests) == 0 and out["free"]["q0"].cost == 0.0  # one file, traced once
    t = out["paid"]["q0"]
    assert t.cost == pytest.approx((t.prompt_tokens + t.completion_tokens) * 50.0 / 1e6) and t.cost > 0


def test_a_report_bills_its_traces_at_the_price_of_the_config_it_reports_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import json

    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import run_traces
    from edgecascade.cli.bench_traces import _traced_datasets
    from edgecascade.config import Price
    from edgecascade.datasets import load

    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"What is {i} plus 4?", "reference": str(i + 4)})
                            + "\n" for i in range(12)))

    def cascade(per_m: float) -> Cascade:
        price = Price(input_per_mtok=per_m, output_per_mtok=per_m)
        return Cascade([Tier("s", ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="small"),
                             price=price),
                        Tier("l", ScriptedProvider([ScriptedReply("It is 5", logprob=-0.1)], model="large"),
                             price=price)])

    store = TraceStore(tmp_path / "traces")
    run_traces(cascade(1.0), load(str(data)), dataset="toy", store=store, max_tokens=16)
    args = argparse.Namespace(datasets=[str(data)], fresh_from=[], traces=str(store.root), max_tokens=16, seed=1)
    [d], _ = _traced_datasets(args, cascade(30.0), judges=True)
    for pair in [*d.calibration, *d.held_out]:
        for t in pair:
            assert t.cost == pytest.approx((t.prompt_tokens + t.completion_tokens) * 30.0 / 1e6) and t.cost > 0


def test_a_report_leaves_out_traces_of_items_the_dataset_no_longer_holds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Lines removed from a JSONL dataset shift its default ids (line numbers): the traces of ids past
    its new end were still paired and reported, so their questions counted twice, with stale grades."""
    import argparse
    import json

    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import run_traces
    from edgecascade.cli.bench_traces import _traced_datasets
    from edgecascade.datasets import load

    data = tmp_path / "toy.jsonl"

    def write(numbers: range) -> None:
        data.write_text("".join(json.dumps({"prompt": f"What is {i} plus 4?", "reference": str(i + 4)}) + "\n"
                                for i in numbers))

    def cascade() -> Cascade:
        return Cascade([Tier("s", ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="small")),
                        Tier("l", ScriptedProvider([ScriptedReply("It is 5", logprob=-0.1)], model="large"))])

    store = TraceStore(tmp_path / "traces")
    write(range(30))
    run_traces(cascade(), load(str(data)), dataset="toy", store=store, max_tokens=16)
    write(range(10, 30))  # the first ten lines removed: ids 1-20 now hold the questions 21-30 held
    run_traces(cascade(), load(str(data)), dataset="toy", store=store, max_tokens=16)
    args = argparse.Namespace(datasets=[str(data)], fresh_from=[], traces=str(store.root), max_tokens=16, seed=1)
    [d], _ = _traced_datasets(args, cascade(), judges=True)
    ids = {p[0].item_id for p in [*d.calibration, *d.held_out]}
    assert ids == {i.id for i in load(str(data))} and len(ids) == 20


def test_the_settings_key_follows_the_alternatives_kept_and_whether_logprobs_come(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Traces made with 5 alternatives per token were reused by a tier keeping 20 (entropy is taken
    over them), and a tier's logprobs switched off reused traces that had them."""
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import tier_specs
    from edgecascade.providers.base import Capabilities
    from edgecascade.providers.llamacpp import LlamaCppProvider

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")

    def key(**kw: object) -> str:
        return tier_specs(Cascade([Tier("t", LlamaCppProvider(path=model, **kw))]), 64)[0].key  # type: ignore[arg-type]

    assert key() == key(top_logprobs=5) != key(top_logprobs=20)
    # the context window bounds an in-process model's answers: another window, other traces (the
    # default keeps the key every committed trace has)
    assert key() == key(n_ctx=4096) != key(n_ctx=512)
    no_lp = ScriptedProvider([ScriptedReply("x")], model="m", capabilities=Capabilities(logprobs=False))
    lp = ScriptedProvider([ScriptedReply("x")], model="m")
    assert tier_specs(Cascade([Tier("t", no_lp)]), 64)[0].key != tier_specs(Cascade([Tier("t", lp)]), 64)[0].key


def test_a_cached_grade_made_otherwise_is_made_again_from_the_stored_answer(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A cached trace kept its right/wrong label after the item's reference or its grader changed:
    a fixed reference, or a fixed grader, left every cached grade as it was."""
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade import datasets as ds
    from edgecascade.benchmarks.traces import grading_key, regraded, run_traces
    from edgecascade.datasets import Item

    small = ScriptedProvider([ScriptedReply("The answer is 5 + 1 = 6.", logprob=-0.1)], model="small")
    cascade = Cascade([Tier("s", small)])

    def item(reference: str) -> Item:
        return Item("q0", "question 0", reference, "math", {"dataset": "toy", "grader": "number"})

    store = TraceStore(tmp_path)
    assert run_traces(cascade, [item("5")], dataset="toy", store=store, max_tokens=16)["s"]["q0"].correct is False
    # the reference was wrong, and is corrected: the cached answer is graded again, not generated again
    again = run_traces(cascade, [item("6")], dataset="toy", store=store, max_tokens=16)["s"]["q0"]
    assert again.correct is True and len(small.requests) == 1
    # a grade kept before grading keys were (graded: "") is made again when its grader has changed
    # since its first version; by an unchanged grader's first version, it stands
    legacy = {"q0": replace(again, correct=False, graded="")}
    assert regraded(legacy, {"q0": item("6")})["q0"].correct is True
    monkeypatch.setitem(ds.GRADER_VERSIONS, "number", 1)
    assert regraded(legacy, {"q0": item("6")})["q0"].correct is False
    # a cross-check is graded by its program's result; an item not in the dataset any more is kept as stored
    check = replace(again, tier="cross-check", result=5.0, correct=True, graded="")
    monkeypatch.setitem(ds.GRADER_VERSIONS, "number", 2)
    assert regraded({"q0": check}, {"q0": item("6")})["q0"].correct is False
    assert regraded({"q9": check}, {"q0": item("6")}) == {"q9": check}
    # a cross-check of a text-graded item, graded when its number was read as a sentence (exact:
    # "The answer is 6" against "6", wrong), is graded again by the number now, keyed or not
    exact = Item("q0", "question 0", "6", "math", {"dataset": "toy", "grader": "exact"})
    old = replace(check, result=6.0, correct=False)
    for graded in ("", grading_key(exact)):
        assert regraded({"q0": replace(old, graded=graded)}, {"q0": exact})["q0"].correct is True
    assert regraded({"q0": old}, {"q0": exact})["q0"].graded == grading_key(exact, cross_check=True)


def test_at_target_numbers_match_hand_computation() -> None:
    # the draft is right exactly when it states a final number; every token logprob is the same, so
    # the logprob baselines cannot tell drafts apart; the large model is always right
    pairs = []
    for i in range(200):
        good = i % 2 == 0
        small = trace(f"h{i}", good, answer="The answer is 4." if good else "I am not sure.")
        pairs.append([small, trace(f"h{i}", True, tier="large", latency=3.0)])
    cal_ids, held_ids = split_ids([p[0].item_id for p in pairs], 3)
    cal = [p for p in pairs if p[0].item_id in cal_ids]
    held = [p for p in pairs if p[0].item_id in held_ids]
    from edgecascade.benchmarks.report import ConfigRule, add_config_rule

    seen_prompts: list[str | None] = []

    def keep(t: Trace, prompt: str | None) -> bool:  # a config's rule, applied to each stored draft
        seen_prompts.append(prompt)
        return "answer" in t.answer

    prompts = {p[0].item_id: f"question {p[0].item_id}" for p in pairs}
    data = [DatasetPairs("h", cal, held, prompts)]
    report, _ = build_report(data, model="small", target=0.95, seed=3, command="test")
    add_config_rule(report, data, ConfigRule("my rule", keep))
    at = report["datasets"]["h"]["at_target"]
    # the config's rule is judged on the held-out half only, with each item's question
    assert sorted(seen_prompts) == sorted(f"question {p[0].item_id}" for p in held)
    assert report["datasets"]["h"]["policies"][-1]["name"] == "my rule"
    n, right = len(held), sum(p[0].correct for p in held)
    s_cal = sum(p[0].correct for p in cal) / len(cal)
    # random: the largest share meeting the target on the calibration half, kept only if it meets it on held-out
    share = (1 - 0.95) / (1 - s_cal)
    random_share = share if share * right / n + (1 - share) >= 0.95 - 1e-12 else 0.0
    assert at["best_baseline_share"] == pytest.approx(random_share)
    assert at["best_baseline"] == ("random" if random_share > 0 else "always large")
    assert at["oracle_share"] == pytest.approx(right / n)
    budget = (right + min(n - right, math.floor(0.05 * n + 1e-9))) / n  # wrong drafts the 5% budget allows
    assert at["oracle_share_budget"] == pytest.approx(budget)
    r = at["calibrated"]
    assert r["meets_target"] and r["share"] == pytest.approx(right / n) and r["accuracy"] == 1.0
    assert r["gap_closed"] == pytest.approx(1.0)
    assert r["gap_closed_budget"] == pytest.approx((right / n - random_share) / (budget - random_share))
    assert at["config rule"] == {"label": "my rule", "share": pytest.approx(right / n), "accuracy": 1.0,
                                 "meets_target": True, "held_out": True}

    # printed: a policy that meets the target shows the gap it closed; one that misses shows none
    from rich.console import Console

    from edgecascade.benchmarks.render import print_report

    def printed() -> str:
        console = Console(record=True, width=200)
        print_report(report, console)
        return console.export_text()

    assert f"calibrated keeps {right / n:.1%} of drafts at 100.0% accuracy (meets the target on held-out; " \
           f"gap to the oracle closed 100%" in printed()
    at["calibrated"].update(meets_target=False, accuracy=0.5, gap_closed=float("nan"),
                            gap_closed_budget=float("nan"))
    out = printed()
    assert "calibrated keeps" in out and "at 50.0% accuracy (MISSES the target on held-out)" in out
    assert "nan" not in out


def test_auroc_interval_brackets_the_estimate_and_narrows_with_data() -> None:
    rng = np.random.default_rng(5)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        return rng.normal(y.astype(float), 1.0), y

    s, y = sample(80)
    lo, hi = auroc_interval(s, y, seed=1)
    assert lo < auroc(s, y) < hi and 0.5 < hi <= 1.0
    assert auroc_interval(s, y, seed=1) == (lo, hi)  # seeded: the report is reproducible
    s2, y2 = sample(2000)
    lo2, hi2 = auroc_interval(s2, y2, resamples=300, seed=1)
    assert hi2 - lo2 < (hi - lo) / 3  # ~sqrt(25) = 5x narrower with 25x the items
    assert lo2 < 0.76 < hi2  # the true AUROC of two unit normals one sd apart: Phi(1/sqrt 2) = 0.760


def test_auroc_interval_resamples_whole_groups_of_alike_items() -> None:
    """Eight copies of each item, drawn one by one, look like eight times the evidence; drawn by
    group they give the interval of the items themselves."""
    from edgecascade.quality.calibration import resample_groups

    rng = np.random.default_rng(7)
    y = rng.random(60) < 0.5
    s = rng.normal(y.astype(float), 1.0)
    copies_s, copies_y = np.repeat(s, 8), np.repeat(y, 8)
    groups = np.repeat(np.arange(60), 8).tolist()
    alone = auroc_interval(s, y, seed=2)
    assert auroc_interval(copies_s, copies_y, seed=2, groups=groups) == pytest.approx(alone)
    lo, hi = auroc_interval(copies_s, copies_y, seed=2)
    assert hi - lo < (alone[1] - alone[0]) / 2  # one by one: far too sure
    # every item its own group: the draws of resampling items
    assert auroc_interval(s, y, seed=2, groups=list(range(60))) == alone
    # a draw is whole groups, each with all its items
    idx = resample_groups(["a", "b", "a", "c", "b", "a"])(np.random.default_rng(0))
    members = {0: "a", 2: "a", 5: "a", 1: "b", 4: "b", 3: "c"}
    drawn = [members[int(i)] for i in idx]
    assert all(drawn.count(g) % {"a": 3, "b": 2, "c": 1}[g] == 0 for g in set(drawn))


def test_report_chooses_every_threshold_with_the_margin_it_is_given() -> None:
    g = domain_dataset("g", 400, 1, "Tom has 3 apples and buys 4 more. How many apples does he have?", 3.0)
    loose, loose_cals = build_report([g], model="small", target=0.95, seed=3, command="test", margin_z=0.0)
    tight, tight_cals = build_report([g], model="small", target=0.95, seed=3, command="test", margin_z=3.0)
    assert (loose["margin_z"], tight["margin_z"]) == (0.0, 3.0)
    assert tight_cals["calibrated"].meta["margin_z"] == 3.0
    lt, tt = loose["datasets"]["g"]["thresholds"], tight["datasets"]["g"]["thresholds"]
    # a wider margin never lowers a threshold, and here it raises the calibrated one
    assert all(tt[k] >= lt[k] for k in lt) and tt["calibrated"] > lt["calibrated"]
    from edgecascade.benchmarks.report import out_of_fold_scores
    from edgecascade.quality.calibration import FEATURE_NAMES

    rows = [draft_features_of(p[0]) for p in g.calibration]
    prompts = [g.prompts[p[0].item_id] for p in g.calibration]
    # chosen on the scores of calibrations fitted without each item, not on the calibrator's own fitting data
    oof = out_of_fold_scores(rows, [p[0].correct for p in g.calibration], prompts, ["math"] * len(rows), seed=3,
                             model="small", features=FEATURE_NAMES)
    for cals in (loose_cals, tight_cals):  # the deployed (per-domain) thresholds get the same margin
        math_cal = cals["calibrated"].domains["math"]
        z = cals["calibrated"].meta["margin_z"]
        assert math_cal.thresholds["0.95"] == choose_threshold(g.calibration, oof.judged, 0.95, z)
        in_sample = choose_threshold(g.calibration, math_cal.predict_many(rows), 0.95, z)
        assert math_cal.thresholds["0.95"] != in_sample
    kept = {name: {r["name"]: r["small_share"] for r in rep["datasets"]["g"]["policies"]}["calibrated"]
            for name, rep in (("loose", loose), ("tight", tight))}
    assert kept["tight"] < kept["loose"]
    from edgecascade.benchmarks.render import markdown_report

    assert "safety margin of 3 standard errors" in markdown_report(tight)


def draft_features_of(t: Trace) -> dict[str, float]:
    from edgecascade.quality.calibration import draft_features

    return draft_features(t.completion(), prompt="Tom has 3 apples and buys 4 more. How many apples does he have?")


def test_report_leaves_the_router_out_when_escalation_never_helped() -> None:
    # the large model is right only where the draft is right too: "keeping the draft loses nothing"
    # holds for every item, so the router has one class to learn from and is not fitted
    rng = np.random.default_rng(4)
    pairs = []
    for i in range(120):
        good = bool(rng.random() < 0.5)
        lp = -0.1 if good else -0.9
        pairs.append([trace(f"r{i}", good, lps=[lp, lp]), trace(f"r{i}", good and rng.random() < 0.9, tier="large")])
    cal_ids, _ = split_ids([p[0].item_id for p in pairs], 5)
    data = DatasetPairs("r", [p for p in pairs if p[0].item_id in cal_ids],
                        [p for p in pairs if p[0].item_id not in cal_ids])
    report, _ = build_report([data], model="small", target=0.95, seed=3, command="test")
    assert "router (escalation would not help)" not in report["experiments"]
    assert "router (escalation would not help)" not in report["datasets"]["r"]["auroc"]
    assert report["experiments"] == ["calibrated, one for all domains"]


def test_a_calibration_needs_both_kinds_and_says_where_it_found_one() -> None:
    from edgecascade.errors import ConfigError

    with pytest.raises(ConfigError, match="in the calibration halves of x all 3 drafts are right"):
        fit_calibration([{"mean_logprob": -0.1}] * 3, [True] * 3, model="m", source="the calibration halves of x")
    with pytest.raises(ConfigError, match="cannot calibrate: the calibration part of y holds no drafts"):
        fit_calibration([], [], model="m", source="the calibration part of y")


def test_cascadeflow_score_is_finite_when_a_token_had_probability_zero() -> None:
    t = trace("z", True, lps=[-0.1, -math.inf, -0.3])
    s = cascadeflow_score(t)
    assert math.isfinite(s)
    # the zero-probability token adds nothing to the pseudo-entropy (the limit of -p log p at 0)
    p = np.exp([-0.1, -0.3])
    geo = 0.0  # exp(mean) with a -inf term
    top = np.sort(np.exp([-0.1, -math.inf, -0.3]))[::-1][:3]
    harmonic = 3 / np.sum(1 / np.maximum(top, 1e-12))
    entropy = float(np.sum(-p * np.log(p)) / 3) * math.e
    assert s == pytest.approx(0.5 * geo + 0.2 * harmonic + 0.15 * 0.0 + 0.15 * (1 - entropy))


def test_out_of_fold_scores_score_each_item_as_new_data_is_scored() -> None:
    """Why thresholds are chosen on out-of-fold scores: on pure noise a calibrator ranks its own
    fitting data well above chance, and items it never saw at about chance."""
    from edgecascade.benchmarks.report import out_of_fold_scores

    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(20)]
    rows = [{k: float(v) for k, v in zip(names, rng.normal(size=20))} for _ in range(200)]
    labels = [bool(b) for b in rng.random(200) < 0.4]
    in_sample = auroc(fit_calibration(rows, labels, model="m", features=names).predict_many(rows), labels)
    oof = out_of_fold_scores(rows, labels, None, [None] * 200, seed=0, model="m", features=names)
    assert in_sample > 0.65 and auroc(oof.pooled, labels) < in_sample - 0.1
    assert np.all((oof.pooled > 0) & (oof.pooled < 1))


MATH_PROMPT = "Tom has 3 apples and buys 4 more. How many apples does he have?"
CODE_PROMPT = "Complete this Python function.\n```python\ndef f(x):\n```"


def test_every_row_of_the_report_chooses_on_the_out_of_fold_scores_of_its_own_items() -> None:
    from edgecascade.benchmarks.report import POOLED_SUFFIX, ROUTER

    g = domain_dataset("g", 400, 1, MATH_PROMPT, 4.0)
    h = domain_dataset("h", 300, 2, CODE_PROMPT, -4.0)
    fits: dict = {}  # type: ignore[type-arg]
    report, cals = build_report([g, h], model="small", target=0.95, seed=3, command="t", margin_z=1.0, fits=fits)
    oof, router_oof = fits["calibrated"][1], fits[ROUTER][1]
    n_g = len(g.calibration)
    for d, part in ((g, slice(0, n_g)), (h, slice(n_g, None))):  # the calibration items in the order fitted
        th = report["datasets"][d.name]["thresholds"]
        assert th["calibrated"] == choose_threshold(d.calibration, oof.judged[part], 0.95, 1.0)
        assert th["calibrated" + POOLED_SUFFIX] == choose_threshold(d.calibration, oof.pooled[part], 0.95, 1.0)
        assert th[ROUTER] == choose_threshold(d.calibration, router_oof.pooled[part], 0.95, 1.0)
    # per domain calibrator: on its own domain's items; the two kinds of score differ there
    assert cals["calibrated"].domains["code"].thresholds["0.95"] == choose_threshold(
        h.calibration, oof.judged[n_g:], 0.95, 1.0)
    assert not np.array_equal(oof.judged, oof.pooled)


def test_a_reused_fit_gives_each_report_its_own_thresholds_target_and_margin() -> None:
    g = domain_dataset("g", 400, 1, MATH_PROMPT, 3.0)
    fits: dict = {}  # type: ignore[type-arg]
    build_report([g], model="small", target=0.95, seed=3, command="t", margin_z=0.0, fits=fits)
    reused, reused_cals = build_report([g], model="small", target=0.9, seed=3, command="t", margin_z=2.0, fits=fits)
    fresh, fresh_cals = build_report([g], model="small", target=0.9, seed=3, command="t", margin_z=2.0)
    assert reused["datasets"]["g"]["thresholds"] == fresh["datasets"]["g"]["thresholds"]
    for r, f in ((reused_cals["calibrated"], fresh_cals["calibrated"]),
                 (reused_cals["calibrated"].domains["math"], fresh_cals["calibrated"].domains["math"])):
        assert r.thresholds["0.9"] == f.thresholds["0.9"]
    assert reused_cals["calibrated"].meta["margin_z"] == 2.0 and reused_cals["calibrated"].meta["target"] == 0.9


def test_each_fold_fits_the_domain_calibrators_the_whole_calibration_has(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgecascade.benchmarks.report as report_mod
    from edgecascade.benchmarks.report import out_of_fold_scores
    from edgecascade.quality.calibration import FEATURE_NAMES, draft_features

    # 66 code items: enough for a code calibrator of its own (60), but a fold trains on about 53
    h = domain_dataset("h", 132, 4, CODE_PROMPT, -4.0)
    rows = [draft_features(p[0].completion(), prompt=CODE_PROMPT) for p in h.calibration]
    labels = [p[0].correct for p in h.calibration]
    whole = fit_calibration(rows, labels, model="m", prompts=[CODE_PROMPT] * len(rows))
    assert set(whole.domains) == {"code"} and len(rows) < 75
    folds: list[set[str]] = []
    real = report_mod.fit_calibration

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        cal = real(*a, **kw)
        folds.append(set(cal.domains))
        return cal

    monkeypatch.setattr(report_mod, "fit_calibration", spy)
    out_of_fold_scores(rows, labels, [CODE_PROMPT] * len(rows), ["code"] * len(rows), seed=3, model="m",
                       features=FEATURE_NAMES, fitted_domains=sorted(whole.domains))
    assert folds == [{"code"}] * 5


def test_a_domain_threshold_depends_only_on_its_own_domains_items() -> None:
    """Folds are drawn per domain: adding math items, or changing every one of them, moves no code
    item's out-of-fold score and so not the code calibrator's threshold."""
    from edgecascade.benchmarks.report import fold_assignment

    h = domain_dataset("h", 300, 2, CODE_PROMPT, -4.0)
    thresholds, code_folds = [], []
    for g in (domain_dataset("g", 400, 1, MATH_PROMPT, 4.0), domain_dataset("g", 700, 9, MATH_PROMPT, -2.0)):
        _, cals = build_report([g, h], model="small", target=0.95, seed=3, command="t", margin_z=1.0)
        assert set(cals["calibrated"].domains) == {"code", "math"}
        thresholds.append((cals["calibrated"].domains["code"].thresholds["0.95"],
                           cals["calibrated"].domains["math"].thresholds["0.95"]))
        labels = [p[0].correct for d in (g, h) for p in d.calibration]
        domains = ["math"] * len(g.calibration) + ["code"] * len(h.calibration)
        code_folds.append(fold_assignment(labels, domains, seed=3)[len(g.calibration):])
    assert thresholds[0][0] == thresholds[1][0]  # the code threshold: unmoved
    assert thresholds[0][1] != thresholds[1][1]  # the math one moved with the math data
    assert np.array_equal(code_folds[0], code_folds[1]) and set(code_folds[0]) == {0, 1, 2, 3, 4}


def test_folds_are_stratified_within_each_domain() -> None:
    from edgecascade.benchmarks.report import fold_assignment

    labels = [i % 4 == 0 for i in range(100)] + [i % 2 == 0 for i in range(40)] + [True, False, True]
    domains = ["math"] * 100 + ["code"] * 40 + [None] * 3
    fold = fold_assignment(labels, domains, seed=0)
    y, dom = np.array(labels), np.array(domains, dtype=object)
    for d, right in (("math", 25), ("code", 20)):
        for f in range(5):  # each fold holds a fifth of the domain's right drafts and of its wrong ones
            here = (dom == d) & (fold == f)
            assert (y[here].sum(), (~y[here]).sum()) == (right // 5, (np.sum(dom == d) - right) // 5)
    # a domain with one wrong draft cannot be stratified: plain folds, every item in one
    assert sorted(fold[dom == None].tolist()) == [0, 1, 2]  # noqa: E711


def test_rare_drafts_of_unstratifiable_domains_do_not_share_a_fold() -> None:
    """Two domains with one wrong draft each: drawn alone, with the same seed and size, both wrong
    drafts always landed in one fold, whose training part then had none; drawn together by label,
    they are apart and every fold can be fitted."""
    from edgecascade.benchmarks.report import fold_assignment, out_of_fold_scores

    labels = [i != 0 for i in range(30)] * 2
    domains = ["math"] * 30 + ["code"] * 30
    for seed in range(20):
        fold = fold_assignment(labels, domains, seed=seed)
        assert fold[0] != fold[30]
    rows = [{"mean_logprob": float(i % 7)} for i in range(60)]
    oof = out_of_fold_scores(rows, labels, None, domains, seed=0, model="m", features=["mean_logprob"])
    assert np.all((oof.pooled > 0) & (oof.pooled < 1))


def test_out_of_fold_scores_need_two_drafts_of_each_kind() -> None:
    from edgecascade.benchmarks.report import out_of_fold_scores
    from edgecascade.errors import OneKindError

    rows = [{"mean_logprob": float(i)} for i in range(30)]
    with pytest.raises(OneKindError, match="only 1 of its 30 drafts is wrong"):
        out_of_fold_scores(rows, [True] * 29 + [False], None, [None] * 30, seed=0, model="m",
                           features=["mean_logprob"])
    # 3 wrong drafts: 3 folds, each item still scored once
    oof = out_of_fold_scores(rows, [True] * 27 + [False] * 3, None, [None] * 30, seed=0, model="m",
                             features=["mean_logprob"])
    assert oof.pooled.shape == (30,) and np.all((oof.pooled > 0) & (oof.pooled < 1))


def test_the_router_is_left_out_when_escalation_helped_only_once() -> None:
    g = domain_dataset("g", 200, 1, MATH_PROMPT, 3.0)
    # the large model is right only where the draft is right too, except on one item
    first = g.calibration[0]
    for p in g.calibration:
        p[1].correct = p[0].correct
    first[0].correct, first[1].correct = False, True
    report, _ = build_report([g], model="small", target=0.95, seed=3, command="t")
    assert "router (escalation would not help)" not in report["experiments"]


def test_accuracy_shift_flags_judged_items_unlike_the_fitted_ones() -> None:
    from edgecascade.benchmarks.render import SHIFT_Z, _shift_line
    from edgecascade.benchmarks.report import accuracy_shift

    def items(prefix: str, n: int, small_right: int, large_right: int) -> list[list[Trace]]:
        return [[trace(f"{prefix}{i}", i < small_right), trace(f"{prefix}{i}", i < large_right, tier="large")]
                for i in range(n)]

    fitted, judged = items("f", 100, 30, 60), items("j", 100, 10, 60)
    shift = accuracy_shift(fitted, judged)
    # hand computation: pooled 0.2, se = sqrt(0.2 * 0.8 * (1/100 + 1/100)) = 0.0566, z = -0.2 / 0.0566
    assert shift["small"]["fitted"] == 0.3 and shift["small"]["judged"] == 0.1
    assert shift["small"]["z"] == pytest.approx(-0.2 / math.sqrt(0.2 * 0.8 * 0.02))
    assert shift["large"] == {"fitted": 0.6, "judged": 0.6, "z": 0.0}
    line = _shift_line({"shift": shift})
    assert abs(shift["small"]["z"]) >= SHIFT_Z and "small model right on 10.0% of them against 30.0%" in line
    # the same rates, or a tier always right (no spread to measure): nothing to say
    assert _shift_line({"shift": accuracy_shift(fitted, items("k", 50, 15, 30))}) == ""
    assert accuracy_shift(items("a", 10, 10, 10), items("b", 10, 10, 10))["small"]["z"] == 0.0
    # the report carries it per dataset, and its Markdown says it when the data shifted
    def drafts(prefix: str, n: int, right_share: float) -> list[list[Trace]]:
        rng = np.random.default_rng(0)
        out = []
        for i in range(n):
            good = bool(rng.random() < right_share)
            lp = float(rng.normal(-0.1 if good else -0.6, 0.15))
            out.append([trace(f"{prefix}{i}", good, lps=[lp, lp - 0.05]), trace(f"{prefix}{i}", True, tier="large")])
        return out

    data = DatasetPairs("d", drafts("c", 120, 0.5), drafts("h", 120, 0.15))
    report, _ = build_report([data], model="small", target=0.9, seed=1, command="t", detail=False)
    d = report["datasets"]["d"]
    assert d["shift"]["small"]["judged"] < d["shift"]["small"]["fitted"] and d["shift"]["small"]["z"] <= -SHIFT_Z
    from edgecascade.benchmarks.render import markdown_report
    assert "The judged items differ from the items fitted on" in markdown_report(report)


def test_an_adapted_calibration_is_not_called_held_out() -> None:
    """`fitted_on` read only the seed and the fitted items' record, which an adaptation copies: a
    calibration adapted on the very items a report judges had its row called a held-out result."""
    from edgecascade.benchmarks.report import _data_record, fitted_on
    from edgecascade.quality.adapt import adapt_calibration
    from edgecascade.quality.calibration import Calibration

    g = domain_dataset("g", 200, 1, "Tom has 3 apples and buys 4 more. How many apples does he have?", 3.0)
    cal = Calibration(model="small", features=["mean_logprob"], mean=[0.0], scale=[1.0], coef=[1.0],
                      intercept=0.0, meta={"seed": 5, "data": {"g": _data_record(g)}})
    assert fitted_on(cal.meta, [g], 5) and not fitted_on(cal.meta, [g], 6)
    judged = g.held_out  # adapted on the items the report would judge
    rows = [{"mean_logprob": float(np.mean(p[0].logprobs))} for p in judged]
    adapted, _ = adapt_calibration(cal, rows, [p[0].correct for p in judged], [None] * len(rows), min_items=10)
    assert adapted.meta["data"] == cal.meta["data"] and adapted.meta["adapted"]
    assert not fitted_on(adapted.meta, [g], 5)


def test_a_traced_answer_the_backend_filtered_stays_filtered() -> None:
    """Read back from a trace, "filtered" had become "stop": replays and calibrate kept drafts the live
    cascade rejects."""
    import dataclasses

    from edgecascade.quality.checks import check_refusal

    t = dataclasses.replace(trace("a", False), finish_reason="filtered")
    assert t.completion().finish_reason == "filtered" and not check_refusal(t.completion()).passed
    assert dataclasses.replace(t, finish_reason="length").completion().finish_reason == "length"
    # an answer the backend did not finish (vLLM's "abort", read as "error") stays unfinished too
    assert dataclasses.replace(t, finish_reason="error").completion().finish_reason == "error"
    assert dataclasses.replace(t, finish_reason="anything").completion().finish_reason == "stop"


def test_a_threshold_that_keeps_nothing_reads_the_same_from_a_saved_report_and_colours_differ() -> None:
    """A threshold that keeps no draft (+inf) was written as null, like a policy without one: the
    saved report.json printed a blank for it, and its domain line raised TypeError. And the figure
    gave "random" and the seventh swept policy one pink, a config's rule and the eighth one grey."""
    from rich.console import Console

    from edgecascade.benchmarks.policies import PolicyResult
    from edgecascade.benchmarks.render import OTHER_POLICY_COLOR, markdown_report, policy_colors, print_report
    from edgecascade.strict_json import json_safe

    assert PolicyResult("calibrated", 0.0, 0.5, 0.0, 1.0, float("inf")).to_dict()["keeps_none"] is True
    assert "keeps_none" not in PolicyResult("always large", 0.0, 0.5, 0.0, 1.0).to_dict()
    pairs = synthetic_dataset("g", 200, 1)
    cal_ids, held_ids = split_ids([p[0].item_id for p in pairs], 3)
    data = DatasetPairs("g", [p for p in pairs if p[0].item_id in cal_ids],
                        [p for p in pairs if p[0].item_id in held_ids])
    report, _ = build_report([data], model="small", target=0.95, seed=3, command="test")
    report["domain_calibrators"] = {"calibrated": {"math": {"threshold": float("inf"), "items": 75}}}
    policies = report["datasets"]["g"]["policies"]
    policies.append(PolicyResult("calibrated, strict", 0.0, 0.8, 0.0, 4.0, float("inf")).to_dict())
    saved = json.loads(json.dumps(json_safe(report), allow_nan=False))
    assert markdown_report(saved) == markdown_report(report)
    assert "math (75 drafts, threshold none kept)" in markdown_report(saved)

    def printed(r: dict[str, object]) -> list[str]:
        console = Console(record=True, width=200)
        print_report(r, console)
        return [line for line in console.export_text().splitlines() if "calibrated, strict" in line]

    assert printed(saved) == printed(report) and "none kept" in printed(saved)[0]
    report["experiments"] = [*report.get("experiments", []), "e1", "e2", "e3", "e4", "e5"]
    colors = policy_colors(report)
    swept = [*report["variants"], "mean logprob", "cascadeflow-style", *report["experiments"]]
    fixed = [colors[k] for k in ("always small", "always large", "random", "oracle")]
    assert len({colors[k] for k in swept}) == len(swept) >= 8
    assert not {colors[k] for k in swept} & {*fixed, OTHER_POLICY_COLOR}


def test_the_figure_says_fresh_items_where_the_report_judged_fresh_items(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The figure's titles said "held-out N items" and "(held-out halves)" for a --fresh-from report,
    whose judged items are those traced after the first N, not a held-out half."""
    import matplotlib.figure

    from edgecascade.benchmarks.render import plot_report

    pairs = synthetic_dataset("g", 200, 1)
    data = DatasetPairs("g", pairs[:150], pairs[150:], fresh_from=150)
    report, _ = build_report([data], model="small", target=0.95, seed=3, command="test")
    seen: list[list[str]] = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: seen.append(
        [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text()]))
    plot_report(report, tmp_path / "f.png")
    titles = seen[0]
    assert titles[0] == "g (50 fresh items, from item 150 on)" and "held-out" not in " ".join(titles)


def test_a_reports_target_is_printed_as_precisely_as_it_was_given() -> None:
    """`bench report --target 0.999` titled its table "target 100% of the large model's accuracy"
    (and 0.955 read 96%): the target was rounded to a whole percent."""
    import io

    from rich.console import Console

    from edgecascade.benchmarks.render import print_report

    pairs = synthetic_dataset("g", 120, 4)
    cal_ids, held_ids = split_ids([p[0].item_id for p in pairs], 3)
    data = DatasetPairs("g", [p for p in pairs if p[0].item_id in cal_ids],
                        [p for p in pairs if p[0].item_id in held_ids])
    for target, said in ((0.999, "target 99.9% of"), (0.955, "target 95.5% of"), (0.95, "target 95% of")):
        report, _ = build_report([data], model="small", target=target, seed=3, command="test")
        console = Console(file=io.StringIO(), width=200)
        print_report(report, console)
        assert said in console.file.getvalue(), target  # type: ignore[attr-defined]


def test_a_report_says_when_a_priced_tiers_traces_came_without_token_counts(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A backend that sends no usage was traced as 0 tokens with no flag: priced, the report showed
    its $/query as $0 without a word (a live Result names such a tier in usage_missing)."""
    import argparse
    import dataclasses
    import json

    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import run_traces
    from edgecascade.cli.bench_traces import _traced_datasets
    from edgecascade.config import Price
    from edgecascade.datasets import load
    from edgecascade.types import Usage

    class Uncounted(ScriptedProvider):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            c = await super().complete(request)
            return dataclasses.replace(c, usage=Usage(0, 0, reported=False))

    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"What is {i} plus 4?", "reference": str(i + 4)})
                            + "\n" for i in range(12)))

    def cascade(per_m: float) -> Cascade:
        price = Price(input_per_mtok=per_m, output_per_mtok=per_m)
        return Cascade([Tier("s", ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="small")),
                        Tier("l", Uncounted([ScriptedReply("It is 5", logprob=-0.1)], model="large"), price=price)])

    store = TraceStore(tmp_path / "traces")
    run_traces(cascade(1.0), load(str(data)), dataset="toy", store=store, max_tokens=16)
    [large_file] = (store.root / "toy").glob("large-*.jsonl")
    assert all(json.loads(line)["usage_reported"] is False for line in large_file.read_text().splitlines())
    args = argparse.Namespace(datasets=[str(data)], fresh_from=[], traces=str(store.root), max_tokens=16, seed=1)
    capsys.readouterr()
    [d], _ = _traced_datasets(args, cascade(30.0), judges=True)
    said = " ".join(capsys.readouterr().err.split())
    assert "12 of tier l's toy traces came without token counts" in said and "too low" in said
    assert not d.calibration[0][1].completion().usage.reported
    _traced_datasets(args, cascade(0.0), judges=True)  # unpriced: $0 is true, nothing to say
    assert "without token counts" not in capsys.readouterr().err


def test_the_figure_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without the `bench` extra the figure raised ModuleNotFoundError, a traceback, after the whole fit."""
    import sys

    from edgecascade.benchmarks.render import plot_report
    from edgecascade.errors import ConfigError

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"needs matplotlib: pip install 'edgecascade\[bench\]'"):
        plot_report({"datasets": {}}, tmp_path / "f.png")
