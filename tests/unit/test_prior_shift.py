"""Adapting a calibration to unlabelled traffic: a base rate recovered under a known label shift,
thresholds chosen again on weighted calibration items, per calibrator, and the CLI around it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgecascade.cli import main
from edgecascade.quality.calibration import Calibration, ThresholdTable, logit
from edgecascade.quality.prior_shift import adapt_to_unlabelled, estimate_prior
from edgecascade.quality.thresholds import label_shift_weights, threshold_for_target

MATH = "Tom has 3 apples and buys 4 more. How many apples does he have?"
CODE = "Complete this Python function.\n```python\ndef f(x):\n```"
SOURCE_PRIOR = 0.25


def draws(n: int, prior: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Label-shifted data: right drafts' feature ~ N(+1, 1), wrong ones' ~ N(-1, 1), right with
    probability ``prior``. The exact posterior at SOURCE_PRIOR is sigmoid(logit(SOURCE_PRIOR) + 2x)."""
    y = rng.random(n) < prior
    return rng.normal(np.where(y, 1.0, -1.0), 1.0), y


def test_the_base_rate_is_recovered_from_unlabelled_drafts_under_a_known_label_shift() -> None:
    rng = np.random.default_rng(0)
    for prior in (0.1, 0.25, 0.4):
        x, y = draws(20_000, prior, rng)
        est = estimate_prior(logit(SOURCE_PRIOR) + 2 * x, SOURCE_PRIOR)
        assert abs(est.prior - y.mean()) < 3 * est.se and est.se < 0.01
        assert est.shift == pytest.approx(logit(est.prior) - logit(SOURCE_PRIOR))
    # the standard error is what repeated draws show (to within their own noise)
    estimates = [estimate_prior(logit(SOURCE_PRIOR) + 2 * draws(400, 0.15, rng)[0], SOURCE_PRIOR) for _ in range(200)]
    spread = np.std([e.prior for e in estimates])
    assert 0.75 < np.mean([e.se for e in estimates]) / spread < 1.33


def test_drafts_that_all_look_wrong_put_the_estimate_at_the_edge_and_bad_input_is_refused() -> None:
    est = estimate_prior(np.full(50, -30.0), SOURCE_PRIOR)
    assert est.prior < 1e-5
    with pytest.raises(ValueError, match="finite"):
        estimate_prior(np.array([0.0, math.nan]), SOURCE_PRIOR)
    with pytest.raises(ValueError, match="no drafts"):
        estimate_prior(np.array([]), SOURCE_PRIOR)
    with pytest.raises(ValueError, match="between 0 and 1"):
        estimate_prior(np.zeros(3), 1.0)


def test_weights_move_each_kind_of_draft_to_the_new_mix() -> None:
    w = label_shift_weights([True, False, True, False], 0.5, 0.2)
    assert w.tolist() == pytest.approx([0.4, 1.6, 0.4, 1.6])
    # weighted, the right drafts are 20% of the mix
    assert (w * np.array([1, 0, 1, 0])).sum() / w.sum() == pytest.approx(0.2)


def test_the_weighted_rule_against_a_hand_computed_example() -> None:
    scores = np.array([0.9, 0.8, 0.3])
    small = np.array([True, False, False])
    large = np.array([True, True, True])
    # equal weights are the unweighted rule, on any data
    rng = np.random.default_rng(3)
    s, sm, lg = rng.random(200), rng.random(200) < 0.3, rng.random(200) < 0.6
    for target in (0.9, 0.95):
        assert threshold_for_target(s, sm, lg, target, 1.645, np.full(200, 3.7)) == threshold_for_target(
            s, sm, lg, target, 1.645)
    # one item has no standard error: no threshold, weighted or not
    assert math.isinf(threshold_for_target(s[:1], sm[:1], lg[:1], 0.9, 1.645))
    assert math.isinf(threshold_for_target(s[:1], sm[:1], lg[:1], 0.9, 1.645, np.ones(1)))
    # no margin. Keeping the 0.9 draft loses nothing; keeping the 0.8 one too loses a query (-1 on it).
    # Unweighted: keeping both costs 1/3 of a query, over the 0.1 x 1 allowed; at 0.9 nothing is lost.
    assert threshold_for_target(scores, small, large, 0.9, 0.0) == 0.9
    # weights 1, 0.1, 8.9 (sum 10): keeping both costs 0.1 / 10 = 0.01, within 0.1 x 1; keeping all
    # three costs 9 / 10. So 0.8 is the lowest that qualifies.
    assert threshold_for_target(scores, small, large, 0.9, 0.0, np.array([1.0, 0.1, 8.9])) == 0.8
    with pytest.raises(ValueError, match="positive"):
        threshold_for_target(scores, small, large, 0.9, 0.0, np.array([1.0, 0.0, 1.0]))


