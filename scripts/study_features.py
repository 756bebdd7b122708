"""Would more draft features rank drafts better? A record of candidates tried and not adopted.

The shipped calibrators read logprob statistics, answer structure, the question and (opt-in) the
examples check and the cross-check (`edgecascade/quality/calibration.py`). This study adds one
candidate feature at a time and measures the out-of-fold AUROC for "the draft is right" (5 folds
x --repeats, stratified, each fold fitted with `fit_calibration` as the report fits) against the
same features without it. It reads only items the shipped calibrations were fitted on (GSM8K's
first 1,100 items, HumanEval's calibration half), so it chooses nothing on held-out or fresh data.

Candidates, each read from the traces alone:
- math: the logprobs and top-1/top-2 margins of the tokens that write operators (the choice of
  operation), of every number, and of the results after "="; the first and last 32 tokens; whether
  the final number is one the question states; its scale against the question's largest number;
  the share of numbers neither given nor computed; how many "=" the answer writes; decimal results;
- the cross-check's program: its logprobs, its length, and its agreement weighted by its mean logprob;
- code (no execution): a name used but never defined; the prompt's function defined; parameters it
  never reads; a return with a value; statement count; the logprobs of the body past the docstring;
  loops; nested functions; lines.

    .venv/bin/python scripts/study_features.py            # GSM8K (with and without the cross-check), HumanEval
"""

from __future__ import annotations

import argparse
import ast
import builtins
import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from edgecascade.benchmarks.report import DEFAULT_SEED, DraftFeatures, fold_assignment
from edgecascade.benchmarks.traces import Trace
from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets
from edgecascade.quality import structure as st
from edgecascade.quality.calibration import FEATURE_NAMES, auroc, fit_calibration
from edgecascade.quality.crosscheck import CROSS_CHECK_FEATURES
from edgecascade.quality.features import logprob_features
from edgecascade.types import Completion

_OPS = {"+", "-", "*", "/", "×", "\\times", "\\cdot", "\\div", "÷", "\\frac", "x"}
_NUM_TOKEN = re.compile(r"^\s*\$?\d[\d,]*\.?\d*\s*$")


def _stat(x: np.ndarray, how: Callable[[np.ndarray], float]) -> float:
    return float(how(x)) if x.size else 0.0


def math_candidates(c: Completion, prompt: str | None) -> dict[str, float]:
    lp = c.logprobs
    assert lp is not None
    x, top, toks = lp.logprobs, lp.top_logprobs, lp.tokens
    margin = top[:, 0] - top[:, 1] if top.ndim == 2 and top.shape[1] >= 2 else np.zeros(len(x))
    is_op = np.array([t.strip() in _OPS for t in toks])
    is_num = np.array([bool(_NUM_TOKEN.match(t)) for t in toks])
    after_eq = np.zeros(len(toks), dtype=bool)
    for i, t in enumerate(toks[:-1]):
        if t.strip().endswith("="):
            j = i + 1
            while j < len(toks) and toks[j].strip() in ("", "$"):
                j += 1
            if j < len(toks) and is_num[j]:
                after_eq[j] = True
    f = {"ops_lp_min": _stat(x[is_op], np.min), "ops_lp_mean": _stat(x[is_op], np.mean),
         "ops_margin_min": _stat(margin[is_op], np.min), "num_lp_mean": _stat(x[is_num], np.mean),
         "num_margin_p10": _stat(margin[is_num], lambda v: np.percentile(v, 10)),
         "result_lp_min": _stat(x[after_eq], np.min), "result_lp_mean": _stat(x[after_eq], np.mean),
         "head_lp_mean": float(x[:32].mean()), "head_margin_mean": float(margin[:32].mean()),
         "tail_lp_mean": float(x[-32:].mean()), "final_in_prompt": 0.0, "final_scale": 0.0, "novel_share": 0.0,
         "n_equals_log": math.log1p(c.text.count("="))}
    given = st._values(prompt or "")
    stated = list(st._ANSWER_IS.finditer(c.text))
    v = st._num(stated[-1].group(1)) if stated else None
    if v is not None:
        f["final_in_prompt"] = float(abs(v) in given)
        f["final_scale"] = abs(math.log10(abs(v) + 1) - math.log10(max(given) + 1)) if given else 0.0
    results = {abs(r) for r in (st._num(y) for y in st._EQUALS_NUMBER.findall(c.text)) if r is not None}
    written = [abs(r) for r in (st._num(y) for y in st._NUMBER.findall(c.text)) if r is not None]
    if written:
        f["novel_share"] = float(np.mean([w not in given and w not in results for w in written]))
    f["decimal_results"] = float(any(not r.is_integer() for r in results))
    return f


def cross_check_candidates(program: Trace | None, agrees: float) -> dict[str, float]:
    lp = program.completion().logprobs if program is not None else None
    lf = logprob_features(lp) if lp is not None else None
    if lf is None:
        return dict.fromkeys(("cc_lp_mean", "cc_lp_p10", "cc_lp_min", "cc_agree_x_lp", "cc_tokens_log"), 0.0)
    return {"cc_lp_mean": lf.mean_logprob, "cc_lp_p10": lf.p10_logprob, "cc_lp_min": lf.min_logprob,
            "cc_agree_x_lp": agrees * lf.mean_logprob, "cc_tokens_log": math.log1p(lf.n_tokens)}


