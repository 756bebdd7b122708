"""`edgecascade bench reliability`: how often does a threshold chosen for a quality target hold?

A threshold is chosen where the calibration items *just* meet the target (less a safety margin),
so whether it holds on other data is a matter of chance: one held-out half gives one draw. This
module draws many, from the items a report fits on alone (the calibration halves; with
``--fresh-from``, the first N items): it splits each dataset's calibration items at random into
two parts, runs the whole report on them (fit and choose on one part, judge on the other) and
counts, per safety margin, how often each policy met the target and how many drafts it kept.
What a report judges is never read, so a margin chosen from this study is not tuned on it.

Each part is half the calibration items. The margin is counted in standard errors, and the two
parts are as equal as the real split's halves, so a meet rate should carry over to full size
roughly (not exactly: at full size the threshold is chosen among more candidates); the kept shares
are noisier than at full size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, OneKindError
from .report import BASELINE_SCORES, DatasetPairs, DraftFeatures, build_report

#: what the reliability rows print where a number does not apply (a baseline's gap to itself)
_NA = "—"


@dataclass(frozen=True)
class Outcome:
    """One policy on one resampled split."""

    share: float  # drafts kept on the judging part
    accuracy: float
    meets: bool  # met the target on the judging part
    best_baseline: float  # share of the best baseline that met the target on that part (0: none)
    oracle: float  # share of drafts that were right on that part


def _resplit(d: DatasetPairs, rng: np.random.Generator) -> DatasetPairs:
    """The calibration half of ``d`` cut at random into a fitting part and a judging part."""
    order = rng.permutation(len(d.calibration))
    half = len(order) // 2
    return DatasetPairs(d.name, [d.calibration[i] for i in order[:half]],
                        [d.calibration[i] for i in order[half:]], d.prompts, cross_checks=d.cross_checks)


def check_margins_differ(margins: Sequence[float]) -> None:
    """Results are keyed by each margin as printed, so two margins that print alike would overwrite
    each other: a ValueError that names them."""
    if len({f"{m:g}" for m in margins}) < len(margins):
        raise ValueError(f"margins must differ as printed; these do not: {' '.join(f'{m:g}' for m in margins)}")


def threshold_reliability(datasets: Sequence[DatasetPairs], *, model: str, target: float, seed: int,
                          margins: Sequence[float], repeats: int, run_examples: bool = False,
                          advance: Callable[[], None] | None = None) -> dict[str, Any]:
    """Per margin, dataset and policy, the outcomes on ``repeats`` random splits of the calibration
    halves (the held-out halves are not touched). Every margin sees the same splits, so margins
    differ by margin, not by luck. ``advance`` is called after each report (for a progress bar)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if any(m < 0 or not math.isfinite(m) for m in margins):
        raise ValueError("a margin is a number of standard errors, 0 or more")
    check_margins_differ(margins)
    calibration_only = [DatasetPairs(d.name, d.calibration, [], d.prompts, cross_checks=d.cross_checks)
                        for d in datasets]
    features = DraftFeatures(calibration_only, run_examples)
    rng = np.random.default_rng(seed)
    outcomes: dict[float, dict[str, dict[str, list[Outcome]]]] = {m: {} for m in margins}
    policies: dict[str, None] = {}  # every policy any cut reported, in order (the router may be left out of some)
    for _ in range(repeats):
        parts = [_resplit(d, rng) for d in datasets]
        fits: dict[str, Any] = {}  # the calibrators of this cut: only the thresholds depend on the margin
        for m in margins:
            try:
                report, _ = build_report(parts, model=model, target=target, seed=seed, command="bench reliability",
                                         run_examples=run_examples, margin_z=m, features=features, detail=False,
                                         fits=fits)
            except OneKindError as e:  # a cut with only right (or only wrong) drafts to fit on
                sizes = ", ".join(f"{d.name} {len(d.calibration)}" for d in datasets)
                raise ConfigError(f"a random cut of the calibration halves ({sizes} items) could not be "
                                  f"calibrated: {e}. A reliability study cuts each half in two: trace more "
                                  "items") from None
            reported = [*BASELINE_SCORES, *report["variants"], *report["experiments"]]
            policies.update(dict.fromkeys(reported))
            for name, entry in report["datasets"].items():
                at = entry["at_target"]
                rows = {p["name"]: p for p in entry["policies"]}
                for pol in reported:
                    r = rows[pol]
                    outcomes[m].setdefault(name, {}).setdefault(pol, []).append(Outcome(
                        r["small_share"], r["accuracy"], r["accuracy"] >= at["target_accuracy"] - 1e-12,
                        at["best_baseline_share"], at["oracle_share"]))
            if advance is not None:
                advance()
    return {"model": model, "target": target, "seed": seed, "repeats": repeats, "margins": list(margins),
            "policies": list(policies),
            "items": {d.name: {"calibration": len(d.calibration), "fit_part": len(d.calibration) // 2,
                               "judge_part": len(d.calibration) - len(d.calibration) // 2} for d in datasets},
            "summary": {f"{m:g}": {name: {pol: summarise(rows, baseline=pol in BASELINE_SCORES)
                                          for pol, rows in by_pol.items()}
                                   for name, by_pol in by_name.items()} for m, by_name in outcomes.items()}}


def summarise(rows: Sequence[Outcome], *, baseline: bool = False) -> dict[str, float]:
    """How often the policy met the target, the drafts it kept, and the share of the gap from the
    best baseline to the oracle it closed: a split where it missed the target, or kept fewer drafts
    than the best baseline, closes none (its share was bought with accuracy, or lost). Where the best
    baseline keeps as many drafts as the oracle or more (it spent the accuracy budget on wrong drafts)
    there is no gap: a policy that met the target keeping at least as many closes it all, as the
    study scripts read it. For a ``baseline`` the gap is to itself, so those two numbers are NaN (not
    measured, not zero)."""
    share = np.array([r.share for r in rows])

    def closed(r: Outcome) -> float:
        if not r.meets:
            return 0.0
        if r.oracle <= r.best_baseline:
            return 1.0 if r.share >= r.best_baseline else 0.0
        return max(0.0, (r.share - r.best_baseline) / (r.oracle - r.best_baseline))

    gaps = [closed(r) for r in rows]
    return {"meets_rate": float(np.mean([r.meets for r in rows])), "share_mean": float(share.mean()),
            "share_p10": float(np.percentile(share, 10)), "share_p90": float(np.percentile(share, 90)),
            "accuracy_mean": float(np.mean([r.accuracy for r in rows])),
            "cuts": len(rows),  # fewer than the repeats where a cut left the policy out
            "gap_closed_median": math.nan if baseline else float(np.median(gaps)),
            "half_gap_rate": math.nan if baseline else float(np.mean([g >= 0.5 - 1e-12 for g in gaps]))}


def _pct(x: float | None) -> str:
    return _NA if x is None or not math.isfinite(x) else f"{x:.0%}"


def _named(policy: str, result: dict[str, Any], dataset: str) -> str:
    """A policy's name, with how many cuts it was judged on where some cut left it out."""
    cuts = result["summary"][f"{result['margins'][0]:g}"][dataset][policy]["cuts"]
    return policy if cuts == result["repeats"] else f"{policy} ({cuts} of {result['repeats']} cuts)"


def print_reliability(result: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    for name, n in result["items"].items():
        t = Table(title=f"{name}: {result['repeats']} random splits of the {n['calibration']} items a report "
                  f"fits on ({n['fit_part']} "
                  f"to fit and choose, {n['judge_part']} to judge); target {result['target']:.0%} of the large "
                  "model's accuracy", caption="per margin (standard errors): how often the policy met the target; "
                  "drafts it kept (mean); how often it closed at least half the gap from the best baseline "
                  "to the oracle")
        t.add_column("policy")
        for m in result["margins"]:
            t.add_column(f"margin {m:g}", justify="right")
        for pol in result["policies"]:
            cells = []
            for m in result["margins"]:
                s = result["summary"][f"{m:g}"][name][pol]
                cells.append(f"met {s['meets_rate']:.0%}\nkept {s['share_mean']:.0%}\n"
                             f"≥½ gap {_pct(s['half_gap_rate'])}")
            t.add_row(_named(pol, result, name), *cells)
        console.print(t)
    console.print("Only the items a report fits on were read. Each cut's parts are half their size: meet rates "
                  f"carry over roughly, kept shares are noisier. A missed target closes no gap; {_NA}: a baseline.")


def markdown_reliability(result: dict[str, Any], policies: Sequence[str] | None = None) -> str:
    """The study as Markdown tables (``policies``: which rows, default all)."""
    lines: list[str] = []
    for name, n in result["items"].items():
        lines += [f"*{name}*: {result['repeats']} random splits of the {n['calibration']} items a report fits on "
                  f"({n['fit_part']} to fit and choose, {n['judge_part']} to judge).", "",
                  "| margin (SE) | policy | met the target | drafts kept (mean, p10–p90) "
                  "| closed ≥ half the gap to the oracle |",
                  "| --- | --- | --- | --- | --- |"]
        for m in result["margins"]:
            for pol in policies or result["policies"]:
                s = result["summary"][f"{m:g}"][name][pol]
                lines.append(f"| {m:g} | {_named(pol, result, name)} | {s['meets_rate']:.0%} | {s['share_mean']:.1%} "
                             f"({s['share_p10']:.0%}–{s['share_p90']:.0%}) | {_pct(s['half_gap_rate'])} |")
        lines.append("")
    return "\n".join(lines)