def table_calibration(seed: int = 0) -> Calibration:
    """A math calibrator and a code calibrator on one feature (mean_logprob), each the exact posterior
    of :func:`draws` at its base rate, with a threshold table of 2,000 out-of-fold-like scores and the
    threshold the report's rule chooses on it."""
    rng = np.random.default_rng(seed)
    subs = {}
    for domain, prior in (("math", SOURCE_PRIOR), ("code", 0.6)):
        x, y = draws(2000, prior, rng)
        large = rng.random(2000) < np.where(y, 0.9, 0.5)
        c = Calibration("m", ["mean_logprob"], [0.0], [1.0], [2.0], logit(prior), domain=domain)
        scores = c.predict_many([{"mean_logprob": float(v)} for v in x])
        c.threshold_table = ThresholdTable(scores.tolist(), y.tolist(), large.tolist(), c.intercept, 1.645)
        c.thresholds["0.95"] = threshold_for_target(scores, y, large, 0.95, 1.645)
        c.meta["items"] = 2000
        subs[domain] = c
    pooled = Calibration("m", ["mean_logprob"], [0.0], [1.0], [2.0], logit(0.4), thresholds={"0.95": 0.6},
                         domains=subs)
    return pooled


def rows_at(prior: float, n: int, seed: int) -> tuple[list[dict[str, float]], np.ndarray]:
    x, y = draws(n, prior, np.random.default_rng(seed))
    return [{"mean_logprob": float(v)} for v in x], y


def test_harder_traffic_moves_the_calibrator_down_and_its_threshold_keeps_fewer_drafts() -> None:
    cal = table_calibration()
    rows, y = rows_at(0.1, 3000, 1)
    adapted, shifts = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    by = {s.calibrator: s for s in shifts}
    sh = by["calibrated[math]"]
    assert sh.prior is not None and sh.prior_se is not None and sh.shift is not None
    assert abs(sh.prior - y.mean()) < 3 * sh.prior_se and sh.shift < 0 and sh.differs is True
    # the unshifted mean P(correct) sees only part of a label shift: it lies between the truth and the learned rate
    assert sh.mean_p is not None and y.mean() + 0.03 < sh.mean_p < SOURCE_PRIOR
    m, before = adapted.domains["math"], cal.domains["math"]
    assert m.intercept == pytest.approx(before.intercept + sh.shift)
    assert m.coef == before.coef and m.threshold_table == before.threshold_table
    # the adapted probabilities are right for this traffic (the exact posterior at its base rate)
    assert np.mean(m.predict_many(rows)) == pytest.approx(y.mean(), abs=0.02)
    t = sh.thresholds["0.95"]
    assert t["before"] == before.thresholds["0.95"] and t["after"] == m.thresholds["0.95"]
    assert t["kept_after"] < t["kept_before"]
    # the threshold is the rule's choice on the table weighted to the estimate, moved to the new scale
    table = before.threshold_table
    assert table is not None
    chosen = threshold_for_target(np.array(table.scores), np.array(table.small_right), np.array(table.large_right),
                                  0.95, 1.645, label_shift_weights(table.small_right, table.prior, sh.prior))
    assert logit(m.thresholds["0.95"]) == pytest.approx(logit(chosen) + sh.shift)
    # and the quality promise holds on this traffic, where the calibrator as fitted breaks it
    big, yb = rows_at(0.1, 40_000, 2)
    rng = np.random.default_rng(4)
    large = rng.random(len(big)) < np.where(yb, 0.9, 0.5)

    def accuracy(c: Calibration) -> float:
        keep = c.domains["math"].predict_many(big) >= c.domains["math"].thresholds["0.95"]
        return float(np.where(keep, yb, large).mean())

    assert accuracy(adapted) >= 0.95 * large.mean() > accuracy(cal)
    # nothing else moved: the code calibrator judged none of these drafts, the original is untouched
    assert adapted.domains["code"].intercept == cal.domains["code"].intercept and by["calibrated[code]"].prior is None
    assert "adapted" not in cal.meta and adapted.meta["adapted"][-1]["kind"] == "base rate from unlabelled drafts"


