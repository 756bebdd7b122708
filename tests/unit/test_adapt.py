"""Adapting a calibration to new traffic: intercept shifts with a known answer, per calibrator."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgecascade.cli import main
from edgecascade.errors import EdgecascadeError
from edgecascade.quality.adapt import adapt_calibration, intercept_shift, log_loss, out_of_fold_check
from edgecascade.quality.calibration import Calibration, fit_calibration

MATH = "Tom has 3 apples and buys 4 more. How many apples does he have?"
CODE = "Complete this Python function.\n```python\ndef f(x):\n```"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def base_calibration(seed: int = 0) -> Calibration:
    """Math and code calibrators on one feature (mean_logprob), with thresholds as a report sets them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=600)
    y = rng.random(600) < _sigmoid(2 * x + np.where(np.arange(600) < 300, 0.0, 1.0))
    cal = fit_calibration([{"mean_logprob": float(v)} for v in x], [bool(v) for v in y], model="m",
                          features=["mean_logprob"], prompts=[MATH] * 300 + [CODE] * 300)
    assert set(cal.domains) == {"math", "code"}
    cal.thresholds["0.95"] = 0.5
    cal.domains["math"].thresholds["0.95"] = 0.55
    cal.domains["code"].thresholds["0.95"] = 0.6
    return cal


def traffic(cal: Calibration, domain: str, n: int, shift: float,
            seed: int) -> tuple[list[dict[str, float]], list[bool]]:
    """Drafts whose true P(correct) is the calibrator's, moved by ``shift`` logits."""
    rng = np.random.default_rng(seed)
    rows = [{"mean_logprob": float(v)} for v in rng.normal(size=n)]
    p = _sigmoid(cal.domains[domain].logits(rows) + shift)
    return rows, [bool(v) for v in rng.random(n) < p]


def test_intercept_shift_recovers_a_known_shift_and_matches_the_base_rate() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, 20000)
    y = rng.random(20000) < _sigmoid(z - 1.0)
    b, se = intercept_shift(z, y)
    assert abs(b + 1.0) < 3 * se and 0.01 < se < 0.05
    # at the maximum of the likelihood the adapted probabilities average to the share right
    assert float(_sigmoid(z + b).mean()) == pytest.approx(float(y.mean()), abs=1e-9)
    p = _sigmoid(z + b)
    assert se == pytest.approx(1 / math.sqrt(float(np.sum(p * (1 - p)))))
    with pytest.raises(ValueError, match="both right and wrong"):
        intercept_shift(z[:10], np.ones(10, dtype=bool))


def test_each_calibrator_moves_by_its_own_traffic_and_keeps_its_weights_and_thresholds(tmp_path: Path) -> None:
    base = base_calibration()
    before = json.loads(json.dumps({"math": base.domains["math"].intercept, "code": base.domains["code"].intercept,
                                    "pooled": base.intercept}))
    m_rows, m_y = traffic(base, "math", 3000, -1.2, 2)
    c_rows, c_y = traffic(base, "code", 3000, 0.8, 3)
    adapted, shifts = adapt_calibration(base, m_rows + c_rows, m_y + c_y, ["math"] * 3000 + ["code"] * 3000,
                                        meta={"traces": "t.jsonl"})
    by = {s.calibrator: s for s in shifts}
    assert set(by) == {"calibrated", "calibrated[math]", "calibrated[code]"}
    for label, truth in (("calibrated[math]", -1.2), ("calibrated[code]", 0.8)):
        s = by[label]
        assert s.items == 3000 and s.shift is not None and s.se is not None
        assert abs(s.shift - truth) < 3 * s.se, (label, s.shift)
    assert by["calibrated"].shift is None and "0 labelled drafts" in by["calibrated"].note
    for key in ("math", "code"):
        new, old = adapted.domains[key], base.domains[key]
        assert new.intercept == pytest.approx(old.intercept + by[f"calibrated[{key}]"].shift)
        assert (new.coef, new.mean, new.scale, new.thresholds) == (old.coef, old.mean, old.scale, old.thresholds)
    assert adapted.intercept == base.intercept and adapted.thresholds == base.thresholds
    # the base is not touched
    assert {"math": base.domains["math"].intercept, "code": base.domains["code"].intercept,
            "pooled": base.intercept} == before
    [record] = adapted.meta["adapted"]
    assert record["traces"] == "t.jsonl" and len(record["calibrators"]) == 3
    # it saves and loads as any calibration does, and judges as adapted
    path = tmp_path / "a.json"
    adapted.save(path)
    loaded = Calibration.load(path)
    some = m_rows[:50]
    assert np.allclose(loaded.predict_each(some, ["math"] * 50), adapted.predict_each(some, ["math"] * 50))
    assert loaded.for_domain("math").threshold_for(0.95) == 0.55


