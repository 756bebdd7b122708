#!/usr/bin/env python3
"""Measure the draft tier's acceptance threshold for a two-model cascade.

Runs a draft model and a strong model greedily on the first N items of GSM8K and HumanEval,
grades every answer, records each draft's confidence scores, and then picks, for each score, the
lowest threshold at which the simulated cascade

    answer = draft   if the draft was not cut off (finish_reason != "length") and score >= t
             strong  otherwise

keeps at least ``--target`` x the strong model's accuracy on the same items. Everything (raw rows
with the answers' text, the per-score results and the recommendation) goes to one JSON file, so
the choice can be re-derived without regenerating (``--no-generate``), and an interrupted run
continues where it stopped (rows with the same model, item, prompt and settings are reused).

Example (the pair of the default cascade, whose rule is now learned by `edgecascade bench report`;
this script sets raw thresholds such as configs/tiny.toml's)::

    python scripts/measure_thresholds.py                     # ~20-30 min on 2 CPU cores
    python scripts/measure_thresholds.py --no-generate --target 0.9   # re-derive from rows
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))

from edgecascade import datasets  # noqa: E402
from edgecascade.config import CHECK_NAMES, RepetitionCheck, TierConfig  # noqa: E402
from edgecascade.datasets import Item  # noqa: E402

#: The raw logprob scores measured here (LogprobFeatures.score names). A config's "calibrated"
#: confidence is not one of them: it is fitted on top of these, elsewhere.
CONFIDENCE_SCORES: tuple[str, ...] = ("geo_mean_prob", "p10_prob", "min_prob", "mean_margin_prob")

DEFAULT_DRAFT = "qwen2.5-coder-0.5b"
DEFAULT_STRONG = "qwen2.5-coder-1.5b"
DEFAULT_OUT = REPO / "configs" / "thresholds.json"
DATASET_NAMES = ("gsm8k", "humaneval")
SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- arguments


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "Measure the acceptance threshold of a draft -> strong cascade on the first N items of "
            "GSM8K and HumanEval, and write it (with every raw row) to a JSON file."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--draft", default=DEFAULT_DRAFT, help="draft (cheap) model: registry name or .gguf path")
    p.add_argument("--strong", default=DEFAULT_STRONG, help="strong model: registry name or .gguf path")
    p.add_argument("--n", type=int, default=20, help="items per dataset (the first N, in file order)")
    p.add_argument("--datasets", default=",".join(DATASET_NAMES),
                   help="comma-separated datasets to use")
    p.add_argument("--max-tokens", type=int, default=384, help="generation limit per answer")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (decoding is greedy anyway)")
    p.add_argument("--n-ctx", type=int, default=4096, help="context window allocated per model")
    p.add_argument("--target", type=float, default=0.95,
                   help="the cascade must reach this fraction of the strong model's accuracy")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write (and resume from)")
    p.add_argument("--humaneval-timeout", type=float, default=10.0, help="seconds per HumanEval test run")
    p.add_argument("--wait-for-models", type=float, default=900.0,
                   help="seconds to wait for the models to be pulled (another process may be pulling)")
    p.add_argument("--regrade", action="store_true",
                   help="grade the stored answers again with the current graders before analysing")
    p.add_argument("--no-generate", action="store_true",
                   help="generate nothing: re-derive the thresholds from the rows already in --out")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be at least 1")
    if not 0 < args.target <= 1:
        p.error("--target must be in (0, 1]")
    if args.max_tokens < 1:
        p.error("--max-tokens must be at least 1")
    args.datasets = [d.strip().lower() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(datasets.DATASETS))
    if unknown or not args.datasets:
        p.error(f"--datasets: unknown {unknown}; use some of {', '.join(sorted(datasets.DATASETS))}")
    return args


# --------------------------------------------------------------------------- rows and resuming


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_tokens": args.max_tokens, "temperature": 0.0, "seed": args.seed, "n_ctx": args.n_ctx}


def prompt_sha(item: Item) -> str:
    return hashlib.sha256(item.prompt.encode("utf-8")).hexdigest()[:16]


def row_key(model: str, dataset: str, item_id: str, settings: dict[str, Any], psha: str) -> str:
    s = settings
    return (f"{model}|{dataset}|{item_id}|{psha}|max_tokens={s['max_tokens']}|temperature={s['temperature']:g}"
            f"|seed={s['seed']}|n_ctx={s['n_ctx']}")


def key_of_row(r: dict[str, Any]) -> str:
    return row_key(r["model"], r["dataset"], r["item_id"], r["settings"], r["prompt_sha256"])


def read_existing(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"error: {path} exists but cannot be read as JSON ({e}); move it away to start afresh")
    if not isinstance(data, dict) or not isinstance(data.get("rows", []), list):
        sys.exit(f"error: {path} is not a thresholds file (no 'rows' list); move it away to start afresh")
    return data


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Atomic: an interrupted write never leaves a half file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# --------------------------------------------------------------------------- generation


def wait_for_models(names: Sequence[str], wait_s: float, console: Any) -> None:
    from edgecascade.errors import ModelNotFoundError
    from edgecascade.models import is_pulled

    def in_registry(name: str) -> bool:
        try:
            is_pulled(name)
            return True
        except ModelNotFoundError:  # a .gguf path (or a typo, which build_provider reports)
            return False

    registry = [n for n in dict.fromkeys(names) if in_registry(n)]
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        missing = [n for n in registry if not is_pulled(n)]
        if not missing:
            return
        if time.monotonic() >= deadline:
            sys.exit(
                f"error: model(s) {', '.join(missing)} are still not pulled after {wait_s:g} s: run "
                + " && ".join(f"`edgecascade models pull {m}`" for m in missing) + " and try again"
            )
        if not announced:
            console.print(f"[yellow]waiting for {', '.join(missing)} to be pulled (up to {wait_s:g} s); "
                          f"if nothing is pulling them, run `edgecascade models pull NAME`[/]")
            announced = True
        time.sleep(10)


def generate_row(provider: Any, role: str, model: str, item: Item, args: argparse.Namespace) -> dict[str, Any]:
    from edgecascade.errors import EdgecascadeError
    from edgecascade.quality.features import logprob_features
    from edgecascade.quality.policy import run_checks
    from edgecascade.types import Message, Request

    settings = settings_of(args)
    req = Request(messages=[Message("user", item.prompt)], max_tokens=args.max_tokens,
                  temperature=0.0, seed=args.seed)
    base = {"role": role, "model": model, "dataset": item.dataset, "item_id": item.id,
            "prompt_sha256": prompt_sha(item), "settings": settings}
    t0 = time.perf_counter()
    try:
        c = asyncio.run(provider.complete(req))
    except EdgecascadeError as e:
        return {**base, "error": f"{type(e).__name__}: {e}", "correct": False, "finish_reason": "error",
                "truncated": False, "completion_tokens": 0, "scores": {}, "text": ""}
    wall = time.perf_counter() - t0

    correct, grade_detail = grade_text(item, c.text, args)
    feats = logprob_features(c.logprobs) if c.logprobs is not None else None
    scores = {name: (_finite(feats.score(name)) if feats is not None else None) for name in CONFIDENCE_SCORES}
    failed = [ch.name for ch in run_checks(c, CHECK_NAMES, RepetitionCheck(), item.prompt) if not ch.passed]
    return {
        **base,
        "correct": bool(correct),
        "grade_detail": grade_detail,
        "finish_reason": c.finish_reason,
        "truncated": c.finish_reason == "length",
        "checks_failed": failed,
        "completion_tokens": c.usage.completion_tokens,
        "prompt_tokens": c.usage.prompt_tokens,
        "scores": scores,
        "features": {k: _finite(v) if isinstance(v, float) else v for k, v in feats.to_dict().items()}
        if feats is not None else None,
        "wall_s": round(wall, 3),
        "load_s": round(c.timings.load_s, 3),
        "tokens_per_s": _finite(c.tokens_per_s),
        "text": c.text,
    }


def generate(args: argparse.Namespace, items: list[Item], rows_by_key: dict[str, dict[str, Any]],
             on_row: Any, console: Any) -> None:
    from edgecascade.cli.console import progress_bar
    from edgecascade.providers import build_provider
    from edgecascade.providers.llamacpp import unload_all

    settings = settings_of(args)
    plan: list[tuple[str, str, Item]] = []
    for role, model in (("draft", args.draft), ("strong", args.strong)):
        for item in items:
            key = row_key(model, item.dataset, item.id, settings, prompt_sha(item))
            if key not in rows_by_key or "error" in rows_by_key[key]:
                plan.append((role, model, item))
    done = 2 * len(items) - len(plan)
    if done:
        console.print(f"resuming: {done} of {2 * len(items)} answers already in {args.out}")
    if not plan:
        return
    wait_for_models([args.draft, args.strong], args.wait_for_models, console)

    providers: dict[str, Any] = {}
    with progress_bar("generating") as progress:  # on stderr; one line per answer where no bar can be drawn
        task = progress.add_task("", total=len(plan))
        current_model = None
        for role, model, item in plan:
            if model != current_model:
                unload_all()  # one model in memory at a time
                current_model = model
                if model not in providers:
                    providers[model] = build_provider(TierConfig(model=model, n_ctx=args.n_ctx))
            row = generate_row(providers[model], role, model, item, args)
            on_row(row)
            mark = "error" if "error" in row else ("ok" if row["correct"] else "wrong")
            progress.update(task, advance=1,
                            description=f"{role} {model} {item.id}: {mark}, {row['completion_tokens']} tok"
                            + (" (cut off)" if row.get("truncated") else "") + f" ({row.get('wall_s', 0):.1f} s)")
        unload_all()


def grade_text(item: Item, text: str, args: argparse.Namespace) -> tuple[bool, str]:
    if item.dataset == "humaneval":
        outcome = datasets.run_humaneval(text, item, timeout_s=args.humaneval_timeout)
        return outcome.passed, outcome.reason
    got = datasets.extract_gsm8k_answer(text)
    return datasets.grade_gsm8k(text, item.reference), f"extracted {got!r}, reference {item.reference}"


def regrade(items: list[Item], rows_by_key: dict[str, dict[str, Any]], settings: dict[str, Any],
            args: argparse.Namespace, console: Any) -> None:
    changed = 0
    for item in items:
        for model in dict.fromkeys((args.draft, args.strong)):
            row = rows_by_key.get(row_key(model, item.dataset, item.id, settings, prompt_sha(item)))
            if row is None or "error" in row:
                continue
            correct, detail = grade_text(item, row.get("text", ""), args)
            changed += correct != row["correct"]
            row["correct"], row["grade_detail"] = correct, detail
    console.print(f"regraded the stored answers: {changed} grades changed")


# --------------------------------------------------------------------------- analysis


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Rank-based AUROC (Mann-Whitney U), ties get average ranks; None with only one class."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0  # average of 1-based ranks i+1..j+1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _floor3(x: float) -> float:
    return math.floor(x * 1000.0 + 1e-9) / 1000.0


def simulate(pairs: list[tuple[dict[str, Any], dict[str, Any]]], score: str,
             threshold: float | None) -> dict[str, Any]:
    """The cascade at one threshold (None: never accept a draft)."""
    accepted, correct = [], []
    for d, s in pairs:
        v = d["scores"].get(score)
        ok = threshold is not None and not d.get("truncated") and "error" not in d and v is not None \
            and v >= threshold
        accepted.append(ok)
        correct.append(bool(d["correct"]) if ok else bool(s["correct"]))
    n = len(pairs)
    return {"accepted": int(sum(accepted)), "draft_share": sum(accepted) / n if n else 0.0,
            "cascade_accuracy": sum(correct) / n if n else 0.0,
            "accepted_draft_accuracy": (sum(c for a, c in zip(accepted, correct) if a) / sum(accepted))
            if any(accepted) else None}


def choose_threshold(pairs: list[tuple[dict[str, Any], dict[str, Any]]], score: str,
                     target: float) -> dict[str, Any]:
    """The lowest 3-decimal threshold whose cascade reaches target x strong accuracy.

    Candidates are every draft's score rounded down to 3 decimals (so the rounded value that goes
    into a config accepts exactly what was simulated). The lowest feasible one accepts the most
    drafts, which is the tie-break the spec asks for.
    """
    n = len(pairs)
    strong_acc = sum(bool(s["correct"]) for _, s in pairs) / n
    need = target * strong_acc
    values = sorted({_floor3(d["scores"][score]) for d, _ in pairs
                     if d["scores"].get(score) is not None and not d.get("truncated") and "error" not in d})
    chosen: float | None = None
    for t in values:  # ascending: the first feasible is the lowest
        if simulate(pairs, score, t)["cascade_accuracy"] >= need - 1e-12:
            chosen = t
            break
    sim = simulate(pairs, score, chosen)
    scored = [(d["scores"][score], bool(d["correct"])) for d, _ in pairs if d["scores"].get(score) is not None]
    out = {
        "threshold": chosen,
        "accepts_any": chosen is not None,  # False: no threshold lets a draft through at the target
        **sim,
        "relative_accuracy": sim["cascade_accuracy"] / strong_acc if strong_acc else None,
        "auroc": auroc([v for v, _ in scored], [c for _, c in scored]),
        "auroc_untruncated": auroc(
            [d["scores"][score] for d, _ in pairs if d["scores"].get(score) is not None and not d.get("truncated")],
            [bool(d["correct"]) for d, _ in pairs if d["scores"].get(score) is not None and not d.get("truncated")],
        ),
        "by_dataset": {},
    }
    for name in sorted({d["dataset"] for d, _ in pairs}):
        sub = [(d, s) for d, s in pairs if d["dataset"] == name]
        sub_scored = [(d["scores"][score], bool(d["correct"])) for d, _ in sub
                      if d["scores"].get(score) is not None]
        out["by_dataset"][name] = {
            **{k: v for k, v in simulate(sub, score, chosen).items()
               if k in ("accepted", "draft_share", "cascade_accuracy")},
            # within one dataset: does the score rank right drafts above wrong ones there? (the pooled
            # AUROC also rewards a score that merely tells the datasets apart)
            "auroc": auroc([v for v, _ in sub_scored], [c for _, c in sub_scored]),
        }
    return out


def analyse(pairs: list[tuple[dict[str, Any], dict[str, Any]]], target: float) -> dict[str, Any]:
    n = len(pairs)
    per_score = {name: choose_threshold(pairs, name, target) for name in CONFIDENCE_SCORES}
    # most drafts answered at the target; ties: higher pooled AUROC; still tied: the first in
    # CONFIDENCE_SCORES order (max keeps the first maximum)
    best = max(CONFIDENCE_SCORES, key=lambda k: (per_score[k]["draft_share"], per_score[k]["auroc"] or 0.0))
    rec = per_score[best]
    by_ds: dict[str, dict[str, Any]] = {}
    for name in sorted({d["dataset"] for d, _ in pairs}):
        sub = [(d, s) for d, s in pairs if d["dataset"] == name]
        by_ds[name] = {
            "n": len(sub),
            "draft_accuracy": sum(bool(d["correct"]) for d, _ in sub) / len(sub),
            "strong_accuracy": sum(bool(s["correct"]) for _, s in sub) / len(sub),
            "draft_truncated": sum(bool(d.get("truncated")) for d, _ in sub),
            "strong_truncated": sum(bool(s.get("truncated")) for _, s in sub),
        }
    other_checks = sum(
        1 for d, _ in pairs if not d.get("truncated") and set(d.get("checks_failed") or []) - {"truncated"}
    )
    return {
        "draft_accuracy": sum(bool(d["correct"]) for d, _ in pairs) / n,
        "strong_accuracy": sum(bool(s["correct"]) for _, s in pairs) / n,
        "draft_truncated": sum(bool(d.get("truncated")) for d, _ in pairs),
        "strong_truncated": sum(bool(s.get("truncated")) for _, s in pairs),
        "drafts_failing_other_checks": other_checks,
        "by_dataset": by_ds,
        "per_score": per_score,
        "recommended": {
            "confidence": best,
            "min_confidence": round(rec["threshold"], 3) if rec["threshold"] is not None else None,
        },
    }


def print_summary(console: Any, result: dict[str, Any], args: argparse.Namespace, n_pairs: int) -> None:
    from rich.table import Table

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    head = Table(title=f"{args.draft} -> {args.strong}: {n_pairs} items, max_tokens {args.max_tokens}, greedy")
    for col in ("dataset", "n", "draft acc", "strong acc", "draft cut off", "strong cut off"):
        head.add_column(col, justify="right" if col != "dataset" else "left")
    for name, b in result["by_dataset"].items():
        head.add_row(name, str(b["n"]), pct(b["draft_accuracy"]), pct(b["strong_accuracy"]),
                     str(b["draft_truncated"]), str(b["strong_truncated"]))
    head.add_row("all", str(n_pairs), pct(result["draft_accuracy"]), pct(result["strong_accuracy"]),
                 str(result["draft_truncated"]), str(result["strong_truncated"]), style="bold")
    console.print(head)

    t = Table(title=f"per score: lowest threshold with cascade accuracy >= {args.target:g} x strong "
                    f"({pct(args.target * result['strong_accuracy'])})")
    for col in ("score", "threshold", "draft answers", "cascade acc", "vs strong", "AUROC", "AUROC (not cut)",
                *(f"{ds} draft share" for ds in result["by_dataset"]),
                *(f"{ds} AUROC" for ds in result["by_dataset"])):
        t.add_column(col, justify="left" if col == "score" else "right")
    rec = result["recommended"]["confidence"]
    for name, r in result["per_score"].items():
        t.add_row(
            name + (" *" if name == rec else ""),
            "none (all escalate)" if r["threshold"] is None else f"{r['threshold']:.3f}",
            f"{r['accepted']}/{n_pairs} ({pct(r['draft_share'])})",
            pct(r["cascade_accuracy"]),
            pct(r["relative_accuracy"]),
            "-" if r["auroc"] is None else f"{r['auroc']:.3f}",
            "-" if r["auroc_untruncated"] is None else f"{r['auroc_untruncated']:.3f}",
            *(pct(b["draft_share"]) for b in r["by_dataset"].values()),
            *("-" if b["auroc"] is None else f"{b['auroc']:.3f}" for b in r["by_dataset"].values()),
            style="bold" if name == rec else None,
        )
    console.print(t)
    r = result["recommended"]
    console.print(f"recommended: confidence = {r['confidence']!r}, min_confidence = {r['min_confidence']} "
                  f"(* above). Small sample: treat as a first estimate, not a calibration.")
    if result["drafts_failing_other_checks"]:
        console.print(f"note: {result['drafts_failing_other_checks']} drafts that were not cut off fail another "
                      "default check (empty/repetition/refusal); the simulation ignores those checks")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the tables
        console = Console(width=150)
    command = " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0], REPO)
                                                if argv is None else "scripts/measure_thresholds.py",
                                                *(sys.argv[1:] if argv is None else argv)])
    existing = read_existing(args.out)
    rows_by_key: dict[str, dict[str, Any]] = {}
    foreign_rows: list[Any] = []  # rows this version cannot key: kept in the file, never used
    for r in existing.get("rows", []):
        try:
            rows_by_key[key_of_row(r)] = r
        except (KeyError, TypeError):
            foreign_rows.append(r)

    items: list[Item] = []
    for name in args.datasets:
        items.extend(datasets.load(name, args.n))

    header = {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "draft": args.draft,
        "strong": args.strong,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "seed": args.seed,
        "n_ctx": args.n_ctx,
        "datasets": args.datasets,
        "n_per_dataset": args.n,
        "target": args.target,
        "rule": "accept the draft when finish_reason != 'length' and score >= threshold; else the strong "
                "model's answer",
    }

    def save(partial: bool, analysis: dict[str, Any] | None = None) -> None:
        obj = dict(header)
        if partial:
            obj["status"] = "incomplete: generation in progress or interrupted; rerun the command to resume"
        if analysis is not None:
            obj.update(analysis)
        obj["rows"] = [*rows_by_key.values(), *foreign_rows]
        write_json(args.out, obj)

    if not args.no_generate:
        def on_row(row: dict[str, Any]) -> None:
            rows_by_key[key_of_row(row)] = row
            save(partial=True)

        try:
            generate(args, items, rows_by_key, on_row, console)
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted: {len(rows_by_key)} rows saved in {args.out}; rerun to resume[/]")
            return 130

    settings = settings_of(args)
    if args.regrade:
        regrade(items, rows_by_key, settings, args, console)
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    missing = 0
    for item in items:
        psha = prompt_sha(item)
        d = rows_by_key.get(row_key(args.draft, item.dataset, item.id, settings, psha))
        s = rows_by_key.get(row_key(args.strong, item.dataset, item.id, settings, psha))
        if d is None or s is None:
            missing += 1
            continue
        pairs.append((d, s))
    if missing:
        console.print(f"[red]{missing} of {len(items)} items lack a draft or strong row for these settings"
                      f"{'' if args.no_generate else ' (generation errors?)'}[/]")
    if not pairs:
        console.print("[red]nothing to analyse[/]")
        return 1
    errors = sum("error" in r for p in pairs for r in p)
    if errors:
        console.print(f"[yellow]{errors} answers are generation errors (counted as wrong drafts / wrong strong "
                      "answers); rerun to retry them[/]")
    analysis = analyse(pairs, args.target)
    analysis = {"n_items": len(pairs), **analysis}
    save(partial=bool(missing), analysis=analysis)
    print_summary(console, analysis, args, len(pairs))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
