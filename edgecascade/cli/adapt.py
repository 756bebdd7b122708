"""`edgecascade calibrate --adapt BASE`: an existing calibration moved to your traffic, from
labelled answers (its intercepts) or, with ``--unlabelled``, from the drafts alone (its base rate
and thresholds), with the evidence of what it changes."""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from ..errors import ConfigError
from .console import err, out

if TYPE_CHECKING:
    from ..benchmarks.traces import Trace
    from ..quality.calibration import Calibration


def _shipped_calibration(model: str, *, examples: bool = False) -> Path:
    """Where a model's shipped calibration lies (the checkout's models/, or the installed package's)."""
    from ..engine import calibration_path

    return calibration_path(model, examples=examples)


def _kept_phrase(kept: float, accuracy: float) -> str:
    return f"{kept:.1%} kept" + ("" if math.isnan(accuracy) else f", {accuracy:.1%} of them right")


def labelled_rows(traces: Sequence[Trace], prompts: dict[str, str], checks: dict[str, float | None],
                  run_examples: bool) -> list[dict[str, float]]:
    """Each labelled answer's calibration features, with its cross-check's where the line carries one."""
    from ..quality.calibration import draft_features
    from ..quality.crosscheck import CrossCheck

    return [draft_features(t.completion(), prompt=prompts.get(t.item_id), run_examples=run_examples,
                           cross_check=CrossCheck.of(t.answer, checks[t.item_id]).features
                           if t.item_id in checks else None) for t in traces]


def _adapt_base(args: argparse.Namespace) -> tuple[Path, Calibration]:
    """`calibrate --adapt BASE`'s base calibration, loaded once (its model names the drafts
    --unlabelled reads), after the options that cannot go with it are refused."""
    from ..quality.calibration import Calibration

    if args.model:
        raise ConfigError("--model names the model of a new calibration; an adapted one keeps its base's model: "
                          "leave --model out")
    base_path = Path(args.adapt).expanduser()
    if not base_path.is_file():
        raise ConfigError(f"--adapt {args.adapt}: no calibration file there. A shipped one is "
                          f"{_shipped_calibration('<model>')} (e.g. {_shipped_calibration('qwen2.5-coder-0.5b')}); "
                          "check the path")
    return base_path, Calibration.load(base_path)


