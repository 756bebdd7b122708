"""How a `bench report` reads: the rich tables it prints, its Markdown (for a README) and its figure.

:mod:`.report` builds a report (splits, out-of-fold scores, thresholds, every policy judged); this
module only renders the dict it returns, or the report.json it saved (where an unmeasured number is
null and a threshold that keeps nothing is null too), so the two change for different reasons and
each stays small. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .report import (
    _VARIANTS,
    BASELINE_SCORES,
    CALIBRATED,
    CALIBRATED_CROSS_CHECK,
    CALIBRATED_EXAMPLES,
    POOLED_SUFFIX,
    ROUTER,
)

#: a tier's accuracy on the judged items this many standard errors or more from its accuracy on the
#: fitted items is reported as a shift (a two-proportion z, about a 5% false alarm on random halves)
SHIFT_Z = 2.0


def _percent(share: float) -> str:
    """A target as a percentage, as precise as it was given: 0.999 is 99.9%, not a rounded 100%."""
    return f"{round(share * 100, 6):g}%"


def _shift_line(d: dict[str, Any]) -> str:
    """A warning when the judged items differ from the fitted ones (``SHIFT_Z``), else ""."""
    shift = d.get("shift") or {}
    if not any(abs(v["z"]) >= SHIFT_Z for v in shift.values()):
        return ""
    said = ", ".join(f"the {tier} model right on {v['judged']:.1%} of them against {v['fitted']:.1%} (z {v['z']:+.1f})"
                     for tier, v in shift.items())
    return (f"The judged items differ from the items fitted on: {said}. A threshold chosen on the fitted items "
            "may not hold on such items; the difference is in the data, not only in the rule. On traffic like "
            "that, `edgecascade calibrate --adapt` moves a calibration to it from a few labelled answers.")


def _half(rule_entry: dict[str, Any], fresh: bool) -> str:
    """Where a config rule was judged: held-out (or fresh) items, unless its calibration may have seen them."""
    where = "the fresh items" if fresh else "held-out"
    return where if rule_entry["held_out"] else f"{where}, which its calibration may have seen"


def _domains_line(report: dict[str, Any]) -> str:
    """Which domains got a calibrator of their own, on how many drafts, with which threshold."""
    parts = []
    for variant, doms in report.get("domain_calibrators", {}).items():
        said = ", ".join(f"{d} ({m['items']} drafts, threshold {_threshold_text(m['threshold'])})"
                         for d, m in sorted(doms.items()))
        parts.append(f"{variant}: {said or 'none (too few drafts per domain)'}")
    return "Per-domain calibrators, fitted on the calibration items: " + "; ".join(parts) + "."


def _threshold_text(th: float | None) -> str:
    """A calibrator's threshold as read: one that keeps no draft is +inf in memory and null once a
    report is saved as JSON (which has no infinity)."""
    return "none kept" if th is None or math.isinf(th) else f"{th:.4g}"


def _margin_line(report: dict[str, Any]) -> str:
    return (f"Every threshold was chosen on the calibration items with a safety margin of {report['margin_z']:g} "
            "standard errors of the accuracy change (`bench report --margin`; `bench reliability` measures how "
            "often a margin holds).")


def _unmeasured(x: float | None) -> bool:
    """A gap the report could not measure (a missed target, a baseline's gap to itself): NaN in
    memory, null once written as JSON, so a gap prints the same from a saved report.json. Other
    numbers a report may leave unmeasured (an AUROC on judged items of one kind) are not handled
    here: a saved report is for reading, the printed forms come from a report run."""
    return x is None or math.isnan(x)


def print_report(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    for name, d in report["datasets"].items():
        fresh = d["items"].get("fresh_from")
        judged = f"held-out {d['items']['held_out']} items" if fresh is None else (
            f"{d['items']['held_out']} fresh items (from item {fresh} on)")
        judged_on = "held-out" if fresh is None else "the fresh items"
        t = Table(title=f"{name}: {judged} (calibrated on {d['items']['calibration']}), target "
                  f"{_percent(report['target'])} of the large model's accuracy")
        for col in ("policy", "small share", "accuracy", "s/query", "$/query", "threshold"):
            t.add_column(col, justify="right" if col != "policy" else "left")
        for p in d["policies"]:
            th = p["threshold"]
            shown = ("none kept" if p.get("keeps_none") else "") if th is None else (
                "none kept" if math.isinf(th) else f"{th:.4f}")
            t.add_row(p["name"], f"{p['small_share']:.1%}", f"{p['accuracy']:.1%}", f"{p['latency_s']:.1f}",
                      f"{p['cost']:.6f}", shown)
        console.print(t)
        a, at = d["auroc"], d["at_target"]
        ci = d["auroc_interval"]
        console.print("AUROC (draft correct, 95% bootstrap interval): "
                      + " · ".join(f"{k} {v:.3f} ({ci[k][0]:.2f}–{ci[k][1]:.2f})" for k, v in a.items())
                      + " · ECE " + " · ".join(f"{k} {v:.3f}" for k, v in d["ece"].items()))
        for v in (*report["variants"], *report.get("experiments", [])):
            r = at[v]
            # a policy that misses the target closed no gap: its share was bought with accuracy
            gap = "" if _unmeasured(r["gap_closed"]) else (
                f"; gap to the oracle closed {r['gap_closed']:.0%}"
                + ("" if _unmeasured(r["gap_closed_budget"])
                   else f", to the budget oracle {r['gap_closed_budget']:.0%}"))
            console.print(f"at target: {v} keeps {r['share']:.1%} of drafts at {r['accuracy']:.1%} accuracy "
                          f"({'meets' if r['meets_target'] else 'MISSES'} the target on {judged_on}{gap})")
        if "config rule" in at:
            r = at["config rule"]
            console.print(f"{r['label']}: keeps {r['share']:.1%} of drafts at {r['accuracy']:.1%} accuracy "
                          f"({'meets' if r['meets_target'] else 'MISSES'} the target on "
                          f"{_half(r, fresh is not None)})")
        console.print(f"best baseline ({at['best_baseline']}) {at['best_baseline_share']:.1%} · oracle "
                      f"{at['oracle_share']:.1%} · budget oracle {at['oracle_share_budget']:.1%}")
        shifted = _shift_line(d)
        if shifted:
            console.print(shifted, style="yellow", markup=False)
        console.print()
    console.print(_domains_line(report))
    console.print(_margin_line(report))


def markdown_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables, for a README."""
    lines: list[str] = []
    for name, d in report["datasets"].items():
        n = d["items"]
        if n.get("fresh_from") is None:
            said = (f"*{name}*: {n['calibration'] + n['held_out']} items traced on both tiers; calibration half "
                    f"{n['calibration']}, held-out {n['held_out']}.")
        else:
            said = (f"*{name}*: fitted on its first {n['fresh_from']} items ({n['calibration']} traced on both "
                    f"tiers); judged on the {n['held_out']} items from item {n['fresh_from']} on, which no fit and "
                    "no threshold saw.")
        lines += [said, "",
                  "| policy | small-model share | accuracy | s/query |", "| --- | --- | --- | --- |"]
        lines += [f"| {p['name']} | {p['small_share']:.1%} | {p['accuracy']:.1%} | {p['latency_s']:.1f} |"
                  for p in d["policies"]]
        at = d["at_target"]
        bold = report["variants"]
        aur = ", ".join(f"{k} {'**' if k in bold else ''}{v:.3f}{'**' if k in bold else ''} "
                        f"({d['auroc_interval'][k][0]:.2f}–{d['auroc_interval'][k][1]:.2f})"
                        for k, v in d["auroc"].items())
        ece = ", ".join(f"{k} {v:.3f}" for k, v in d["ece"].items())
        lines += ["", f"AUROC for \"the draft is right\" (95% bootstrap interval): {aur}; expected calibration "
                  f"error: {ece}."]
        for v in (*report["variants"], *report.get("experiments", [])):
            r = at[v]
            verdict = "meets" if r["meets_target"] else "misses"
            gap = "" if _unmeasured(r["gap_closed"]) else (
                f", closing {r['gap_closed']:.0%} of the gap from the best baseline to the oracle"
                + ("" if _unmeasured(r["gap_closed_budget"])
                   else f" ({r['gap_closed_budget']:.0%} of the gap to the budget oracle)")
                + ("; it keeps more drafts than the oracle because the accuracy budget lets it keep some "
                   "wrong ones" if r["gap_closed"] > 1 else ""))
            lines.append(f"At the target ({at['target_accuracy']:.1%}) *{v}* keeps {r['share']:.1%} of drafts "
                         f"and {verdict} it ({r['accuracy']:.1%}){gap}.")
        if "config rule" in at:
            r = at["config rule"]
            lines.append(f"*{r['label']}* keeps {r['share']:.1%} of drafts and "
                         f"{'meets' if r['meets_target'] else 'misses'} the target ({r['accuracy']:.1%}) on "
                         f"{_half(r, n.get('fresh_from') is not None)}.")
        lines += [f"Best baseline that meets the target: {at['best_baseline']} {at['best_baseline_share']:.1%}; "
                  f"the oracle (the draft exactly when it is right) {at['oracle_share']:.1%}; the budget oracle "
                  f"(perfect knowledge of both tiers, the same accuracy budget) {at['oracle_share_budget']:.1%}."]
        shifted = _shift_line(d)
        lines += [shifted, ""] if shifted else [""]
    lines += [_domains_line(report), "", _margin_line(report), ""]
    return "\n".join(lines)


#: tab20's colours, dark ones first, less its pinks and greys (random routing and the fixed baselines)
_SWEEP_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#bcbd22", "#17becf",
                 "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#dbdb8d", "#9edae5")