def test_a_calibrator_with_too_few_labels_or_one_kind_is_left_as_it_was() -> None:
    base = base_calibration()
    m_rows, m_y = traffic(base, "math", 19, -1.0, 4)
    c_rows = [{"mean_logprob": 0.1 * i} for i in range(25)]
    adapted, shifts = adapt_calibration(base, m_rows + c_rows, m_y + [True] * 25, ["math"] * 19 + ["code"] * 25)
    by = {s.calibrator: s for s in shifts}
    assert by["calibrated[math]"].shift is None and "19 labelled drafts, fewer than 20" in by["calibrated[math]"].note
    assert by["calibrated[code]"].shift is None and "all 25 labelled drafts are right" in by["calibrated[code]"].note
    assert adapted.domains["math"].intercept == base.domains["math"].intercept
    assert adapted.domains["code"].intercept == base.domains["code"].intercept


def test_prompts_of_no_domain_move_the_pooled_calibrator() -> None:
    base = base_calibration()
    rng = np.random.default_rng(10)
    rows = [{"mean_logprob": float(v)} for v in rng.normal(size=2000)]
    y = [bool(v) for v in rng.random(2000) < _sigmoid(base.logits(rows) + 1.0)]
    adapted, shifts = adapt_calibration(base, rows, y, [None] * 2000)
    pooled = next(s for s in shifts if s.calibrator == "calibrated")
    assert pooled.shift is not None and pooled.se is not None and abs(pooled.shift - 1.0) < 3 * pooled.se
    assert adapted.intercept == pytest.approx(base.intercept + pooled.shift)
    assert adapted.domains["math"].intercept == base.domains["math"].intercept


def test_a_shift_the_labels_barely_inform_is_not_applied() -> None:
    base = base_calibration()
    # drafts the math calibrator is all but certain about, and right about each: any shift of a few
    # logits fits them as well, so the labels say next to nothing about it
    rows = [{"mean_logprob": 20.0}] * 15 + [{"mean_logprob": -20.0}] * 15
    assert np.all(np.abs(base.domains["math"].logits(rows)) > 20)
    adapted, shifts = adapt_calibration(base, rows, [True] * 15 + [False] * 15, ["math"] * 30)
    s = next(s for s in shifts if s.calibrator == "calibrated[math]")
    assert s.shift is None and "barely inform" in s.note
    assert adapted.domains["math"].intercept == base.domains["math"].intercept
    with pytest.raises(ValueError, match="finite"):
        intercept_shift(np.array([0.0, np.nan, 1.0]), np.array([True, False, True]))


def test_at_the_minimum_of_labels_the_out_of_fold_check_still_shows_the_change() -> None:
    base = base_calibration()
    rows, y = traffic(base, "math", 20, -2.0, 11)
    whole, shifts = adapt_calibration(base, rows, y, ["math"] * 20)
    assert next(s for s in shifts if s.calibrator == "calibrated[math]").shift is not None
    [check] = [c for c in out_of_fold_check(base, rows, y, ["math"] * 20, seed=0) if c.calibrator == "calibrated[math]"]
    assert not np.allclose(check.after, check.before)  # each fold (16 labels) is adapted too


