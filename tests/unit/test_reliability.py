"""`bench reliability`: the threshold study reads the calibration halves only, and counts right."""

from __future__ import annotations

import pytest
from test_policies import domain_dataset  # tests/unit is on the path (pytest rootdir import)

from edgecascade.benchmarks import reliability as rel
from edgecascade.benchmarks.reliability import Outcome, summarise, threshold_reliability

MATH = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def test_study_never_reads_the_held_out_half_and_wider_margins_keep_fewer_drafts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    g = domain_dataset("g", 300, 1, MATH, 3.0)
    held = {p[0].item_id for p in g.held_out}
    calibration = {p[0].item_id for p in g.calibration}
    seen: list[tuple[set[str], set[str], float]] = []
    real = rel.build_report

    def spy(parts, **kw):  # type: ignore[no-untyped-def]
        (d,) = parts
        seen.append(({p[0].item_id for p in d.calibration}, {p[0].item_id for p in d.held_out}, kw["margin_z"]))
        return real(parts, **kw)

    monkeypatch.setattr(rel, "build_report", spy)
    result = threshold_reliability([g], model="small", target=0.95, seed=7, margins=[0.0, 2.0], repeats=3)
    assert len(seen) == 6 and [m for *_, m in seen] == [0.0, 2.0] * 3
    for fit, judge, _ in seen:
        # each report fits on one part of the calibration half and judges on the rest of it
        assert not (fit | judge) & held and fit | judge == calibration and not fit & judge
        assert abs(len(fit) - len(judge)) <= 1
    assert seen[0][:2] == seen[1][:2] and seen[0][:2] != seen[2][:2]  # margins share splits; splits differ
    summary = result["summary"]
    assert set(summary) == {"0", "2"} and result["items"]["g"]["calibration"] == len(g.calibration)
    assert all(s["cuts"] == 3 for by_pol in summary["0"].values() for s in by_pol.values())
    assert set(summary["0"]["g"]) == set(result["policies"]) >= {"mean logprob", "cascadeflow-style", "calibrated"}
    for pol in result["policies"]:  # on the same splits a wider margin keeps no more drafts
        assert summary["2"]["g"][pol]["share_mean"] <= summary["0"]["g"][pol]["share_mean"] + 1e-12
        assert 0.0 <= summary["2"]["g"][pol]["meets_rate"] <= 1.0
    assert summary["2"]["g"]["calibrated"]["share_mean"] < summary["0"]["g"]["calibrated"]["share_mean"]
    # the same seed draws the same splits
    again = threshold_reliability([g], model="small", target=0.95, seed=7, margins=[0.0, 2.0], repeats=3)
    assert again["summary"] == result["summary"]


def test_one_cut_matches_the_report_run_on_it_by_hand() -> None:
    import math

    import numpy as np

    from edgecascade.benchmarks.report import build_report

    g = domain_dataset("g", 300, 2, MATH, 3.0)
    result = threshold_reliability([g], model="small", target=0.95, seed=11, margins=[1.0], repeats=1)
    parts = rel._resplit(g, np.random.default_rng(11))  # the cut the study drew first
    report, _ = build_report([parts], model="small", target=0.95, seed=11, command="t", margin_z=1.0)
    at = report["datasets"]["g"]["at_target"]
    rows = {p["name"]: p for p in report["datasets"]["g"]["policies"]}
    got = result["summary"]["1"]["g"]
    for pol in ("mean logprob", "calibrated"):
        assert got[pol]["share_mean"] == rows[pol]["small_share"]
        assert got[pol]["accuracy_mean"] == rows[pol]["accuracy"]
        assert got[pol]["meets_rate"] == float(rows[pol]["accuracy"] >= at["target_accuracy"] - 1e-12)
    best, orc, share = at["best_baseline_share"], at["oracle_share"], rows["calibrated"]["small_share"]
    met = rows["calibrated"]["accuracy"] >= at["target_accuracy"] - 1e-12
    closed = max(0.0, (share - best) / (orc - best)) if met and orc > best else 0.0
    assert got["calibrated"]["gap_closed_median"] == pytest.approx(closed)
    # a baseline's gap to the best baseline is not a measurement: no number, not a zero
    assert math.isnan(got["mean logprob"]["half_gap_rate"]) and math.isnan(got["mean logprob"]["gap_closed_median"])
    assert "| 1 | mean logprob |" in rel.markdown_reliability(result) and "| — |" in rel.markdown_reliability(result)