def code_candidates(c: Completion, prompt: str | None) -> dict[str, float]:
    code = st.extract_code(c.text)
    f = dict.fromkeys(("undefined_name", "entry_defined", "unused_params", "returns_value", "stmts_log",
                       "body_lp_mean", "body_lp_p10", "loops", "nested_defs"), 0.0)
    f["lines_log"] = math.log1p(code.count("\n"))
    entry = (re.findall(r"^\s*def\s+(\w+)\s*\(", prompt or "", re.MULTILINE) or [None])[-1]
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return f
    defined = set(dir(builtins))
    for src in (tree, _parse_or_none(prompt or "")):
        for n in ast.walk(src) if src is not None else ():
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(n.name)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                defined.update((a.asname or a.name).split(".")[0] for a in n.names)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)) or isinstance(n, ast.arg):
                defined.add(n.id if isinstance(n, ast.Name) else n.arg)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                defined.add(n.name)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    f["undefined_name"] = float(bool(used - defined))
    target = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if target is None:
        return f
    f["entry_defined"] = 1.0
    params = [a.arg for a in target.args.args]
    read = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    f["unused_params"] = float(np.mean([p not in read for p in params])) if params else 0.0
    f["returns_value"] = float(any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(target)))
    f["stmts_log"] = math.log1p(sum(isinstance(n, ast.stmt) for n in ast.walk(target)))
    f["loops"] = float(sum(isinstance(n, (ast.For, ast.While, ast.comprehension)) for n in ast.walk(target)))
    f["nested_defs"] = float(sum(isinstance(n, ast.FunctionDef) for n in ast.walk(target)) - 1)
    body = target.body[1:] if len(target.body) > 1 and isinstance(target.body[0], ast.Expr) else target.body
    lines = code.splitlines(keepends=True)
    start, at = sum(len(line) for line in lines[: body[0].lineno - 1]), c.text.find(code)
    lps = st._span_logprobs(c, at + start, at + len(code)) if at >= 0 else np.zeros(0)
    f["body_lp_mean"], f["body_lp_p10"] = _stat(lps, np.mean), _stat(lps, lambda v: np.percentile(v, 10))
    return f


def _parse_or_none(src: str) -> ast.Module | None:
    try:
        return ast.parse(src)
    except SyntaxError:
        return None


def cv_auroc(rows: Sequence[dict[str, float]], labels: Sequence[bool], names: Sequence[str], repeats: int) -> float:
    """Mean out-of-fold AUROC over ``repeats`` 5-fold cuts, each fold fitted as the report fits."""
    y = np.asarray(labels, dtype=bool)
    got = []
    for r in range(repeats):
        fold = fold_assignment(labels, [None] * len(labels), seed=DEFAULT_SEED + r, folds=5)
        scores = np.empty(len(y))
        for f in range(int(fold.max()) + 1):
            train, test = np.flatnonzero(fold != f).tolist(), np.flatnonzero(fold == f).tolist()
            cal = fit_calibration([rows[i] for i in train], y[train].tolist(), model="m", features=names,
                                  seed=DEFAULT_SEED)
            scores[test] = cal.predict_many([rows[i] for i in test])
        got.append(auroc(scores, y))
    return float(np.mean(got))


def study(what: str, rows: list[dict[str, float]], labels: list[bool], base: Sequence[str],
          extra: list[dict[str, float]], repeats: int) -> None:
    merged = [{**r, **e} for r, e in zip(rows, extra, strict=True)]
    ref = cv_auroc(merged, labels, base, repeats)
    y = np.asarray(labels, dtype=bool)
    print(f"\n{what}: {len(rows)} drafts, {y.mean():.1%} right; out-of-fold AUROC {ref:.4f} with the shipped features")
    for name in extra[0]:
        alone = auroc(np.array([e[name] for e in extra]), y)
        print(f"  + {name:18s} alone {alone:.3f}   added {cv_auroc(merged, labels, [*base, name], repeats) - ref:+.4f}")
    print(f"  + all of them                  added {cv_auroc(merged, labels, [*base, *extra[0]], repeats) - ref:+.4f}")


def items(config: str, dataset: str, first: int | None) -> tuple[list[Sequence[Trace]], DraftFeatures]:
    """The items a shipped calibration was fitted on: GSM8K's first ``first``, or a calibration half."""
    ns = argparse.Namespace(config=config, datasets=[dataset], fresh_from=[(dataset, first)] if first else None,
                            traces=None, max_tokens=None, seed=DEFAULT_SEED)
    cascade, _, _ = _bench_cascade(config)
    [data], _ = _traced_datasets(ns, cascade, judges=False)  # the items judged elsewhere are not even loaded
    return list(data.calibration), DraftFeatures([data], config != "default")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=1100,
                    help="the calibrations were fitted on GSM8K's first N items (more would read fresh ones)")
    ap.add_argument("--repeats", type=int, default=5, help="5-fold cuts per measurement")
    args = ap.parse_args()
    for config in ("default", "calibrated"):
        pairs, feats = items(config, "gsm8k", args.first)
        drafts = [p[0] for p in pairs]
        rows = [feats(t) for t in drafts]
        extra = [math_candidates(t.completion(), feats.prompt(t)) for t in drafts]
        base: list[str] = list(FEATURE_NAMES)
        if config == "calibrated":
            base += CROSS_CHECK_FEATURES
            extra = [{**e, **cross_check_candidates(feats.cross_checks.get((t.dataset, t.item_id)),
                                                    r["cross_check_agrees"])}
                     for e, t, r in zip(extra, drafts, rows, strict=True)]
        study(f"GSM8K's first {args.first} ({config} config)", rows, [t.correct for t in drafts], base, extra,
              args.repeats)
    pairs, feats = items("default", "humaneval", None)
    drafts = [p[0] for p in pairs]
    study("HumanEval's calibration half (no examples check)", [feats(t) for t in drafts],
          [t.correct for t in drafts], FEATURE_NAMES,
          [code_candidates(t.completion(), feats.prompt(t)) for t in drafts], args.repeats * 4)


if __name__ == "__main__":
    main()
