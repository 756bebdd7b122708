"""`edgecascade bench report`: calibrate on one split, judge every policy on the other.

Discipline: items are split once, by a fixed seed, into a calibration half and a held-out half.
Everything that is learned or chosen (the calibrator's weights, every policy's threshold) sees only
the calibration half; every number reported is measured on the held-out half.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..quality.calibration import (
    EXAMPLE_FEATURES,
    FEATURE_NAMES,
    Calibration,
    auroc,
    draft_features,
    expected_calibration_error,
    fit_calibration,
)
from .policies import (
    PolicyResult,
    always_large,
    always_small,
    cascadeflow_score,
    choose_threshold,
    curve,
    mean_logprob_score,
    oracle,
    oracle_share_at_target,
    random_routing,
    threshold_policy,
)
from .traces import Trace

DEFAULT_SEED = 20261125


def split_ids(ids: Sequence[str], seed: int = DEFAULT_SEED,
              calibration_share: float = 0.5) -> tuple[set[str], set[str]]:
    """(calibration ids, held-out ids). Each item's side is a hash of (seed, its id), so it never
    changes as more items are traced: a resumed benchmark never moves an item across the split."""
    cal = set()
    for i in ids:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") / 2**64
        if h < calibration_share:
            cal.add(i)
    return cal, set(ids) - cal


@dataclass
class DatasetPairs:
    name: str
    calibration: list[list[Trace]]
    held_out: list[list[Trace]]
    #: item id -> the prompt the tiers were asked (for the prompt-examples features)
    prompts: dict[str, str] = field(default_factory=dict)


def max_random_share(pairs: Sequence[Sequence[Trace]], target: float) -> float:
    """The largest share random routing can keep while its expected accuracy meets the target."""
    s, lg = always_small(pairs).accuracy, always_large(pairs).accuracy
    goal = target * lg
    if s >= goal:
        return 1.0
    return max(0.0, (lg - goal) / (lg - s)) if lg > s else 0.0


class _Features:
    """Each small-model trace's calibration features, computed once (running a prompt's examples
    against a draft starts a process)."""

    def __init__(self, datasets: Sequence[DatasetPairs], run_examples: bool):
        # keyed like the traces (a .jsonl dataset's traces carry its file stem, whatever name it was given by)
        self.prompts = {(p[0].dataset, p[0].item_id): d.prompts[p[0].item_id]
                        for d in datasets for p in (*d.calibration, *d.held_out) if p[0].item_id in d.prompts}
        self.run_examples = run_examples
        self._cache: dict[tuple[str, str], dict[str, float]] = {}

    def __call__(self, t: Trace) -> dict[str, float]:
        key = (t.dataset, t.item_id)
        if key not in self._cache:
            self._cache[key] = draft_features(t.completion(), prompt=self.prompts.get(key),
                                              run_examples=self.run_examples)
        return self._cache[key]


def _random_at_target(d: DatasetPairs, target: float) -> float:
    """Random routing's share chosen on the calibration half; counted only if it meets the target on held-out."""
    share = max_random_share(d.calibration, target)
    held = random_routing(d.held_out, share)
    return share if held.accuracy >= target * always_large(d.held_out).accuracy - 1e-12 else 0.0


def _scores(cal: Calibration, pairs: Sequence[Sequence[Trace]], feats: _Features) -> dict[str, np.ndarray]:
    small = [p[0] for p in pairs]
    return {
        "calibrated": cal.predict_many([feats(t) for t in small]),
        "mean logprob": np.array([mean_logprob_score(t) for t in small]),
        "cascadeflow-style": np.array([cascadeflow_score(t) for t in small]),
    }