def test_a_calibrator_the_whole_file_leaves_as_it_was_shows_no_change_out_of_fold() -> None:
    """19 labels leave a calibrator unadapted (under 20), yet folds of 15 or 16 against the scaled
    minimum of 16 adapted it in one fold: `calibrate --adapt` showed a change for a calibrator whose
    adapted file was the base's."""
    base = base_calibration()
    rows, y = traffic(base, "math", 19, -2.0, 11)
    _, shifts = adapt_calibration(base, rows, y, ["math"] * 19)
    assert next(s for s in shifts if s.calibrator == "calibrated[math]").shift is None
    for seed in range(6):
        [check] = [c for c in out_of_fold_check(base, rows, y, ["math"] * 19, seed=seed)
                   if c.calibrator == "calibrated[math]"]
        assert np.array_equal(check.after, check.before), seed


def test_a_small_calibrator_beside_a_big_one_is_adapted_in_every_fold() -> None:
    """Folds drawn over all drafts at once left the 20 math drafts beside 100 others with fewer than
    the 16 a fold needs in some folds' parts (14, 12...), and those drafts unadapted: the evidence
    `calibrate --adapt` prints understated what adapting does."""
    base = base_calibration()
    m_rows, m_y = traffic(base, "math", 20, -2.0, 11)
    rng = np.random.default_rng(12)
    p_rows = [{"mean_logprob": float(v)} for v in rng.normal(size=100)]
    p_y = [bool(v) for v in rng.random(100) < _sigmoid(base.logits(p_rows) - 2.0)]
    rows, y, domains = m_rows + p_rows, m_y + p_y, ["math"] * 20 + [None] * 100
    _, shifts = adapt_calibration(base, rows, y, domains)
    assert all(s.shift is not None for s in shifts if s.calibrator in ("calibrated", "calibrated[math]"))
    for seed in range(4):
        by = {c.calibrator: c for c in out_of_fold_check(base, rows, y, domains, seed=seed)}
        for name in ("calibrated[math]", "calibrated"):
            assert not np.isclose(by[name].after, by[name].before).any(), (seed, name)


def test_the_out_of_fold_check_scores_each_draft_by_an_adaptation_fitted_without_it() -> None:
    base = base_calibration()
    rows, y = traffic(base, "math", 400, -1.5, 5)
    [check] = [c for c in out_of_fold_check(base, rows, y, ["math"] * 400, seed=0)
               if c.calibrator == "calibrated[math]"]
    assert np.array_equal(check.before, base.domains["math"].predict_many(rows))
    # on shifted traffic the adapted probabilities fit better, and their mean comes near the share right
    assert log_loss(check.after, check.labels) < log_loss(check.before, check.labels) - 0.02
    assert abs(check.after.mean() - check.labels.mean()) < abs(check.before.mean() - check.labels.mean()) / 3
    # out of fold, not in sample: no draft is scored by the shift its own label helped fit
    whole, _ = adapt_calibration(base, rows, y, ["math"] * 400)
    assert not np.allclose(check.after, whole.domains["math"].predict_many(rows))
    assert check.thresholds == {"0.95": 0.55}
    # on traffic the calibrator already matches, the shift is within noise of nothing
    same_rows, same_y = traffic(base, "math", 2000, 0.0, 6)
    _, shifts = adapt_calibration(base, same_rows, same_y, ["math"] * 2000)
    s = next(s for s in shifts if s.calibrator == "calibrated[math]")
    assert s.shift is not None and s.se is not None and abs(s.shift) < 3 * s.se


def _lines(base: Calibration, n: int, shift: float, seed: int) -> list[dict[str, object]]:
    rows, y = traffic(base, "math", n, shift, seed)
    return [{"id": i, "answer": "Seven.", "tokens": ["Seven", "."], "logprobs": [r["mean_logprob"]] * 2,
             "correct": good, "prompt": MATH} for i, (r, good) in enumerate(zip(rows, y))]


def _base_and_traces(tmp_path: Path) -> tuple[Calibration, Path, Path]:
    """A saved base calibration, and 300 labelled lines of harder traffic (-1.5 logits) beside it."""
    base = base_calibration()
    base_path = tmp_path / "base.json"
    base.save(base_path)
    traces = tmp_path / "mine.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in _lines(base, 300, -1.5, 7)) + "\n")
    return base, base_path, traces


