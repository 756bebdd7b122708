"""`edgecascade calibrate`: read labelled (or, to adapt, unlabelled) answers and fit a new
calibration on them; adapting an existing one is in :mod:`.adapt`."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

from ..errors import ConfigError
from .adapt import _adapt_base, _calibrate_adapt, _shipped_calibration
from .console import err, out

if TYPE_CHECKING:
    from ..benchmarks.traces import Trace
    from ..datasets import Item


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..benchmarks.report import command_line, split_ids
    from ..benchmarks.traces import alternatives_count
    from ..quality.calibration import auroc, draft_features, expected_calibration_error, fit_calibration
    from ..quality.domain import prompt_domain

    if args.unlabelled and not args.adapt:
        raise ConfigError("--unlabelled adapts an existing calibration to your traffic: give it with --adapt BASE "
                          f"(e.g. {_shipped_calibration('qwen2.5-coder-0.5b')}); fitting anew needs labels")
    if args.drafter and not args.adapt:
        raise ConfigError("--drafter picks the drafting model's lines for --adapt; a new calibration names its "
                          "model with --model")
    _refuse_out_over_inputs(args.out, [*args.traces, *args.dataset])
    base = _adapt_base(args) if args.adapt else None
    # unlabelled: every draft by the base's model counts, escalated ones too
    drafter = args.drafter or (base[1].model if base is not None and args.unlabelled else None)
    traces, prompts, checks = _labelled_traces(args.traces, labelled=not args.unlabelled,
                                               drafter=drafter if args.unlabelled else None, datasets=args.dataset)
    if args.drafter and not args.unlabelled:
        # a labelled line's label judges the answer it returned: keep the lines the drafter answered
        said = sorted(({t.model for t in traces} | {t.tier for t in traces}) - {""})
        traces = [t for t in traces if args.drafter in (t.model, t.tier)]
        if not traces:
            raise ConfigError(f"--drafter {args.drafter}: no labelled answer is by it (the answers are by "
                              f"{', '.join(said) or 'unnamed models'}): name one of those")
    if base is not None:
        return _calibrate_adapt(args, *base, traces, prompts, checks)
    traces = _one_models_answers(traces, args.model)
    cal_ids, held_ids = split_ids([t.item_id for t in traces], args.seed)
    cal = [t for t in traces if t.item_id in cal_ids]
    held = [t for t in traces if t.item_id in held_ids]
    model = args.model or next((t.model for t in traces if t.model), "")
    if not model:
        model = "unnamed"
        err.print("note: the traces name no model: the calibration is recorded as 'unnamed' (name it with "
                  "--model)", style="yellow", markup=False)
    calibration = fit_calibration([draft_features(t.completion(), prompt=prompts.get(t.item_id)) for t in cal],
                                  [t.correct for t in cal],
                                  model=model, seed=args.seed, prompts=[prompts.get(t.item_id) for t in cal],
                                  source=f"the calibration part of {', '.join(args.traces)} ({len(cal)} of "
                                  f"{len(traces)} lines, split by --seed {args.seed})",
                                  meta={"command": command_line(), "traces": args.traces,
                                        "seed": args.seed, "calibration_items": len(cal), "held_out_items": len(held),
                                        "top_logprobs": alternatives_count(cal)})
    probs = calibration.predict_each([draft_features(t.completion(), prompt=prompts.get(t.item_id)) for t in held],
                                     [prompt_domain(prompts.get(t.item_id)) for t in held])
    labels = [t.correct for t in held]
    calibration.meta["held_out"] = {"auroc": auroc(probs, labels), "ece": expected_calibration_error(probs, labels)}
    target = Path(args.out).expanduser() if args.out else Path(args.traces[0]).with_suffix(".calibration.json")
    calibration.save(target)
    # a threshold is chosen on the calibration part (where the fit was made) and checked on the
    # held-out part: a table of the held-out part alone invited choosing on it, which makes its
    # accuracy no longer a fair estimate
    fitted_probs = calibration.predict_each([draft_features(t.completion(), prompt=prompts.get(t.item_id))
                                             for t in cal], [prompt_domain(prompts.get(t.item_id)) for t in cal])

    def at(p: np.ndarray, right: Sequence[bool], t: float) -> tuple[float, float]:
        kept = p >= t
        return (float(kept.mean()) if len(kept) else float("nan"),
                float(np.mean(np.asarray(right)[kept])) if kept.any() else float("nan"))

    rows = []
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        (c_share, c_acc), (h_share, h_acc) = at(fitted_probs, [t.correct for t in cal], t), at(probs, labels, t)
        rows.append({"min_confidence": t, "accepted_share": h_share, "accepted_accuracy": h_acc,
                     "calibration_accepted_share": c_share, "calibration_accepted_accuracy": c_acc})
    result = {"calibration": str(target), "held_out": calibration.meta["held_out"], "thresholds": rows,
              "calibration_items": len(cal), "held_out_items": len(held),
              "domains": {d: sub.meta for d, sub in calibration.domains.items()}}
    if args.json:
        from .. import strict_json

        print(strict_json.dumps(result))  # an accuracy of no accepted draft is undefined: null
        return 0
    out.print(f"calibration for {model} written to {target}")
    for d, sub in calibration.domains.items():
        out.print(f"  with its own calibrator for {d} prompts ({sub.meta['items']} labelled drafts)")
    if not held:
        out.print(f"held-out: no items (all {len(traces)} fell in the part to fit): nothing to judge the calibration "
                  "on; label more answers, or try another --seed")
    elif len(set(labels)) < 2:
        out.print(f"held-out ({len(held)} items, all {'right' if labels[0] else 'wrong'}): AUROC undefined (it needs "
                  f"right and wrong answers) · ECE {result['held_out']['ece']:.3f}; label more answers, or try another "
                  "--seed")
    else:
        out.print(f"held-out ({len(held)} items): AUROC {result['held_out']['auroc']:.3f} · "
                  f"ECE {result['held_out']['ece']:.3f}")
    table = Table("min_confidence", "calibration part: accepted", "accuracy of accepted",
                  "held-out: accepted", "accuracy of accepted")
    for r in rows:
        table.add_row(f"{r['min_confidence']:.2f}", _share_or_dash(r["calibration_accepted_share"]),
                      _share_or_dash(r["calibration_accepted_accuracy"]), _share_or_dash(r["accepted_share"]),
                      _share_or_dash(r["accepted_accuracy"]))
    out.print(table)
    out.print("choose min_confidence on the calibration part's columns; the held-out columns say how that holds on "
              "answers the fit never saw (chosen on them, they would no longer say it)")
    out.print(f'use it: [tiers.accept] confidence = "calibrated", calibration = "{target.resolve()}", '
              "min_confidence = ...")
    return 0


def _refuse_out_over_inputs(out_arg: str | None, inputs: Sequence[str]) -> None:
    """An --out that names one of the files read would replace the labelled answers with the fit."""
    if not out_arg:
        return
    target = Path(out_arg).expanduser().resolve()
    for given in inputs:
        if Path(given).expanduser().resolve() == target:
            raise ConfigError(f"--out {out_arg} is {given}, a file this command reads: writing the calibration there "
                              "would replace it. Name another file (e.g. my.calibration.json)")


def _one_models_answers(traces: Sequence[Trace], model: str | None) -> list[Trace]:
    """The labelled answers a new calibration is fitted on: one model's. A calibration judges one
    model's drafts, and labelled `run --json` lines of an escalating cascade hold answers of several
    (an escalated line's answer, the one its label judges, is a larger model's): fitted on all of
    them together, it would judge the drafter by the larger model's answers too."""
    counts = Counter(t.model for t in traces if t.model)
    if len(counts) < 2:  # one model (or none named): --model, if given, only names it
        if model is not None and counts and model not in counts:
            err.print(f"note: the answers are by {next(iter(counts))}; the calibration is written for --model "
                      f"{model}, which a config's tier running {model} will use", style="yellow", markup=False)
        return list(traces)
    said = ", ".join(f"{m} ({n} lines)" for m, n in counts.most_common())
    if model is None:
        raise ConfigError(f"the labelled answers come from more than one model: {said}. A calibration judges one "
                          "model's drafts: name it with --model (the other models' lines are left out; in `run "
                          "--json` lines an escalated answer is the larger model's)")
    if model not in counts:
        raise ConfigError(f"--model {model}: none of the labelled answers is by it (they are by {said}): name one "
                          "of those, or leave --model out")
    left = sum(n for m, n in counts.items() if m != model)
    err.print(f"note: fitting on {model}'s {counts[model]} labelled answers; {left} by other models are "
              "left out", style="yellow", markup=False)
    return [t for t in traces if t.model == model]