def test_summary_arithmetic_by_hand() -> None:
    rows = [Outcome(0.40, 0.60, True, 0.10, 0.30),   # met, closes (0.40-0.10)/(0.30-0.10) = 150%
            Outcome(0.20, 0.50, True, 0.10, 0.30),   # met, closes 50%
            Outcome(0.35, 0.40, False, 0.10, 0.30),  # missed: closes nothing
            Outcome(0.05, 0.60, True, 0.10, 0.30)]   # met but below the best baseline: closes nothing
    s = summarise(rows)
    assert s["meets_rate"] == 0.75
    assert s["share_mean"] == pytest.approx(0.25) and s["accuracy_mean"] == pytest.approx(0.525)
    assert s["gap_closed_median"] == pytest.approx(0.25)  # median of 1.5, 0.5, 0, 0
    assert s["half_gap_rate"] == 0.5
    # a best baseline that keeps more drafts than the oracle leaves no gap: met keeping as many closes it
    s = summarise([Outcome(0.20, 0.60, True, 0.15, 0.12), Outcome(0.14, 0.60, True, 0.15, 0.12)])
    assert s["half_gap_rate"] == 0.5 and s["gap_closed_median"] == pytest.approx(0.5)


def test_bad_arguments_are_refused() -> None:
    g = domain_dataset("g", 60, 1, MATH, 3.0)
    with pytest.raises(ValueError, match="repeats"):
        threshold_reliability([g], model="small", target=0.95, seed=7, margins=[1.0], repeats=0)
    with pytest.raises(ValueError, match="standard errors"):
        threshold_reliability([g], model="small", target=0.95, seed=7, margins=[-1.0], repeats=1)
    with pytest.raises(ValueError, match="margins must differ"):  # both would be reported as "1.645"
        threshold_reliability([g], model="small", target=0.95, seed=7, margins=[1.6449999, 1.645], repeats=1)


def test_a_cut_too_small_to_calibrate_is_a_clear_error() -> None:
    from edgecascade.errors import ConfigError

    g = domain_dataset("g", 40, 1, MATH, 3.0)
    for pair in g.calibration[: len(g.calibration) - 1]:  # all but one draft right: some cut has one kind
        pair[0] = type(pair[0])(**{**pair[0].__dict__, "correct": True})
    with pytest.raises(ConfigError, match=r"could not be calibrated: .* all \d+ drafts are right.*trace more items"):
        threshold_reliability([g], model="small", target=0.95, seed=7, margins=[1.0], repeats=5)


def test_each_cut_is_fitted_once_whatever_the_number_of_margins(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgecascade.benchmarks.report as report_mod

    g = domain_dataset("g", 300, 3, MATH, 3.0)
    fits: list[int] = []
    real = report_mod.fit_calibration

    def spy(rows, labels, **kw):  # type: ignore[no-untyped-def]
        fits.append(len(rows))
        return real(rows, labels, **kw)

    monkeypatch.setattr(report_mod, "fit_calibration", spy)
    one = threshold_reliability([g], model="small", target=0.95, seed=5, margins=[1.0], repeats=2)
    per_study = len(fits)
    fits.clear()
    three = threshold_reliability([g], model="small", target=0.95, seed=5, margins=[0.0, 1.0, 2.0], repeats=2)
    assert per_study > 0 and len(fits) == per_study  # only the thresholds depend on the margin
    assert three["summary"]["1"] == one["summary"]["1"]  # and the reused fits give the same result


def test_exactly_half_the_gap_counts_as_half() -> None:
    """(60/n - 40/n) / (80/n - 40/n) is 0.4999999999999999 in floats: a policy that closed exactly half
    the gap was counted below half (28% of such cases at n = 200, 275, 550 in a review's count)."""
    n = 200
    row = Outcome(60 / n, 0.5, True, 40 / n, 80 / n)
    assert (row.share - row.best_baseline) / (row.oracle - row.best_baseline) < 0.5  # the float it had read
    s = summarise([row])
    assert s["half_gap_rate"] == 1.0
    below = Outcome(59 / n, 0.5, True, 40 / n, 80 / n)
    assert summarise([row, below])["half_gap_rate"] == 0.5