def test_calibrate_adapt_writes_an_adapted_file_and_shows_out_of_fold_evidence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, base_path, traces = _base_and_traces(tmp_path)
    out = tmp_path / "mine.adapted.json"
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    by = {c["calibrator"]: c for c in result["calibrators"]}
    math_entry = by["calibrated[math]"]
    assert math_entry["items"] == 300 and abs(math_entry["shift"] + 1.5) < 3 * math_entry["shift_se"]
    oof = math_entry["out_of_fold"]
    assert oof["log_loss_after"] < oof["log_loss_before"]
    assert set(oof["at_thresholds"]) == {"0.95"} and oof["at_thresholds"]["0.95"]["after_kept"] < \
        oof["at_thresholds"]["0.95"]["before_kept"]  # probabilities fell, so fewer drafts clear 0.55
    adapted = Calibration.load(out)
    assert adapted.domains["math"].intercept == pytest.approx(base.domains["math"].intercept + math_entry["shift"])
    [record] = adapted.meta["adapted"]
    assert record["from"] == str(base_path) and record["items"] == 300
    # the printed form names the calibrator (not eaten as markup) and the evidence
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "calibrated[math]" in text and "out-of-fold" in text and 'calibration = "' in text
    assert "within 2 standard errors" not in text  # a shift of -1.5 logits on 300 labels is no noise
    assert "predicts these answers worse" not in text
    # on traffic the calibrator already matches, it says the shift is noise
    same = tmp_path / "same.jsonl"
    same.write_text("\n".join(json.dumps(x) for x in _lines(base, 300, 0.0, 13)) + "\n")
    assert main(["calibrate", "--traces", str(same), "--adapt", str(base_path), "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "within 2 standard errors of none" in text
    # ... and here adapting fits the answers worse out of fold: it says to keep the base
    assert main(["calibrate", "--traces", str(same), "--adapt", str(base_path), "--out", str(out), "--json"]) == 0
    oof = next(c for c in json.loads(capsys.readouterr().out)["calibrators"]
               if c["calibrator"] == "calibrated[math]")["out_of_fold"]
    assert oof["log_loss_after"] > oof["log_loss_before"]
    assert f"calibrated[math]: adapted, it predicts these answers worse out of fold (log loss " \
           f"{oof['log_loss_before']:.3f} → {oof['log_loss_after']:.3f}): on this evidence keep the base" in text


def test_calibrate_adapt_refuses_what_would_lose_or_mislabel_something(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = base_calibration()
    base_path = tmp_path / "base.json"
    base.save(base_path)
    kept = base_path.read_text()
    traces = tmp_path / "mine.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in _lines(base, 100, -1.0, 8)) + "\n")
    # writing over the base would lose it
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--out", str(base_path)]) == 2
    assert "--out is the base calibration" in capsys.readouterr().err and base_path.read_text() == kept
    # an adapted calibration keeps its base's model
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--model", "x"]) == 2
    assert "leave --model out" in capsys.readouterr().err
    # too few labels: nothing written, and it says how many are needed
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(json.dumps(x) for x in _lines(base, 10, -1.0, 9)) + "\n")
    assert main(["calibrate", "--traces", str(few), "--adapt", str(base_path), "--out", str(tmp_path / "o.json")]) == 2
    assert "at least 20 per calibrator" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
    # a missing base says how to make one
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(tmp_path / "none.json")]) == 2
    assert "no calibration file there" in capsys.readouterr().err
    # a base that uses the cross-check is not adapted to lines that carry none
    checked = replace(base, features=[*base.features, "cross_check_agrees"], mean=[*base.mean, 0.0],
                      scale=[*base.scale, 1.0], coef=[*base.coef, 1.0])
    checked.save(tmp_path / "checked.json")
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(tmp_path / "checked.json"),
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "no line carries one" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
    # by default it writes beside the traces, not where a plain `calibrate` of them writes
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"] == str(tmp_path / "mine.adapted.calibration.json")
    # an adapted calibration adapted again keeps the record of both
    again = tmp_path / "again.json"
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(tmp_path / "mine.adapted.calibration.json"),
                 "--out", str(again), "--json"]) == 0
    capsys.readouterr()
    assert [r["from"] for r in Calibration.load(again).meta["adapted"]] == [
        str(base_path), str(tmp_path / "mine.adapted.calibration.json")]



