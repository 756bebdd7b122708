"""What the benchmark commands share: the cascade a benchmark traces, the traced datasets a report
or reliability study reads (split into calibration and held-out parts), and the `bench run`
command that traces what is missing."""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, EdgecascadeError
from .console import err

if TYPE_CHECKING:
    from ..benchmarks.report import DatasetPairs
    from ..benchmarks.traces import TierSpec, Trace, TraceStore
    from ..config import CascadeConfig
    from ..engine import Cascade


def _bench_cascade(config: str | None) -> tuple[Cascade, CascadeConfig, bool]:
    """The cascade a benchmark traces, its config, and whether its first tier's rule is as configured.

    Traces do not depend on acceptance rules, so a tier whose calibrated rule relies on the model's
    shipped calibration and has none yet (a new model, before its first `bench report
    --save-calibration`) is traced with its checks only, and said so. Every other config error,
    including an explicit ``calibration`` path that does not exist, still stops here."""
    from ..config import AcceptRule, load_config
    from ..engine import Cascade, calibration_file, missing_target
    from ..quality.calibration import Calibration

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


def _traced_datasets(args: argparse.Namespace, cascade: Cascade, *, judges: bool = True
                     ) -> tuple[list[DatasetPairs], TierSpec]:
    """Each dataset's items traced on both the first and the last tier, split (``args.seed``) into
    calibration and held-out halves; and the first tier's spec. With ``args.fresh_from`` (NAME=N
    pairs), that dataset's calibration part is its first N items and its held-out part the items
    from N on. ``judges``: whether the caller judges the held-out part (a report does; the
    reliability study reads only the calibration part, so it needs no item from N on)."""
    if len(cascade.tiers) < 2:
        raise ConfigError("a benchmark compares a small and a large tier: the config needs at least two tiers")
    from ..benchmarks.report import DatasetPairs, split_ids
    from ..benchmarks.traces import (
        TraceStore,
        cross_check_spec,
        paired,
        priced,
        prompt_sha256,
        regraded,
        tier_specs,
    )
    from ..datasets import DATASETS, Item, dataset_name, load
    from ..pricing import is_priced

    names = [dataset_name(g) for g in args.datasets]
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
        name = dataset_name(given)
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
        # each tier's costs at its price now (a trace keeps the price it was made at)
        traces = {s.name: priced(store.load(name, s.model, s.key), t.price)
                  for s, t in ((small, cascade.tiers[0]), (large, cascade.tiers[-1]))}
        for s, t in ((small, cascade.tiers[0]), (large, cascade.tiers[-1])):
            uncounted = sum(1 for tr in traces[s.name].values() if tr.usage_reported is False)
            if uncounted and is_priced(t.price):  # priced on 0 tokens: a $0 that is not true
                err.print(f"warning: {uncounted} of tier {s.name}'s {name} traces came without token counts (its "
                          "backend sent none): their cost reads as $0, so its $/query is too low",
                          style="yellow", markup=False)
        current = {k: prompt_sha256(p) for k, p in items.items()}
        lost = sorted({k for ts in traces.values() for k in ts} - current.keys()) if current else []
        if lost:  # ids shift when lines are removed: a trace of an id no longer there is no evidence
            err.print(f"warning: {len(lost)} traced {name} items are not in the dataset as it is now (e.g. "
                      f"{lost[0]!r}): left out", style="yellow", markup=False)
        # traces made for an older prompt are not evidence; grades made otherwise are made again
        traces = {tier: regraded({k: t for k, t in ts.items() if _evidence(current, k, t)}, every)
                  for tier, ts in traces.items()}
        pairs = paired(traces, [small.name, large.name])
        if len(pairs) < 10:
            if not items and given.endswith(".jsonl") and not Path(given).expanduser().exists():
                # `bench run --dataset` it would fail as this did: say what is missing, not what to run
                raise ConfigError(f"no dataset file at {given}, and no {name} traces to report on (in {store.root}): "
                                  "check the path, or trace the file with `edgecascade bench run --dataset FILE`")
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
        checks = regraded({k: t for k, t in priced(store.load(name, cc.model, cc.key), cascade.tiers[0].price).items()
                           if _evidence(current, k, t)}, every)
        datasets.append(DatasetPairs(name, [p for p in pairs if p[0].item_id in cal_ids],
                                     [p for p in pairs if p[0].item_id in held_ids], items, n, checks))
    return datasets, small


def _evidence(current: dict[str, str], k: str, t: Trace) -> bool:
    """Whether a trace is evidence: of an item the dataset still holds (``current``: its prompts'
    digests by id), made for its prompt as it stands. An item no longer there is not (ids shift when
    lines are removed, and its question was counted again under another id, stale grade and all);
    where the dataset could not be reloaded (``current`` empty), every trace is."""
    if not current:
        return True
    return k in current and (not t.prompt_sha256 or current[k] == t.prompt_sha256)


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
    from ..benchmarks.traces import cross_check_spec, tier_specs

    folder = store.root / dataset
    own = re.compile(re.escape(store.path(dataset, small.model, "").name[:-len("-.jsonl")])
                     + r"-([0-9a-f]{12})\.jsonl")  # this model's traces, by settings key
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
    from ..datasets import dataset_name

    given = {dataset_name(g): g for g in args.datasets}
    for d in datasets:
        if missing := d.unchecked():
            command = _bench_run_command(args, given.get(d.name, d.name), "calibrated")
            err.print(f"note: {len(missing)} {d.name} math items have no traced cross-check (e.g. "
                      f"{missing[0]}), so the cross-check variant is left out: trace them with `{command}` (or "
                      "another config with cross_check = true)", style="yellow", markup=False)