def build_report(datasets: Sequence[DatasetPairs], *, model: str, target: float, seed: int,
                 command: str, run_examples: bool = False) -> tuple[dict[str, Any], Calibration]:
    """Fit one calibrator for the small model on every dataset's calibration half, then evaluate."""
    feats = _Features(datasets, run_examples)
    cal_small = [p[0] for d in datasets for p in d.calibration]
    names = FEATURE_NAMES + (EXAMPLE_FEATURES if run_examples else ())
    calibration = fit_calibration(
        [feats(t) for t in cal_small], [t.correct for t in cal_small], model=model, seed=seed, features=names,
        meta={
            "command": command, "date": _dt.date.today().isoformat(), "seed": seed,
            "data": {d.name: {"calibration_items": len(d.calibration), "held_out_items": len(d.held_out)}
                     for d in datasets},
            "target": target,
            "run_examples": run_examples,
        },
    )
    # the threshold a deployed cascade uses: chosen on the pooled calibration halves
    pooled = [p for d in datasets for p in d.calibration]
    calibration.thresholds[f"{target:g}"] = choose_threshold(
        pooled, _scores(calibration, pooled, feats)["calibrated"], target)
    out: dict[str, Any] = {"model": model, "target": target, "seed": seed, "command": command, "datasets": {}}
    for d in datasets:
        cal_scores, held_scores = _scores(calibration, d.calibration, feats), _scores(calibration, d.held_out, feats)
        labels = [p[0].correct for p in d.held_out]
        policies: list[PolicyResult] = [always_small(d.held_out), always_large(d.held_out)]
        chosen: dict[str, float] = {}
        for name in ("mean logprob", "cascadeflow-style", "calibrated"):
            t = choose_threshold(d.calibration, cal_scores[name], target)
            chosen[name] = t
            policies.append(threshold_policy(name, d.held_out, held_scores[name], t))
        cal_policy = policies[-1]
        deployed_t = calibration.thresholds[f"{target:g}"]
        deployed = threshold_policy("calibrated, deployed threshold", d.held_out, held_scores["calibrated"],
                                    deployed_t)
        policies.append(random_routing(d.held_out, cal_policy.small_share))
        policies.append(oracle(d.held_out))
        policies.append(deployed)  # what `quality_target` in a config does: one threshold for all traffic
        large_acc = always_large(d.held_out).accuracy
        baseline_shares = {
            "mean logprob": policies[2].small_share if policies[2].accuracy >= target * large_acc - 1e-12 else 0.0,
            "cascadeflow-style": policies[3].small_share if policies[3].accuracy >= target * large_acc - 1e-12
            else 0.0,
            # the random share that meets the target is chosen on the calibration half, like every threshold
            "random": _random_at_target(d, target),
            "always large": 0.0,
        }
        best_name = max(baseline_shares, key=lambda k: baseline_shares[k])
        best = baseline_shares[best_name]
        orc = oracle_share_at_target(d.held_out, target)
        gap = orc - best
        meets = cal_policy.accuracy >= target * large_acc - 1e-12
        out["datasets"][d.name] = {
            "items": {"calibration": len(d.calibration), "held_out": len(d.held_out)},
            "auroc": {k: auroc(v, labels) for k, v in held_scores.items()},
            "ece_calibrated": expected_calibration_error(held_scores["calibrated"], labels),
            "thresholds": chosen,
            "policies": [p.to_dict() for p in policies],
            "at_target": {
                "target_accuracy": target * large_acc,
                "calibrated_share": cal_policy.small_share,
                "calibrated_accuracy": cal_policy.accuracy,
                # a threshold chosen on the calibration half may miss the target on the held-out half
                "calibrated_meets_target": meets,
                "best_baseline": best_name,
                "best_baseline_share": best,
                "oracle_share": orc,
                "gap_closed": (cal_policy.small_share - best) / gap if gap > 0 and meets else float("nan"),
            },
            "curves": {k: curve(d.held_out, v) for k, v in held_scores.items()},
        }
    out["calibration_threshold"] = calibration.thresholds[f"{target:g}"]
    return out, calibration


def json_safe(obj: Any) -> Any:
    """The report as strict JSON: NaN and infinities (an undefined ratio, a threshold that keeps
    nothing) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def print_report(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    for name, d in report["datasets"].items():
        t = Table(title=f"{name}: held-out {d['items']['held_out']} items "
                  f"(calibrated on {d['items']['calibration']}), target {report['target']:.0%} of the large "
                  "model's accuracy")
        for col in ("policy", "small share", "accuracy", "s/query", "$/query", "threshold"):
            t.add_column(col, justify="right" if col != "policy" else "left")
        for p in d["policies"]:
            th = p["threshold"]
            t.add_row(p["name"], f"{p['small_share']:.1%}", f"{p['accuracy']:.1%}", f"{p['latency_s']:.1f}",
                      f"{p['cost']:.6f}", "" if th is None else ("none kept" if math.isinf(th) else f"{th:.4f}"))
        console.print(t)
        a = d["auroc"]
        at = d["at_target"]
        console.print(
            f"AUROC (draft correct): calibrated {a['calibrated']:.3f} · mean logprob {a['mean logprob']:.3f} · "
            f"cascadeflow-style {a['cascadeflow-style']:.3f} · ECE (calibrated) {d['ece_calibrated']:.3f}\n"
            f"at target: calibrated keeps {at['calibrated_share']:.1%} of drafts "
            f"({'meets' if at['calibrated_meets_target'] else 'MISSES'} the target on held-out); best baseline "
            f"({at['best_baseline']}) {at['best_baseline_share']:.1%}; oracle at the target {at['oracle_share']:.1%}; "
            f"gap closed {at['gap_closed']:.0%}\n"
        )


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Accuracy against seconds per query for every policy, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 5), squeeze=False)
    for ax, name in zip(axes[0], names):
        d = report["datasets"][name]
        for label, style in (("calibrated", "-"), ("mean logprob", "--"), ("cascadeflow-style", ":")):
            pts = sorted(d["curves"][label], key=lambda x: x[2])
            ax.plot([p[2] for p in pts], [p[1] for p in pts], style, label=f"{label} (threshold sweep)")
        markers = {"always small": "s", "always large": "D", "random": "x", "oracle": "*",
                   "calibrated": "o", "mean logprob": "^", "cascadeflow-style": "v"}
        for p in d["policies"]:
            ax.scatter([p["latency_s"]], [p["accuracy"]], marker=markers.get(p["name"], "o"), s=70, zorder=3,
                       label=f"{p['name']} ({p['small_share']:.0%} small)")
        ax.axhline(d["at_target"]["target_accuracy"], color="grey", lw=0.8, ls="-.", label="target accuracy")
        ax.set_title(f"{name} (held-out {d['items']['held_out']} items)")
        ax.set_xlabel("seconds per query (2 CPU cores)")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{report['model']} → large model: cost-quality of acceptance policies")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command_line() -> str:
    return "edgecascade " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("edgecascade") else " ".join(
        sys.argv)