def _calibrate_adapt(args: argparse.Namespace, base_path: Path, base: Calibration, traces: Sequence[Trace],
                     prompts: dict[str, str], checks: dict[str, float | None]) -> int:
    """`calibrate --adapt BASE`: move each of BASE's calibrators' intercepts to the labelled traces
    (:mod:`.quality.adapt`), show out-of-fold evidence of what it changes, and write the result."""
    from ..benchmarks.report import command_line
    from ..quality.adapt import MIN_ADAPT_ITEMS, adapt_calibration, out_of_fold_check
    from ..quality.domain import prompt_domain

    if base.runs_cross_check and not checks:
        raise ConfigError(f"{base_path} uses the cross-check of math drafts, and no line carries one: "
                          + ("collect" if args.unlabelled else "label")
                          + " the `run --json` lines of a config with cross_check = true (each keeps its answer's "
                          "`cross_check`), or adapt the calibration without it "
                          f"({_shipped_calibration(base.model, examples=True)} or {_shipped_calibration(base.model)})")
    # not the name a plain `calibrate` on the same traces writes, so neither replaces the other
    target = (Path(args.out).expanduser() if args.out
              else Path(args.traces[0]).with_suffix(".adapted.calibration.json"))
    if target.resolve() == base_path.resolve():
        raise ConfigError(f"--out is the base calibration ({base_path}): write the adapted one to another file, so "
                          "the base is kept")
    named = Counter(t.model for t in traces if t.model)
    others = sorted(set(named) - {base.model})
    if others and base.model in named:
        # labelled `run --json` lines of an escalating cascade: an escalated line's answer (the one its
        # label judges) is the larger model's; adapted on those too, the drafter's calibrator learns
        # the larger model's accuracy
        left = sum(named[m] for m in others)
        err.print(f"note: adapting on {base.model}'s {named[base.model]} answers; {left} by {', '.join(others)} "
                  "(in `run --json` lines, escalated answers) are left out", style="yellow", markup=False)
        traces = [t for t in traces if t.model in (base.model, "")]
    elif len(others) > 1:
        raise ConfigError(f"the answers come from {', '.join(others)}, and none from {base.model}, whose calibration "
                          f"{base_path} is: a calibration judges one model's drafts. Name the drafter's lines with "
                          "--drafter MODEL_OR_TIER (a tier running a .gguf path names its model after the file), "
                          "or fit a new calibration with `calibrate --traces FILE --model NAME`")
    elif others:
        err.print(f"warning: the traces name {others[0]}, the calibration {base.model}: a "
                  "calibration is learned for one model's drafts", style="yellow", markup=False)
    if base.domains and not prompts:
        err.print("warning: no line carries its prompt, so every answer is judged by the pooled calibrator "
                  f"(the base has its own for {', '.join(sorted(base.domains))}); add each line's `prompt`",
                  style="yellow", markup=False)
    if base.runs_examples:
        err.print("the base calibration uses the prompt-examples check: each answer's code is run against its "
                  "prompt's examples, in a separate time-limited process", style="dim", markup=False)
    if base.runs_cross_check:
        # a math answer a `cross_check = true` config judged was cross-checked; without one, its features
        # would read as a program that gave no number, which it is not: such lines are left out
        unchecked = [t for t in traces if t.item_id not in checks and prompt_domain(prompts.get(t.item_id)) == "math"]
        if unchecked:
            example = repr(unchecked[0].item_id)
            err.print(f"note: {len(unchecked)} math lines carry no cross-check (e.g. {example}) and are left "
                      "out: the base calibration judges math answers with theirs", style="yellow", markup=False)
            left_out = {t.item_id for t in unchecked}
            traces = [t for t in traces if t.item_id not in left_out]
    rows = labelled_rows(traces, prompts, checks if base.runs_cross_check else {}, base.runs_examples)
    domains = [prompt_domain(prompts.get(t.item_id)) for t in traces]
    if args.unlabelled:
        return _adapt_unlabelled(args, base_path, base, target, rows, domains)
    labels = [t.correct for t in traces]
    adapted, shifts = adapt_calibration(base, rows, labels, domains, meta={
        "from": str(base_path), "traces": args.traces, "items": len(traces),
        "command": command_line()})
    if all(sh.shift is None for sh in shifts):
        raise ConfigError(f"nothing to adapt in {base_path}: "
                          + "; ".join(f"{sh.calibrator}: {sh.note}" for sh in shifts if sh.items)
                          + f". Label more answers (at least {MIN_ADAPT_ITEMS} per calibrator, right and wrong ones)")
    evidence = out_of_fold_check(base, rows, labels, domains, seed=args.seed)
    adapted.save(target)
    result: dict[str, Any] = {"calibration": str(target), "base": str(base_path), "items": len(traces),
                              "calibrators": []}
    for sh in shifts:
        entry: dict[str, Any] = {"calibrator": sh.calibrator, "items": sh.items, "right": sh.right,
                                 "shift": sh.shift, "shift_se": sh.se, "note": sh.note}
        ch = next((c for c in evidence if c.calibrator == sh.calibrator), None)
        if ch is not None:
            entry["out_of_fold"] = ch.summary()
        result["calibrators"].append(entry)
    if args.json:
        from .. import strict_json

        print(strict_json.dumps(result))
        return 0
    out.print(f"adapted {base_path} to {len(traces)} labelled answers: written to {target}")
    table = _calibrators_table("out-of-fold: each answer scored by an adaptation fitted without it",
                               "labels (right)", "intercept shift (logits)", "mean P → adapted (right share)",
                               "log loss → adapted")
    lines = []
    for e in result["calibrators"]:
        if not e["items"]:
            continue
        shift = e["note"] if e["shift"] is None else f"{e['shift']:+.2f} ± {e['shift_se']:.2f}"
        o = e["out_of_fold"]  # every calibrator that judges a labelled answer has its check
        table.add_row(e["calibrator"], f"{e['items']} ({e['right']})", shift,
                      f"{o['mean_p_before']:.3f} → {o['mean_p_after']:.3f} ({o['right_share']:.3f})",
                      f"{o['log_loss_before']:.3f} → {o['log_loss_after']:.3f}")
        for k, a in o["at_thresholds"].items():
            said = {when: _kept_phrase(a[when + "_kept"], a[when + "_accuracy"]) for when in ("before", "after")}
            lines.append(f"{e['calibrator']} at its quality_target {k} threshold: {said['before']} → adapted "
                         f"{said['after']}")
        if o["log_loss_after"] > o["log_loss_before"]:
            lines.append(f"{e['calibrator']}: adapted, it predicts these answers worse out of fold (log loss "
                         f"{o['log_loss_before']:.3f} → {o['log_loss_after']:.3f}): on this evidence keep the base "
                         f"for it ({base_path})")
        if e["shift"] is not None and abs(e["shift"]) < 2 * e["shift_se"]:
            lines.append(f"{e['calibrator']}: the shift is within 2 standard errors of none; on this evidence your "
                         "traffic's base rate matches the calibration's, and adapting changes little")
    out.print(table)
    for line in lines:
        out.print(line)
    out.print("The weights and thresholds are the base's; only intercepts moved. Use it: [tiers.accept] "
              f'confidence = "calibrated", calibration = "{target.resolve()}" (with the quality_target or '
              "min_confidence you used before)")
    return 0