def test_the_check_summary_against_a_hand_computed_example() -> None:
    from edgecascade.quality.adapt import AdaptCheck

    check = AdaptCheck("calibrated[math]", labels=np.array([True, False, False, True]),
                       before=np.array([0.9, 0.8, 0.6, 0.2]), after=np.array([0.7, 0.4, 0.3, 0.1]),
                       thresholds={"0.95": 0.5, "0.9": 0.95})
    s = check.summary()
    assert s["mean_p_before"] == pytest.approx(0.625) and s["mean_p_after"] == pytest.approx(0.375)
    assert s["right_share"] == 0.5
    assert s["log_loss_before"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.4, 0.2])))
    # at 0.5: before keeps 3 of 4 (1 right), after keeps 1 (right)
    assert s["at_thresholds"]["0.95"] == pytest.approx({"before_kept": 0.75, "before_accuracy": 1 / 3,
                                                        "after_kept": 0.25, "after_accuracy": 1.0})
    at = s["at_thresholds"]["0.9"]  # nothing clears 0.95: no accuracy to report
    assert at["before_kept"] == 0.0 and math.isnan(at["before_accuracy"]) and math.isnan(at["after_accuracy"])


def test_labelled_lines_carry_their_cross_check_to_adapting(tmp_path: Path) -> None:
    from edgecascade.benchmarks.traces import load_labelled_traces
    from edgecascade.cli.adapt import labelled_rows

    answer = {"content": "3 * 4 = 12. The answer is 12.", "tokens": {"prompt": 5, "completion": 2},
              "logprobs": {"tokens": ["The answer is ", "12."], "logprobs": [-0.1, -0.2], "top": []}}
    lines = [
        # a `run --json --logprobs` line of a config with cross_check = true, labelled
        {"id": "a", "prompt": MATH, "correct": True, "attempts": [{**answer, "cross_check": {"result": 12.0}}]},
        {"id": "b", "prompt": MATH, "correct": False, "attempts": [{**answer, "cross_check": {"result": 10.0}}]},
        # a plain record: the program gave no number
        {"id": "c", "prompt": MATH, "answer": "The answer is 12.", "tokens": ["x"], "logprobs": [-0.1],
         "correct": True, "cross_check_result": None},
        # no cross-check made (a chat prompt, or a config without it): neutral, as in fitting
        {"id": "d", "prompt": MATH, "answer": "The answer is 12.", "tokens": ["x"], "logprobs": [-0.1],
         "correct": True},
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    prompts: dict[str, str] = {}
    checks: dict[str, float | None] = {}
    traces = load_labelled_traces(path, prompts, checks)
    assert checks == {"a": 12.0, "b": 10.0, "c": None}
    rows = {t.item_id: r for t, r in zip(traces, labelled_rows(traces, prompts, checks, False))}
    assert (rows["a"]["cross_checked"], rows["a"]["cross_check_agrees"]) == (1.0, 1.0)
    assert (rows["b"]["cross_checked"], rows["b"]["cross_check_agrees"]) == (1.0, 0.0)
    assert (rows["c"]["cross_checked"], rows["c"]["cross_check_agrees"]) == (0.0, 0.0)
    assert (rows["d"]["cross_checked"], rows["d"]["cross_check_agrees"]) == (0.0, 0.0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**lines[2], "cross_check_result": "twelve"}) + "\n")
    with pytest.raises(EdgecascadeError, match="cross_check_result"):
        load_labelled_traces(bad, {}, {})