def _share_or_dash(x: float) -> str:
    """A share as a percentage, or a dash where it is undefined (no drafts to count)."""
    return f"{x:.1%}" if math.isfinite(x) else "—"


def _labelled_traces(files: Sequence[str], *, labelled: bool = True, drafter: str | None = None,
                     datasets: Sequence[str] = ()) -> tuple[list[Trace], dict[str, str], dict[str, float | None]]:
    """The labelled answers of every file given to `calibrate --traces`, their prompts by item id (a
    line's own ``prompt``, else, for a line `bench run` wrote, which stores only the prompt's digest,
    the dataset's prompt for its item where the digest matches: a built-in one, or a .jsonl file in
    ``datasets``), and the results of the cross-checks the lines carry."""
    from ..benchmarks.traces import CROSS_CHECK, fill_dataset_prompts, load_labelled_traces

    for f in datasets:
        if not f.endswith(".jsonl") or not Path(f).expanduser().is_file():
            raise ConfigError(f"--dataset {f}: no such .jsonl file (name the file `bench run --dataset` traced)")

    prompts: dict[str, str] = {}
    checks: dict[str, float | None] = {}
    traces: list[Trace] = []
    given: dict[Path, str] = {}
    for f in files:
        where = Path(f).expanduser().resolve()
        if where in given:
            raise ConfigError(f"--traces names {f} twice ({given[where]} is the same file): its answers would "
                              "count twice; give each file once")
        given[where] = f
    # a line without an id is named by its file's name (the split is then the same wherever the file
    # lies), and by its place among the files where two have one name
    names = [Path(f).name for f in files]
    loaded: list[tuple[str, list[Trace], dict[str, str], dict[str, float | None]]] = []
    filled: Counter[str] = Counter()
    read_datasets: dict[str, dict[str, Item]] = {}  # each dataset read once, whatever the files
    for i, f in enumerate(files, 1):
        name = f"{i}:{names[i - 1]}" if names.count(names[i - 1]) > 1 else names[i - 1]
        own_prompts: dict[str, str] = {}
        own_checks: dict[str, float | None] = {}
        read = load_labelled_traces(Path(f), own_prompts, own_checks, labelled=labelled, drafter=drafter, name=name)
        # a cross-check's program (`bench run` files them beside the drafts) is no draft: fitted as
        # one, it had made a draft calibrator of programs, with a held-out AUROC near 1
        programs = sum(t.tier == CROSS_CHECK for t in read)
        if programs == len(read):
            raise ConfigError(f"{f} holds cross-check programs (tier {CROSS_CHECK!r}), not drafts: give the file of "
                              "the drafts `bench run` wrote beside it")
        if programs:
            err.print(f"note: {f}: {programs} lines of cross-check programs are left out (they are not drafts)",
                      style="yellow", markup=False)
            read = [t for t in read if t.tier != CROSS_CHECK]
        filled.update(fill_dataset_prompts(read, own_prompts, datasets, read_datasets))  # by the datasets' ids
        loaded.append((f, read, own_prompts, own_checks))
    # ids repeat across the datasets `bench run` traced (two .jsonl files numbered from 1): those ids
    # are read as dataset/id. Only `bench run` lines (they carry the prompt's digest) name their
    # dataset; a line of a user's own file is named by its file, so a repeat across such files (one
    # question labelled twice) stays the error below, and ids that do not repeat keep their split
    datasets_of: dict[str, set[str]] = {}
    traced_only: dict[str, bool] = {}
    for _, read, _, _ in loaded:
        for t in read:
            datasets_of.setdefault(t.item_id, set()).add(t.dataset)
            traced_only[t.item_id] = traced_only.get(t.item_id, True) and bool(t.prompt_sha256)
    shared = sorted(i for i, sets in datasets_of.items() if len(sets) > 1 and traced_only[i])
    if shared:
        sets = ", ".join(sorted(set().union(*(datasets_of[i] for i in shared))))
        err.print(f"note: item ids repeat across datasets ({sets}; {len(shared)} ids, e.g. {shared[0]!r}): those are "
                  "read as dataset/id", style="dim", markup=False)
    renamed = set(shared)
    seen: dict[tuple[str, str], str] = {}
    for f, read, own_prompts, own_checks in loaded:
        for t in read:
            old_id = t.item_id
            if old_id in renamed:
                t = dataclasses.replace(t, item_id=f"{t.dataset}/{old_id}")
            if old_id in own_prompts:
                prompts[t.item_id] = own_prompts[old_id]
            if old_id in own_checks:
                checks[t.item_id] = own_checks[old_id]
            # one item answered by two models (two `bench run` files, or one file of a cascade's tiers)
            # is two answers: --model picks one model's later
            if (t.item_id, t.model) in seen:
                raise ConfigError(f"item id {t.item_id!r} is in {seen[t.item_id, t.model]} and again in {f}"
                                  + (f", both answered by {t.model}" if t.model else "") + ": each labelled answer "
                                  "needs its own id (the `id` field) across all --traces files")
            seen[t.item_id, t.model] = f
            traces.append(t)
    if filled:
        err.print("prompts read from the datasets for " + ", ".join(f"{n} {d}" for d, n in sorted(filled.items()))
                  + " traced items (`bench run` stores only a digest of each prompt; it matched)",
                  style="dim", markup=False)
    promptless = sorted({t.dataset for t in traces if t.prompt_sha256 and t.item_id not in prompts})
    if promptless:
        err.print(f"warning: the lines of {', '.join(promptless)} carry no prompt and none was read back "
                  "(a .jsonl dataset's: give its file with --dataset; a changed prompt's digest does not match), "
                  "so the features that read the prompt are neutral for them and they get no domain",
                  style="yellow", markup=False)
    return traces, prompts, checks
