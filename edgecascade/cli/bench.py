"""The benchmark commands that run models: `bench overhead` (logprob capture and engine
overhead), `bench run` (trace every tier on a labelled dataset) and `bench replay` (the live
cascade beside its traces)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import strict_json
from ..errors import ConfigError
from .bench_traces import _bench_cascade, _bench_run_command, _config_name
from .console import err, out, progress_bar

if TYPE_CHECKING:
    from ..benchmarks.traces import TierSpec, Trace


def cmd_bench_overhead(args: argparse.Namespace) -> int:
    from ..benchmarks.overhead import engine_overhead, generation_speed

    model_options = {"--model": args.model, "--max-tokens": args.max_tokens, "--runs": args.runs}
    if args.engine_only and any(v is not None for v in model_options.values()):
        given = ", ".join(k for k, v in model_options.items() if v is not None)
        raise ConfigError(f"--engine-only measures no model, so {given} would do nothing: drop it, or drop "
                          "--engine-only")
    report: dict[str, Any] = {}
    progress = None if args.json else (lambda msg: err.print(msg, style="dim", markup=False))
    if not args.engine_only:  # the options given; generation_speed holds the defaults
        given_options = {k: v for k, v in (("model", args.model), ("max_tokens", args.max_tokens),
                                           ("runs", args.runs)) if v is not None}
        report.update(generation_speed(**given_options, progress=progress))
    report.update(engine_overhead(args.queries))
    report.update(engine_overhead(args.queries, calibrated=True))
    if args.json:
        print(strict_json.dumps(report))
        return 0
    if not args.engine_only:
        t = Table("variant", "tokens/s (median)", "vs plain (median of rounds, range)")
        for k in ("plain", "capture", "builtin"):
            v = report["tokens_per_s"][k]
            if k == "plain":
                t.add_row(k, f"{v:.1f}", "1x")
            else:
                lo, hi = report[f"{k}_over_plain_range"]
                t.add_row(k, f"{v:.1f}", f"{report[f'{k}_over_plain']:.2f}x ({lo:.2f}–{hi:.2f})")
        out.print(t)
        if len(set(report["tokens"].values())) > 1:
            err.print(f"warning: the variants generated different numbers of tokens ({report['tokens']}): "
                      "their speeds are not of one answer", markup=False)
    for key, rule in (("engine_overhead", "threshold rule"), ("engine_overhead_calibrated", "default calibrated rule")):
        paths = ", ".join(f"{n} tier{'s' * (n != '1')} {v:.2g} ms" for n, v in report[f"{key}_ms_p50_by_tiers"].items())
        out.print(f"engine overhead per query, {rule} ({args.queries} scripted 3-tier queries of a few words): "
                  f"p50 {report[f'{key}_ms_p50']:.2g} ms · p99 {report[f'{key}_ms_p99']:.2g} ms · p50 by tiers "
                  f"asked: {paths}", markup=False)
    return 0


def cmd_bench_run(args: argparse.Namespace) -> int:
    from ..benchmarks.traces import CROSS_CHECK, TraceStore, run_cross_checks, run_traces, tier_specs
    from ..datasets import load
    from ..quality.domain import prompt_domain

    items = load(args.dataset, args.limit)
    if not items:
        raise ConfigError(f"{args.dataset} holds no items: nothing to trace (a .jsonl dataset needs one JSON object "
                          "per line, with a 'prompt' and a 'reference')")
    dataset = items[0].dataset
    cascade, _, _ = _bench_cascade(args.config)
    max_tokens = args.max_tokens or cascade.settings.max_tokens
    store = TraceStore(Path(args.traces) if args.traces else None)
    n_tiers = len(cascade.tiers)
    with progress_bar(f"{dataset} x {n_tiers} tier{'s' * (n_tiers != 1)}") as bar:
        task = bar.add_task("", total=len(items) * len(cascade.tiers))

        failures: dict[str, str] = {}  # tier -> the first failure's message, said in full after the bar

        def failed_once(tier: str, error: str) -> None:
            failures.setdefault(tier, error)

        def shown(msg: str) -> str:  # the bar shows one short line; a failure is said in full after it
            return msg.splitlines()[0][:120] if msg else msg

        def progress(msg: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=shown(msg))

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
        print(strict_json.dumps({"dataset": dataset, "tiers": summary, "traces": str(store.root)}))
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
    # two tiers of one model and settings share one trace file and are traced once, as the first: the
    # second's failures are the first's
    key_of = {s.name: (s.model, s.key) for s in tier_specs(cascade, max_tokens)}
    for name, n in failed.items():  # failed calls are not traces: a rerun tries them again
        what = "the cross-check" if name == CROSS_CHECK else f"tier {name}"
        first = failures.get(name) or next((m for other, m in failures.items() if other != CROSS_CHECK
                                            and key_of.get(other) == key_of.get(name)), "(no message)")
        err.print(f"error: {what} failed on {n} of {len(items)} items, first: {first}; "
                  "fix it and run the same command again (it traces only what is missing)", markup=False)
    return 1 if failed else 0


def cmd_bench_replay(args: argparse.Namespace) -> int:
    from ..benchmarks.replay import OfflineRule, replay, summarize
    from ..benchmarks.report import DatasetPairs, DraftFeatures
    from ..benchmarks.traces import TraceStore, cross_check_spec, prompt_sha256, regraded, tier_specs
    from ..datasets import load

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
    with progress_bar(f"{name} live") as bar:
        task = bar.add_task("", total=len(items))

        def progress(row: Any) -> None:
            said = "agrees" if row.decision_agrees else "differs"
            bar.update(task, advance=1, description=f"{row.item_id}: {said}")

        rows = replay(cascade, items, small, large, offline, lambda t: checks.get(t.item_id),
                      max_tokens=max_tokens, on_item=progress)
    summary = {"dataset": name, "config": _config_name(args), **summarize(rows, cascade.tiers[0].name)}
    if args.json:
        print(strict_json.dumps(summary))
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