def test_under_a_covariate_shift_the_unshifted_mean_is_the_share_right_and_the_label_shift_estimate_is_low() -> None:
    """Traffic whose drafts look worse (the feature drawn lower) while a draft that looks like a
    calibration draft is right as often: the calibrator's own probabilities stay right, so their
    mean is the share right; the estimate that assumes label shift reads the same drafts as a
    bigger shift than there is. Both are reported, since only labels can tell the two apart."""
    cal = table_calibration()
    rng = np.random.default_rng(9)
    x = rng.normal(-0.9, 1.3, 20_000)  # at the learned base rate the feature's mean is -0.5, its sd 1.32
    y = rng.random(x.size) < 1 / (1 + np.exp(-(logit(SOURCE_PRIOR) + 2 * x)))  # the posterior the calibrator learned
    rows = [{"mean_logprob": float(v)} for v in x]
    _, shifts = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
    assert sh.mean_p is not None and sh.prior is not None and sh.prior_se is not None
    assert y.mean() < 0.2 and sh.mean_p == pytest.approx(y.mean(), abs=0.01)
    assert sh.prior < y.mean() - 0.05 and sh.prior_se < 0.01


def test_traffic_like_the_calibrations_changes_little() -> None:
    cal = table_calibration()
    rows, _ = rows_at(SOURCE_PRIOR, 3000, 5)
    adapted, shifts = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
    assert sh.prior is not None and sh.prior_se is not None and abs(sh.prior - SOURCE_PRIOR) < 3 * sh.prior_se
    assert sh.differs is False and sh.source_items == 2000
    assert abs(sh.thresholds["0.95"]["kept_after"] - sh.thresholds["0.95"]["kept_before"]) < 0.03


def test_an_adapted_calibration_adapts_again_from_its_table_not_from_its_last_shift() -> None:
    cal = table_calibration()
    rows, _ = rows_at(0.1, 3000, 6)
    once, _ = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    twice, shifts = adapt_to_unlabelled(once, rows, ["math"] * len(rows))
    assert twice.domains["math"].intercept == pytest.approx(once.domains["math"].intercept)
    # the unshifted mean is the calibrator's as learned, not as the last adaptation moved it
    sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
    learned = cal.domains["math"].predict_many(rows).mean()
    assert sh.mean_p == pytest.approx(learned) and abs(learned - once.domains["math"].predict_many(rows).mean()) > 0.05
    assert twice.domains["math"].thresholds == pytest.approx(once.domains["math"].thresholds)
    assert len(twice.meta["adapted"]) == 2


def test_what_cannot_be_adapted_is_left_as_it_was_with_the_reason() -> None:
    cal = table_calibration()
    rows, _ = rows_at(0.1, 50, 7)
    same, shifts = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
    assert sh.prior is None and "at least 100 answers" in sh.note
    assert same.domains["math"].intercept == cal.domains["math"].intercept
    # the pooled calibrator has no table: prompts of no domain cannot move it
    rows, _ = rows_at(0.1, 300, 8)
    _, shifts = adapt_to_unlabelled(cal, rows, [None] * len(rows))
    pooled = next(s for s in shifts if s.calibrator == "calibrated")
    assert pooled.prior is None and "bench report --save-calibration" in pooled.note


def _lines(n: int, prior: float, seed: int, labelled: bool = False) -> str:
    rows, y = rows_at(prior, n, seed)
    return "\n".join(json.dumps({"id": i, "answer": "Seven.", "tokens": ["Seven", "."],
                                 "logprobs": [r["mean_logprob"]] * 2, "prompt": MATH,
                                 **({"correct": bool(good)} if labelled else {})})
                     for i, (r, good) in enumerate(zip(rows, y))) + "\n"


