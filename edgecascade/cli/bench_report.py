"""The benchmark commands that read stored traces only: `bench report` (fit the calibrators and
judge every policy on held-out traces) and `bench reliability` (how often a chosen threshold
holds), and where their results are written."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ..errors import ConfigError
from .bench_traces import _bench_cascade, _note_unchecked, _traced_datasets
from .console import err, out, progress_bar

if TYPE_CHECKING:
    from ..quality.calibration import Calibration


def cmd_bench_report(args: argparse.Namespace) -> int:
    from ..benchmarks.render import markdown_report, plot_report, print_report
    from ..benchmarks.report import (
        ConfigRule,
        DraftFeatures,
        add_config_rule,
        build_report,
        command_line,
        fitted_on,
    )
    from ..quality.policy import rule_label

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
        from ..engine import calibration_path

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
                   "`bench report` fits the cross-check only with the examples check: the cross-check "
                   "calibration it refits is the .examples.cross-check one" if not examples else
                   "the traces hold no cross-checks of the drafter's math drafts: `bench run --config calibrated` "
                   "traces them")
            uses = " and ".join(["run_examples = true"] * examples + ["cross_check = true"] * checks)
            err.print(f"note: {stale} was not refitted ({why}) and is still what a config with {uses} "
                      "loads: delete it, or refit it", style="yellow", markup=False)
        # the config's rule now loads what was just saved
        cascade, _, rules_as_configured = _bench_cascade(args.config)
    if rules_as_configured:  # a rule without its calibration yet cannot be judged
        from ..benchmarks.replay import OfflineRule

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
    try:
        plot_report(report, figure)
        drawn = f" · figure: {figure}"
    except ConfigError as e:  # no matplotlib: the report, minutes of fitting, is written without its figure
        err.print(f"warning: {e}; the report is written without it", style="yellow", markup=False)
        drawn = ""
    _save_and_show(args, report, "report.json", markdown_report, print_report, drawn)
    return 0


def _check_writable_manifests() -> None:
    """Refuse ``--save-calibration`` into an installed package before any work: the next upgrade would
    replace the file (and a system-wide install may not be writable)."""
    from ..manifests import manifests_dir
    from ..paths import inside_installed_package

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
    from ..benchmarks.traces import results_dir

    return Path(args.out).expanduser() if args.out else results_dir(getattr(args, "traces", None))


def _save_and_show(args: argparse.Namespace, data: dict[str, Any], filename: str,
                   markdown: Callable[[dict[str, Any]], str], show: Callable[[dict[str, Any], Console], None],
                   footer: str = "") -> None:
    """Write a benchmark's result as strict JSON under ``--out`` and print it as asked (``--markdown``,
    ``--json``, else rich tables and where the file went)."""
    from .. import strict_json

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


def cmd_bench_reliability(args: argparse.Namespace) -> int:
    from ..benchmarks.reliability import (
        check_margins_differ,
        markdown_reliability,
        print_reliability,
        threshold_reliability,
    )
    from ..benchmarks.report import command_line

    try:
        check_margins_differ(args.margins)  # before any trace is loaded
    except ValueError as e:
        raise ConfigError(f"--margins: {e}: give each once") from None
    cascade, _, _ = _bench_cascade(args.config)
    datasets, small = _traced_datasets(args, cascade, judges=False)  # it never reads the held-out part
    _note_unchecked(args, [replace(d, held_out=[]) for d in datasets])
    with progress_bar("reports") as progress:
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
    from ..engine import calibration_path
    from ..quality.calibration import Calibration

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