#: a policy with no colour of its own (a config's rule)
OTHER_POLICY_COLOR = "#ff00ff"


def policy_colors(report: dict[str, Any]) -> dict[str, str]:
    """Each policy's colour in the figure: the fixed baselines' own, then one per swept policy (its
    deployed-threshold point shares it). No two series share one, whatever a report holds, up to 16
    swept policies."""
    colors = {"always small": "#000000", "always large": "#696969", "random": "#e377c2", "oracle": "#daa520"}
    for i, label in enumerate((*report["variants"], *BASELINE_SCORES, *report.get("experiments", []))):
        colors[label] = colors[f"{label}, deployed threshold"] = _SWEEP_COLORS[i % len(_SWEEP_COLORS)]
    return colors


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Every policy's accuracy against the share of queries sent to the large model (what a priced
    large tier costs) and against seconds per query (what it costs on this machine, where an
    escalated query pays for both calls); one column per dataset, one legend. ConfigError without
    matplotlib (the `bench` extra)."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("the cost-quality figure needs matplotlib: pip install 'edgecascade[bench]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    # at least two columns' width: the legend's three columns and the title need it with one dataset too
    fig, axes = plt.subplots(2, len(names), figsize=(6.5 * max(len(names), 2), 9.5), squeeze=False)
    styles = {**dict.fromkeys(_VARIANTS, "-"), "mean logprob": "--", "cascadeflow-style": ":",
              ROUTER: "-.", **{v + POOLED_SUFFIX: (0, (3, 1, 1, 1)) for v in _VARIANTS}}
    markers = {"always small": "s", "always large": "D", "random": "X", "oracle": "*",
               CALIBRATED: "o", CALIBRATED_EXAMPLES: "P", CALIBRATED_CROSS_CHECK: "H", "mean logprob": "^",
               "cascadeflow-style": "v", ROUTER: "p", **{v + POOLED_SUFFIX: "d" for v in _VARIANTS}}
    axis = {0: ("share of queries sent to the large model", lambda share, lat: 1 - share),
            1: ("seconds per query (as traced)", lambda share, lat: lat)}
    colors = policy_colors(report)
    for col, name in enumerate(names):
        d = report["datasets"][name]
        fresh = d["items"].get("fresh_from")
        judged = (f"held-out {d['items']['held_out']} items" if fresh is None
                  else f"{d['items']['held_out']} fresh items, from item {fresh} on")
        for row, (xlabel, x) in axis.items():
            ax = axes[row][col]
            for label in (*report["variants"], *BASELINE_SCORES, *report.get("experiments", [])):
                pts = sorted(d["curves"][label], key=lambda q: x(q[0], q[2]))
                ax.plot([x(q[0], q[2]) for q in pts], [q[1] for q in pts], linestyle=styles[label], color=colors[label],
                        label=f"{label} (threshold sweep)")
            for p in d["policies"]:
                ax.scatter([x(p["small_share"], p["latency_s"])], [p["accuracy"]], marker=markers.get(p["name"], "h"),
                           color=colors.get(p["name"], OTHER_POLICY_COLOR), edgecolor="black", linewidth=0.5, s=70,
                           zorder=3,
                           label=f"{p['name']} (at the target)" if p["threshold"] is not None or p.get("keeps_none")
                           else p["name"])
            ax.axhline(d["at_target"]["target_accuracy"], color="grey", lw=0.8, ls="-.",
                       label=f"target: {_percent(report['target'])} of the large model's accuracy")
            ax.set_title(f"{name} ({judged})")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("accuracy")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{report['model']} → large model: cost-quality of acceptance policies (on items no fit saw)")
    # the legend's rows go below the axes, however many policies there are: the figure grows for them
    legend_in = 0.3 + 0.19 * math.ceil(len(labels) / 3)
    fig.set_size_inches(fig.get_size_inches()[0], 8.3 + legend_in)
    fig.tight_layout(rect=(0, legend_in / (8.3 + legend_in), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