def test_calibrate_unlabelled_writes_an_adapted_file_from_lines_without_labels(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base_path = tmp_path / "base.json"
    table_calibration().save(base_path)
    traces = tmp_path / "traffic.jsonl"
    traces.write_text(_lines(600, 0.1, 9))
    out = tmp_path / "mine.json"
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--unlabelled",
                 "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["unlabelled"] is True and result["items"] == 600
    by = {c["calibrator"]: c for c in result["calibrators"]}
    m = by["calibrated[math]"]
    assert m["drafts"] == 600 and abs(m["prior"] - 0.1) < 3 * m["prior_se"] + 0.02 and m["shift"] < 0
    adapted = Calibration.load(out)  # the table survives the file, so it can be adapted again
    assert adapted.domains["math"].thresholds["0.95"] == pytest.approx(m["thresholds"]["0.95"]["after"])
    assert adapted.domains["math"].threshold_table is not None
    # the printed form: the calibrator, the base rates, and how to use it
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--unlabelled",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    learned = Calibration.load(base_path).domains["math"].threshold_table
    assert learned is not None
    assert "calibrated[math]" in text and f"{learned.prior:.1%} → {m['prior']:.1%}" in text
    assert 'calibration = "' in text
    assert "within 2 standard errors" not in text
    # and the estimate that does not assume label shift, from the same drafts (also in the JSON)
    assert m["prior"] < m["mean_p"] < learned.prior
    assert " ".join(text.split()).count(f"unshifted, is {m['mean_p']:.1%}") == 1
    # traffic like the calibration's: it says adapting changes little
    same = tmp_path / "same.jsonl"
    same.write_text(_lines(600, SOURCE_PRIOR, 10))
    assert main(["calibrate", "--traces", str(same), "--adapt", str(base_path), "--unlabelled",
                 "--out", str(out)]) == 0
    assert "within 2 standard errors" in capsys.readouterr().out


def test_calibrate_unlabelled_refuses_what_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base_path = tmp_path / "base.json"
    table_calibration().save(base_path)
    traces = tmp_path / "traffic.jsonl"
    traces.write_text(_lines(40, 0.1, 11))
    # without --adapt there is nothing to adapt, and fitting anew needs labels
    assert main(["calibrate", "--traces", str(traces), "--unlabelled"]) == 2
    assert "--adapt BASE" in capsys.readouterr().err
    # too few answers: nothing written, and it says how many are needed
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--unlabelled",
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "at least 100 answers per calibrator" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
    # a calibration saved without its tables
    bare = Calibration.load(base_path)
    for c in (bare, *bare.domains.values()):
        c.threshold_table = None
    bare.save(tmp_path / "bare.json")
    traces.write_text(_lines(300, 0.1, 12))
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(tmp_path / "bare.json"), "--unlabelled",
                 "--out", str(tmp_path / "o.json")]) == 2
    said = capsys.readouterr().err
    assert "saved without the table" in said and "bench report --save-calibration" in said
    assert not (tmp_path / "o.json").exists()
    # without --unlabelled, lines without labels are refused as before, and the error says what would take them
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path),
                 "--out", str(tmp_path / "o.json")]) == 2
    said = capsys.readouterr().err
    assert "no boolean label" in said and "--unlabelled" in said and not (tmp_path / "o.json").exists()


def test_run_json_lines_give_the_drafters_answer_escalated_or_not(tmp_path: Path) -> None:
    # `edgecascade run --json --logprobs` lines as the engine writes them: one draft kept, one escalated
    from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.benchmarks.traces import load_labelled_traces
    from edgecascade.errors import EdgecascadeError

    rule = AcceptRule(min_confidence=0.5)
    small = ScriptedProvider([ScriptedReply("Seven apples.", logprob=-0.01), ScriptedReply("Six?", logprob=-3.0)],
                             model="small-m")
    big = ScriptedProvider([ScriptedReply("Seven.", logprob=-0.01)], model="big-m")
    cascade = Cascade([Tier("draft", small, rule), Tier("strong", big, rule)])
    results = [cascade.run_sync(MATH) for _ in range(2)]
    assert [r.tier for r in results] == ["draft", "strong"]
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(json.dumps({**r.to_dict(logprobs=True), "prompt": MATH}) for r in results) + "\n")
    drafts = load_labelled_traces(path, labelled=False, drafter="small-m")
    assert [t.answer for t in drafts] == ["Seven apples.", "Six?"] and drafts[1].logprobs == [-3.0]
    # without a drafter, a line gives the answer it returned (what a label on it is about)
    assert [t.answer for t in load_labelled_traces(path, labelled=False)] == ["Seven apples.", "Seven."]
    # and no model's answer is made up
    with pytest.raises(EdgecascadeError, match="no answer by other-m"):
        load_labelled_traces(path, labelled=False, drafter="other-m")