def test_calibrate_adapts_a_cross_check_base_to_lines_that_carry_it(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.benchmarks.traces import load_labelled_traces
    from edgecascade.cli.adapt import labelled_rows

    base = base_calibration()

    def with_check(c: Calibration) -> Calibration:
        return replace(c, features=[*c.features, "cross_check_agrees"], mean=[*c.mean, 0.0], scale=[*c.scale, 1.0],
                       coef=[*c.coef, 2.0])

    checked = replace(with_check(base), domains={k: with_check(v) for k, v in base.domains.items()})
    checked.save(tmp_path / "checked.json")
    # answers that state 7; a third of their programs disagree
    lines = [{**x, "answer": "The answer is 7.", "tokens": ["The answer is ", "7."], "logprobs": x["logprobs"],
              "cross_check_result": 7.0 if i % 3 else 1.0} for i, x in enumerate(_lines(base, 100, -1.0, 8))]
    lines.append({**lines[0], "id": "unchecked"})
    del lines[-1]["cross_check_result"]
    traces = tmp_path / "mine.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "o.json"
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(tmp_path / "checked.json"), "--out", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert "1 math lines carry no cross-check" in captured.err  # left out, not read as a failed program
    adapted = Calibration.load(out)
    assert adapted.runs_cross_check and adapted.meta["adapted"][0]["items"] == 100
    # the shift is the one fitted on each line's own cross-check, not on neutral features
    prompts: dict[str, str] = {}
    checks: dict[str, float | None] = {}
    kept = [t for t in load_labelled_traces(traces, prompts, checks) if t.item_id != "unchecked"]
    y = [t.correct for t in kept]
    with_cc, _ = adapt_calibration(checked, labelled_rows(kept, prompts, checks, False), y, ["math"] * len(kept))
    without, _ = adapt_calibration(checked, labelled_rows(kept, prompts, {}, False), y, ["math"] * len(kept))
    assert adapted.domains["math"].intercept == pytest.approx(with_cc.domains["math"].intercept)
    assert abs(with_cc.domains["math"].intercept - without.domains["math"].intercept) > 0.1


def test_calibrate_adapt_leaves_out_the_larger_models_answers_of_an_escalating_cascade(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Labelled `run --json` lines of a 0.5B -> 1.5B cascade are mostly escalated answers, by the
    1.5B: adapting on all of them only warned, and taught the drafter's calibrator the larger model's
    accuracy (a shift of -0.01 where the drafter's own 26 answers gave -0.87)."""
    base = base_calibration()
    base_path = tmp_path / "base.json"
    base.save(base_path)
    own = [{**x, "model": "m"} for x in _lines(base, 200, -1.5, 7)]
    escalated = [{**x, "id": f"e{x['id']}", "model": "big", "correct": True} for x in _lines(base, 200, 0.0, 8)]
    traces = tmp_path / "mixed.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in own + escalated) + "\n")
    out = tmp_path / "o.json"
    assert main(["calibrate", "--traces", str(traces), "--adapt", str(base_path), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "adapting on m's 200 answers; 200 by big" in " ".join(captured.err.split())
    math_entry = next(c for c in json.loads(captured.out)["calibrators"] if c["calibrator"] == "calibrated[math]")
    assert math_entry["items"] == 200 and abs(math_entry["shift"] + 1.5) < 3 * math_entry["shift_se"]
    # answers of two models, neither the base's: refused
    two = tmp_path / "two.jsonl"
    two.write_text("\n".join(json.dumps({**x, "model": "a" if i % 2 else "b"})
                             for i, x in enumerate(own)) + "\n")
    assert main(["calibrate", "--traces", str(two), "--adapt", str(base_path), "--out", str(out)]) == 2
    assert "none from m" in capsys.readouterr().err


def test_calibrate_never_writes_its_calibration_over_a_file_it_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--out` naming the --traces file replaced the labelled answers with the calibration."""
    _, base_path, traces = _base_and_traces(tmp_path)
    kept = traces.read_bytes()
    for extra in ([], ["--adapt", str(base_path)]):
        assert main(["calibrate", "--traces", str(traces), "--out", str(traces), *extra]) == 2
        assert "a file this command reads" in capsys.readouterr().err
        assert traces.read_bytes() == kept
    assert main(["calibrate", "--traces", str(traces), "--out", str(tmp_path / "." / "mine.jsonl")]) == 2
    assert traces.read_bytes() == kept