def _calibrators_table(title: str, *headers: str) -> Table:
    """A table with a row per calibrator (its name never wrapped) and these columns after it."""
    table = Table(title=title)
    table.add_column("calibrator", no_wrap=True)
    for header in headers:
        table.add_column(header)
    return table


def _adapt_unlabelled(args: argparse.Namespace, base_path: Path, base: Calibration, target: Path,
                      rows: Sequence[dict[str, float]], domains: Sequence[str | None]) -> int:
    """`calibrate --adapt BASE --unlabelled`: estimate the traffic's base rate from its drafts alone,
    move each calibrator to it and choose its thresholds again (:mod:`.quality.prior_shift`)."""
    from ..benchmarks.report import command_line
    from ..quality.prior_shift import adapt_to_unlabelled

    adapted, shifts = adapt_to_unlabelled(base, rows, domains, meta={
        "from": str(base_path), "traces": args.traces, "items": len(rows),
        "command": command_line()})
    if all(sh.prior is None for sh in shifts):
        said = [f"{sh.calibrator}: {sh.note}" for sh in shifts if sh.drafts]
        raise ConfigError(f"nothing to adapt in {base_path}: " + ("; ".join(said) or "no answer to adapt to"))
    adapted.save(target)
    result = {"calibration": str(target), "base": str(base_path), "items": len(rows), "unlabelled": True,
              "calibrators": [asdict(sh) for sh in shifts]}
    if args.json:
        from .. import strict_json

        print(strict_json.dumps(result))
        return 0
    out.print(f"adapted {base_path} to the base rate of {len(rows)} unlabelled answers: written to {target}")
    table = _calibrators_table("base rate: the share of drafts that are right", "drafts", "right: learned → here",
                               "threshold (quality_target)", "kept here")
    lines = []
    for sh in shifts:
        if not sh.drafts:
            continue
        if sh.prior is None or sh.prior_se is None or sh.source_prior is None:
            table.add_row(sh.calibrator, str(sh.drafts), "", "", "")
            lines.append(f"{sh.calibrator}: not adapted: {sh.note}")
            continue
        for k, t in sh.thresholds.items():
            table.add_row(sh.calibrator, str(sh.drafts),
                          f"{sh.source_prior:.1%} → {sh.prior:.1%} ± {sh.prior_se:.1%}",
                          f"{t['before']:.4g} → {t['after']:.4g} ({k})",
                          f"{t['kept_before']:.1%} → {t['kept_after']:.1%}")
        if sh.note:
            lines.append(f"{sh.calibrator}: {sh.note}")
        if sh.mean_p is not None:
            lines.append(f"{sh.calibrator}: its mean P(correct) on these drafts, unshifted, is {sh.mean_p:.1%}: the "
                         "share right if your traffic differs in which questions come, not in how a right draft "
                         "looks. On the shifted math traffic measured here it was nearly always nearer the truth "
                         "than the label-shift estimate above (docs/benchmarks.md, Two estimates of the share "
                         "right); the thresholds follow the label-shift estimate, which erred low there, toward "
                         "keeping fewer drafts (on other traffic it may err either way: label a few tens of drafts "
                         "to check)")
        if sh.differs is False:
            lines.append(f"{sh.calibrator}: the estimate is within 2 standard errors of the base rate it learned "
                         f"(on {sh.source_items} items); on this evidence your traffic may not differ from the "
                         "calibration's, and the adapted file moves its thresholds by noise: keep the base unless "
                         "you know it does")
    out.print(table)
    for line in lines:
        out.print(line)
    out.print("Each threshold was chosen again, by the same rule and margin, on the calibration's own items "
              "weighted to the estimated base rate. This assumes your drafts differ from the calibration's "
              "only in how often they are right; label a few tens of them to check (--adapt without "
              '--unlabelled). Use it: [tiers.accept] confidence = "calibrated", '
              f'calibration = "{target.resolve()}" (with the same quality_target)')
    return 0