def test_drafts_the_calibrator_finds_all_right_or_all_wrong_leave_it_as_it_was() -> None:
    # e.g. drafts cut off far earlier than any it learned from: the maximum is at the edge, no estimate
    cal = table_calibration()
    for x in (-30.0, 30.0):
        rows = [{"mean_logprob": x}] * 150
        same, shifts = adapt_to_unlabelled(cal, rows, ["math"] * 150)
        sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
        assert sh.prior is None and "look all" in sh.note and "label a few tens" in sh.note
        assert same.domains["math"].thresholds == cal.domains["math"].thresholds
        assert same.domains["math"].intercept == cal.domains["math"].intercept


def test_a_calibration_without_quality_target_thresholds_says_so(tmp_path: Path) -> None:
    # what `calibrate --traces` writes (the shipped 1.5B calibration is one): nothing to choose again
    cal = table_calibration()
    for c in (cal, *cal.domains.values()):
        c.thresholds = {}
    rows, _ = rows_at(0.1, 300, 13)
    same, shifts = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    sh = next(s for s in shifts if s.calibrator == "calibrated[math]")
    assert sh.prior is None and "no quality_target thresholds" in sh.note and "--adapt" in sh.note
    assert same.domains["math"].intercept == cal.domains["math"].intercept


def test_adapting_without_labels_after_adapting_with_them_starts_from_the_table() -> None:
    from edgecascade.quality.adapt import adapt_calibration

    cal = table_calibration()
    rows, y = rows_at(0.1, 400, 14)
    labelled, _ = adapt_calibration(cal, rows[:200], y[:200].tolist(), ["math"] * 200)
    assert labelled.domains["math"].intercept != cal.domains["math"].intercept
    both, _ = adapt_to_unlabelled(labelled, rows, ["math"] * len(rows))
    alone, _ = adapt_to_unlabelled(cal, rows, ["math"] * len(rows))
    # the drafts are put back on the table's scale first, so the labelled step changes nothing here
    assert both.domains["math"].intercept == pytest.approx(alone.domains["math"].intercept)
    assert both.domains["math"].thresholds == pytest.approx(alone.domains["math"].thresholds)


