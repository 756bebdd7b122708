"""`edgecascade run`: one question through a cascade, its answer, and the account of how it was
reached (or, with ``--json``, one record, also when there is no answer)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import strict_json
from ..errors import ConfigError, EdgecascadeError, InvalidRequestError
from ..money import usd
from ..result import Result
from .console import err


def _account(r: Result) -> str:
    conf = f"{r.confidence:.3f}" if r.confidence is not None else "n/a"
    est = ", estimated" if r.baseline_estimated else ", measured"
    if r.saving is None or r.baseline_cost is None:
        why = "no token counts to price it on" if r.usage_missing else "its price failed on these token counts"
        vs = f"saving vs always {r.baseline_tier} not known: {why}"
    else:
        saved = f"saved {usd(r.saving)} vs" if r.saving >= 0 else f"{usd(-r.saving)} more than"
        vs = f"{saved} always {r.baseline_tier} ({usd(r.baseline_cost)}{est})"
    missing = (f" · no token counts from {', '.join(r.usage_missing)}: a priced tier's cost reads too low"
               if r.usage_missing else "")
    if r.cost_unknown:
        missing += (f" · cost not known for {', '.join(r.cost_unknown)}: a call a provider may still bill, "
                    "not counted")
    # a tier that errored (a server down, a model that failed to load) is said here too, not only with
    # --explain: otherwise every query could go on to a paid tier without a word
    failed = [f"{a.tier} ({a.error_kind})" for a in r.attempts if a.error is not None]
    if failed:
        missing += f" · failed: {', '.join(failed)} (see --explain)"
    return (
        f"tier {r.tier} · model {r.model} · confidence {conf} · {r.reason} · "
        f"{r.latency_ms / 1000:.2f} s · cost {usd(r.cost)} · {vs}{missing}"
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
                f"first token {ttft}, {tps}) · cost {usd(a.cost)}"
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
    from ..engine import Cascade

    if args.logprobs and not args.json:
        raise ConfigError("--logprobs adds the tokens' logprobs to the --json record: give --json too")
    if args.explain and args.json:
        raise ConfigError("--explain prints each tier's draft for reading, and --json the whole result (every "
                          "attempt with its draft and reason) as one object: give one of them")
    # `echo q | edgecascade run -`: echo's newline is not part of the question (it is another prompt)
    if args.question == "-":
        if sys.stdin is None:  # started with stdin closed (`<&-`, some service managers)
            raise InvalidRequestError("stdin is closed, so '-' has no question to read: pass QUESTION as an "
                                      "argument, or pipe it in")
        try:
            raw = getattr(sys.stdin, "buffer", None)  # bytes, decoded here: a text stdin may hold surrogates
            question = (raw.read().decode("utf-8") if raw is not None else sys.stdin.read()).rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise InvalidRequestError(f"the question on stdin is not UTF-8 text ({e.reason} at byte {e.start}): "
                                      "pass it as UTF-8") from None
    else:
        question = args.question
        try:  # an argument that was not UTF-8 arrives holding surrogates; printed back, it would crash
            question.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidRequestError(f"the question is not UTF-8 text (a byte that is not UTF-8 at character "
                                      f"{e.start}): pass it as UTF-8") from None
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
        print(strict_json.dumps(record, ensure_ascii=False))
        return 0
    if args.explain:
        _explain(result)
    # the answer as the model wrote it, byte for byte: rich would expand its tabs and drop \r, \b and \f
    sys.stdout.write(result.content.strip() + "\n")
    sys.stdout.flush()
    err.print(_account(result), markup=False, style="dim")
    return 0


def _print_account_record(args: argparse.Namespace, error_type: str, message: str, spent: object | None) -> None:
    """`run --json`'s record when there is no answer: the error and, where ``spent`` (an exception
    carrying the query's account: ``attempts``, ``cost``, ``cost_unknown``, ``latency_ms``) has one,
    each attempt and what was spent on them (nothing spent is lost with the answer). With
    `--logprobs` it carries the question and the drafts' logprobs as a record with an answer does:
    rejected drafts (`on_all_rejected = "error"`) are labelled data for `calibrate` too."""
    record: dict[str, Any] = {"error": {"type": error_type, "message": message}}
    attempts = getattr(spent, "attempts", None)
    if attempts:
        record.update(cost=getattr(spent, "cost", 0.0), cost_unknown=list(getattr(spent, "cost_unknown", None) or []),
                      latency_ms=getattr(spent, "latency_ms", None),
                      attempts=[a.to_dict(logprobs=args.logprobs) for a in attempts])
    question = getattr(args, "question_text", None)
    if args.logprobs and question is not None:
        record = {"prompt": question, **record}
    print(strict_json.dumps(record, ensure_ascii=False))


def _print_error_json(e: EdgecascadeError, args: argparse.Namespace) -> None:
    """`run --json`'s record for an error (see :func:`_print_account_record`)."""
    from ..errors import AllTiersFailedError

    _print_account_record(args, type(e).__name__, str(e), e if isinstance(e, AllTiersFailedError) else None)


def _print_interrupted_account(e: BaseException, args: argparse.Namespace) -> None:
    """Ctrl-C during `edgecascade run`: what the query had spent before it (the account
    ``Cascade.run_sync`` moves onto the interrupt), on stderr, and with ``--json`` as a record, so a
    script learns of the calls it paid for too."""
    attempts = getattr(e, "attempts", None) or []
    unknown = list(getattr(e, "cost_unknown", None) or [])
    if attempts:
        tail = f"; cost not known for {', '.join(unknown)}: a call a provider may still bill" if unknown else ""
        err.print(f"before it, the query had made {len(attempts)} call(s) costing {usd(getattr(e, 'cost', 0.0))}"
                  f"{tail}", markup=False)
    if args.json:
        _print_account_record(args, "KeyboardInterrupt", "interrupted", e)