def test_calibrate_unlabelled_takes_the_draft_of_run_json_lines_by_tier_or_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier

    rows, _ = rows_at(0.1, 150, 15)
    replies = [ScriptedReply("Seven.", logprob=r["mean_logprob"]) for r in rows]
    rule = AcceptRule(min_confidence=0.5)
    cascade = Cascade([Tier("draft", ScriptedProvider(replies, model="served-name"), rule),
                       Tier("strong", ScriptedProvider([ScriptedReply("Seven.", logprob=-0.01)] * 150,
                                                       model="big-m"), rule)])
    results = [cascade.run_sync(MATH) for _ in rows]
    assert {r.tier for r in results} == {"draft", "strong"}  # some were escalated
    lines = tmp_path / "run.jsonl"
    lines.write_text("\n".join(json.dumps({**r.to_dict(logprobs=True), "id": i, "prompt": MATH})
                               for i, r in enumerate(results)) + "\n")
    base_path = tmp_path / "base.json"
    table_calibration().save(base_path)  # its model is "m": the drafts were served as "served-name"
    out = tmp_path / "mine.json"
    assert main(["calibrate", "--traces", str(lines), "--adapt", str(base_path), "--unlabelled",
                 "--out", str(out)]) == 2
    assert "no answer by m" in capsys.readouterr().err and not out.exists()
    for drafter in ("draft", "served-name"):
        assert main(["calibrate", "--traces", str(lines), "--adapt", str(base_path), "--unlabelled",
                     "--drafter", drafter, "--out", str(out), "--json"]) == 0
        m = next(c for c in json.loads(capsys.readouterr().out)["calibrators"] if c["calibrator"] == "calibrated[math]")
        assert m["drafts"] == 150 and m["shift"] < 0  # every draft, escalated or not: harder traffic
    # labelled, the lines of two models neither of which is the base's are refused, naming --drafter;
    # with it, only the lines the drafter answered are used (a label judges the answer returned)
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("\n".join(json.dumps({**r.to_dict(logprobs=True), "id": i, "prompt": MATH,
                                              "correct": i % 3 != 0}) for i, r in enumerate(results)) + "\n")
    assert main(["calibrate", "--traces", str(labelled), "--adapt", str(base_path), "--out", str(out)]) == 2
    assert "--drafter MODEL_OR_TIER" in capsys.readouterr().err
    answered = sum(r.tier == "draft" for r in results)
    for drafter in ("draft", "served-name"):
        assert main(["calibrate", "--traces", str(labelled), "--adapt", str(base_path), "--drafter", drafter,
                     "--out", str(out), "--json"]) == 0
        m = next(c for c in json.loads(capsys.readouterr().out)["calibrators"] if c["calibrator"] == "calibrated[math]")
        assert m["items"] == answered < 150
    assert main(["calibrate", "--traces", str(labelled), "--adapt", str(base_path), "--drafter", "nobody"]) == 2
    assert "no labelled answer is by it" in capsys.readouterr().err
    # a new calibration names its model with --model
    assert main(["calibrate", "--traces", str(labelled), "--drafter", "draft"]) == 2
    assert "--drafter picks the drafting model's lines for --adapt" in capsys.readouterr().err


def test_a_calibrator_whose_probabilities_stand_for_another_rate_on_its_table_reports_no_false_shift() -> None:
    # a pooled calibrator fitted on every item but judging only prompts of no domain: on those its
    # probabilities average 40% while 30% of them were right. Traffic like those items must not read as
    # a shift: the estimate is made against the calibrator's own mean there (fitted_prior)
    rng = np.random.default_rng(16)
    x, y = draws(3000, 0.4, rng)  # drafts whose exact posterior is the calibrator's, at 40%
    cal = Calibration("m", ["mean_logprob"], [0.0], [1.0], [2.0], logit(0.4), thresholds={"0.95": 0.6})
    scores = cal.predict_many([{"mean_logprob": float(v)} for v in x[:1000]])
    small = (rng.random(1000) < 0.3).tolist()  # the table's own labels: 30% right
    table = ThresholdTable(scores.tolist(), small, (rng.random(1000) < 0.6).tolist(), cal.intercept, 1.645,
                           fitted_prior=float(scores.mean()))
    cal.threshold_table = table
    rows = [{"mean_logprob": float(v)} for v in x[1000:]]
    _, [sh] = adapt_to_unlabelled(cal, rows, [None] * len(rows))
    assert sh.prior is not None and sh.prior_se is not None and sh.shift is not None
    assert sh.source_prior == table.prior and abs(sh.prior - table.prior) < 3 * sh.prior_se
    assert abs(sh.shift) < 0.2 and sh.differs is False
    # its mean P there, 40%, stands for the table's 30%: the unshifted mean is put on that scale too
    assert sh.mean_p is not None and abs(sh.mean_p - table.prior) < 0.03 and cal.predict_many(rows).mean() > 0.37
    # against the table's own rate instead, the same drafts would read as a shift that is not there
    cal.threshold_table = replace(table, fitted_prior=None)
    _, [naive] = adapt_to_unlabelled(cal, rows, [None] * len(rows))
    assert naive.differs is True


def test_drafts_that_carry_no_information_leave_the_base_rate_as_it_was() -> None:
    """Every draft at exactly the source base rate: the likelihood is flat, and the estimate had
    been the lower edge, read as "these drafts look all wrong"."""
    est = estimate_prior(np.full(10, logit(0.25)), 0.25)
    assert est.prior == pytest.approx(0.25) and math.isinf(est.se)
    moved = estimate_prior(np.array([logit(0.25)] * 9 + [logit(0.9)]), 0.25)
    assert moved.prior > 0.25 and math.isfinite(moved.se)
