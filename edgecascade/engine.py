"""The cascade: draft with the cheapest tier, validate, escalate only when validation fails.

Data flows one way: the engine calls providers, quality and (later) routing and the ledger;
none of them calls back. The engine times its own work separately from the time spent inside
providers, so the overhead it adds to every query is measured, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .config import AcceptRule, CascadeConfig, CascadeSettings, Price, TierConfig, load_config
from .errors import (
    AllTiersFailedError,
    ConfigError,
    InvalidRequestError,
    ModelError,
    ProviderError,
    TierRejected,
    may_be_billed,
)
from .money import usd
from .pricing import Pricing, is_priced, resolve_price, usage_cost
from .providers import build_provider
from .providers.base import Provider
from .quality import decide
from .quality.calibration import Calibration
from .quality.checks import Check
from .quality.crosscheck import run_cross_check
from .quality.domain import prompt_domain
from .quality.policy import run_checks
from .result import Attempt, Result
from .types import Completion, Message, MessageLike, Request, stop_strings, to_messages


@dataclass
class Tier:
    """One rung: a provider, the rule its drafts must meet, and its price."""

    name: str
    provider: Provider
    accept: AcceptRule = AcceptRule()
    price: Pricing = Price()
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        if self.calibration is None and (self.accept.confidence == "calibrated" or self.accept.quality_target):
            raise ValueError(f"tier {self.name!r}: a calibrated rule needs a Calibration")
        target = self.accept.quality_target
        if target is not None and self.calibration is not None:
            # checked when the tier is built, not at its first query, after cheaper tiers were paid for
            for cal in (self.calibration, *self.calibration.domains.values()):
                try:
                    cal.threshold_for(target)
                except ConfigError as e:
                    raise ConfigError(f"tier {self.name!r}: {e}") from None


def calibration_path(model: str, *, examples: bool, cross_check: bool = False) -> Path:
    """Where a model's shipped calibration lies, beside its manifest: ``<model>.calibration.json``
    (runs no code), ``<model>.examples.calibration.json`` (also runs the prompt's examples) or
    ``<model>.examples.cross-check.calibration.json`` (and cross-checks math drafts)."""
    from .manifests import manifests_dir

    suffix = (".examples" if examples else "") + (".cross-check" if cross_check else "")
    return manifests_dir() / f"{model}{suffix}.calibration.json"


def calibration_file(t: TierConfig, run_examples: bool = False, cross_check: bool = False) -> Path | None:
    """The calibration file a tier's rule loads (None for a rule that is not calibrated): its
    ``calibration`` file, or the one shipped beside the model's manifest: the strongest judge the
    config allows (``run_examples``, ``cross_check``) that the model ships, else the one that
    executes nothing."""
    if t.accept.confidence != "calibrated":
        return None
    if t.accept.calibration:
        return Path(t.accept.calibration).expanduser()
    for examples, checks in ((True, True), (False, True), (True, False)):
        allowed = (run_examples or not examples) and (cross_check or not checks)
        if allowed and (path := calibration_path(t.model, examples=examples, cross_check=checks)).is_file():
            return path
    return calibration_path(t.model, examples=False)


def missing_target(t: TierConfig, cal: Calibration, path: Path) -> str | None:
    """What is wrong when the tier's ``quality_target`` has no threshold in its calibration ``path``
    (and what to do), else None."""
    target = t.accept.quality_target
    if target is None or f"{target:g}" in cal.thresholds:  # (a domain calibrator has all its pooled one has)
        return None
    key, have = f"{target:g}", sorted(cal.thresholds)
    choose = f"choose one with `edgecascade bench report --target {key} --save-calibration`" + (
        " (it writes the model's own calibration beside its manifest: point `calibration` at it, or remove "
        "`calibration`)" if t.accept.calibration else "")
    fix = (f"use one of those, or {choose}" if have else
           "a file `edgecascade calibrate --traces` writes has none (choosing a threshold for a quality target "
           "needs the strongest tier's answers to the same questions, which `bench run` traces): set "
           f"min_confidence instead, from the table `calibrate` printed, or trace a labelled dataset with `bench "
           f"run` and {choose}")
    return (f"tier {t.display_name!r}: quality_target = {key} needs a threshold chosen for it, and the calibration "
            f"{path} has " + (f"them only for {', '.join(have)}" if have else "none") + f": {fix}")


def calibration_for(t: TierConfig, run_examples: bool = False, cross_check: bool = False) -> Calibration | None:
    """The calibration a tier's rule uses (see :func:`calibration_file`)."""
    path = calibration_file(t, run_examples, cross_check)
    if path is None:
        return None
    from .models import looks_like_path  # as calibration_path does: the registry stays out of `import edgecascade`

    cal = Calibration.load(path)
    if t.provider == "llamacpp" and not looks_like_path(t.model) and cal.model not in (t.model, "unnamed"):
        # allowed (a close relative of the model may be judged well enough), but never silently
        warnings.warn(f"tier {t.display_name!r} (model {t.model}) uses a calibration fitted for {cal.model} ({path}): "
                      f"its probabilities describe {cal.model}'s drafts. Fit one for {t.model} with `edgecascade "
                      "bench report --save-calibration` or `edgecascade calibrate`", UserWarning, stacklevel=2)
    fitted_k = cal.meta.get("top_logprobs")
    if (isinstance(fitted_k, int) and fitted_k >= 2 and t.provider != "anthropic" and t.top_logprobs < fitted_k
            and cal.reads_alternatives):
        # allowed (`bench run` traces such a tier to fit one for it), but said: no draft can be judged
        warnings.warn(f"tier {t.display_name!r} asks for top_logprobs = {t.top_logprobs}, and its calibration {path} "
                      f"was fitted on drafts with {fitted_k} alternatives per token, which it reads every draft's "
                      f"margin and entropy over: no draft of this tier can be judged by it, and each escalates. Set "
                      f"top_logprobs = {fitted_k} (or more), or fit a calibration on drafts traced with yours",
                      UserWarning, stacklevel=2)
    elif isinstance(fitted_k, int) and fitted_k >= 2 and t.provider != "anthropic" and t.top_logprobs != fitted_k:
        # allowed, but never silently: each token's entropy is read over its alternatives
        warnings.warn(f"tier {t.display_name!r} asks for top_logprobs = {t.top_logprobs}, and its calibration {path} "
                      f"was fitted on drafts with {fitted_k} alternatives per token: its entropies read "
                      f"otherwise, and so does P(correct). Set top_logprobs = {fitted_k}, or fit a calibration on "
                      "drafts traced with yours", UserWarning, stacklevel=2)
    problem = missing_target(t, cal, path)
    if problem is not None:  # checked now, not at the first query
        raise ConfigError(problem)
    return cal


_SPENT_NOTE = "edgecascade: before this, the query had made"


def _tell_spent(e: BaseException, attempts: list[Attempt], latency_ms: float) -> None:
    """Put what a query had spent before ``e`` stopped it on ``e``: ``attempts``, ``cost``,
    ``cost_unknown`` and ``latency_ms`` (as AllTiersFailedError carries them) and a note for the traceback, so a
    cancelled or crashed query does not lose the account of the calls it paid for. A call cut short
    by ``e`` reported no usage: on a priced tier it may still be billed, so its tier is named in
    ``cost_unknown`` and its cost is not in ``cost``. An exception raised again by a later query
    (one instance reused) carries that query's account, not the first one's."""
    if not attempts or isinstance(e, AllTiersFailedError):
        return
    spent = sum(a.cost for a in attempts)
    unknown = [a.tier for a in attempts if a.cost_unknown]
    ours = getattr(e, "_edgecascade_account", False)  # set by an earlier query: ours to replace
    for name, value in (("attempts", attempts), ("cost", spent), ("cost_unknown", unknown),
                        ("latency_ms", latency_ms)):
        if ours or not hasattr(e, name):
            with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__
                setattr(e, name, value)
    with contextlib.suppress(AttributeError, TypeError):
        e._edgecascade_account = True  # type: ignore[attr-defined]
    notes = getattr(e, "__notes__", None)
    if isinstance(notes, list):  # an earlier query's note on a reused instance
        notes[:] = [n for n in notes if not (isinstance(n, str) and n.startswith(_SPENT_NOTE))]
    if hasattr(e, "add_note"):
        said = ", ".join(f"{a.tier} " + ("cost not known" if a.cost_unknown and a.cost == 0 else usd(a.cost))
                         + (f" ({a.error_kind})" if a.error_kind else "") for a in attempts)
        tail = (f"; cost not known for {', '.join(unknown)}: a call a provider may still bill, not counted"
                if unknown else "")
        e.add_note(f"{_SPENT_NOTE} {len(attempts)} call(s) costing {usd(spent)} ({said}){tail}")


class Cascade:
    """An ordered list of tiers, cheapest first; the last is the strongest (the cost baseline)."""

    def __init__(self, tiers: Sequence[Tier], settings: CascadeSettings | None = None):
        if not tiers:
            raise ValueError("a Cascade needs at least one tier")
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        self.tiers = list(tiers)
        self.settings = settings or CascadeSettings()
        for t in self.tiers:
            if t.calibration is not None and t.calibration.runs_examples and not self.settings.run_examples:
                raise ConfigError(
                    f"tier {t.name!r} uses a calibration fitted with the prompt-examples check, which runs the "
                    "draft's code in a subprocess: set [cascade] run_examples = true to allow it, or use a "
                    "calibration fitted without it (`edgecascade bench report --no-examples`)"
                )
            caps = getattr(t.provider, "capabilities", None)
            top = getattr(caps, "max_temperature", None)
            if isinstance(top, (int, float)) and self.settings.temperature > top:
                # every query would be refused by the backend: said now, not as each query's failure
                raise ConfigError(f"tier {t.name!r} accepts a temperature of at most {top:g} (its API refuses "
                                  f"more), and [cascade] temperature is {self.settings.temperature:g}: lower it")
            if (t.accept.min_confidence is not None or t.accept.quality_target is not None) and caps is not None \
                    and not caps.logprobs:
                # every draft would pass on its checks alone: the threshold would be a silent no-op
                what = (f"quality_target = {t.accept.quality_target:g}" if t.accept.quality_target is not None
                        else f"min_confidence = {t.accept.min_confidence:g}")
                raise ConfigError(
                    f"tier {t.name!r} judges drafts by confidence ({what}), but its provider returns no token "
                    "logprobs, so no draft could be judged and every one would pass on its checks alone: remove "
                    "the threshold (the checks alone then decide), or, for an OpenAI-compatible server that does "
                    "return them, set logprobs = true on the tier (Anthropic's API gives none)"
                )
            if t.calibration is not None and t.calibration.runs_cross_check and not self.settings.cross_check:
                raise ConfigError(
                    f"tier {t.name!r} uses a calibration fitted with the cross-check of math drafts, which asks "
                    "the tier's model for a program and runs it in a subprocess: set [cascade] cross_check = true "
                    "to allow it, or use a calibration fitted without it"
                )

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | CascadeConfig | None = None) -> Cascade:
        """Build a cascade from a TOML file (default: configs/default.toml) or a parsed config.

        Every tier's model is located and checked now, so a missing model fails here, before any
        question is asked; models themselves load only when a query first reaches their tier.
        """
        cfg = path if isinstance(path, CascadeConfig) else load_config(path)
        tiers = [Tier(t.display_name, build_provider(t), t.accept, resolve_price(t),
                      calibration_for(t, cfg.cascade.run_examples, cfg.cascade.cross_check)) for t in cfg.tiers]
        for key, used, effect in (
                ("cross_check", any(t.calibration is not None and t.calibration.runs_cross_check for t in tiers),
                 "no query's draft is cross-checked (`bench run` still traces the cross-checks, to fit a "
                 "calibration that uses them)"),
                ("run_examples", any(t.calibration is not None and t.calibration.runs_examples for t in tiers),
                 "no prompt's examples are run")):
            if getattr(cfg.cascade, key) and not used:
                # allowed (a calibration that uses it may come), but never silently: it had done nothing
                warnings.warn(f"[cascade] {key} = true, but no tier's calibration uses it, so {effect}: the shipped "
                              "calibration with the cross-check also runs the prompt's examples (set cross_check "
                              "and run_examples, as configs/calibrated.toml does), and a tier uses a calibration "
                              "only with confidence = \"calibrated\"", UserWarning, stacklevel=2)
        return cls(tiers, cfg.cascade)

    def build_request(
        self,
        prompt: str | Sequence[MessageLike],
        max_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        seed: int | None,
        system: str | None,
    ) -> Request:
        """The Request every tier receives for this prompt (config defaults, then overrides)."""
        s = self.settings
        messages = to_messages(prompt)
        if system is not None and any(m.role == "system" for m in messages):
            raise InvalidRequestError("both system= and a system message in the prompt: give the system prompt one "
                                      "way (the config's system_prompt gives way to a system message; system= "
                                      "would have been dropped)")
        sys_prompt = system if system is not None else s.system_prompt
        if sys_prompt and not any(m.role == "system" for m in messages):
            messages.insert(0, Message("system", sys_prompt))
        return Request(
            messages=messages,
            max_tokens=max_tokens if max_tokens is not None else s.max_tokens,
            temperature=temperature if temperature is not None else s.temperature,
            stop=stop_strings(stop),
            seed=seed if seed is not None else s.seed,
        )

    async def run(
        self,
        prompt: str | Sequence[MessageLike],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        system: str | None = None,
    ) -> Result:
        """Answer ``prompt`` (a string or chat messages) with the cheapest tier that is good enough."""
        t0 = time.perf_counter()
        request = self.build_request(prompt, max_tokens, temperature, stop, seed, system)
        attempts: list[Attempt] = []
        try:
            answer, in_providers = await self._ask_tiers(request, attempts)
            return self._result(attempts, answer, t0, in_providers)
        except BaseException as e:  # cancelled, interrupted, or a bug: still say what was spent
            _tell_spent(e, attempts, (time.perf_counter() - t0) * 1000)
            raise

    async def _ask_tiers(self, request: Request, attempts: list[Attempt]) -> tuple[Attempt | None, float]:
        """Ask the tiers in order until one's draft passes its rule, appending each attempt to
        ``attempts`` as it ends; the accepted attempt (None if none) and the time inside providers."""
        in_providers = 0.0
        answer: Attempt | None = None
        for tier in self.tiers:
            # a tier's time is its time inside the provider: its draft and, where one is made, its
            # cross-check's generation. Everything else (checks, prices, the decision, the cross-check
            # program's run, the examples check) is the engine's own work, in the overhead: the
            # attempts' times and the overhead add up to the query's latency
            t_call = time.perf_counter()
            try:
                completion = await tier.provider.complete(request)
            except (ProviderError, ModelError) as e:
                dt = time.perf_counter() - t_call
                in_providers += dt
                kind = getattr(e, "kind", "model_error")
                model = getattr(tier.provider, "model", tier.name)  # a provider of your own may name none
                billed = may_be_billed(e) or getattr(e, "earlier_maybe_billed", 0) > 0  # retried ones too
                attempts.append(Attempt(tier.name, model, None, None, dt * 1000, 0.0,
                                        error=str(e), error_kind=kind, exception=e,
                                        cost_unknown=billed and is_priced(tier.price)))
                continue
            except BaseException as e:  # cancelled, interrupted or crashed in flight: the call was made
                model = getattr(tier.provider, "model", tier.name)
                stopped = isinstance(e, (asyncio.CancelledError, KeyboardInterrupt, SystemExit))
                attempts.append(Attempt(tier.name, model, None, None, (time.perf_counter() - t_call) * 1000, 0.0,
                                        error=f"cut short: {e!r}", error_kind="interrupted" if stopped else "crashed",
                                        cost_unknown=is_priced(tier.price)))  # it reported no usage
                raise
            dt = time.perf_counter() - t_call
            prompt_text = request.question
            cost, priced = 0.0, False  # a price of one's own that fails still leaves the paid call listed
            # calls retried before this answer that the provider may still bill: not in its usage
            unbilled = completion.earlier_maybe_billed > 0
            writing = False  # a cross-check's program being written: a call in flight
            try:
                cost, priced = usage_cost(tier.price, completion.usage), True
                check = None
                check_failed: str | None = None
                check_billed = False  # a failed cross-check call the provider may still bill
                # the configured checks, run once: they decide whether a cross-check is worth its generation
                # and then the draft itself
                checks = run_checks(completion, tier.accept.checks, self.settings.repetition, prompt_text)
                if self.cross_checks(tier, completion, prompt_text, checks):
                    t_check = time.perf_counter()

                    def written(program: Completion, generation_s: float, price: Pricing = tier.price) -> None:
                        # counted once the program is written, before it runs: a query stopped while it
                        # runs has still paid for it. Its tokens are billed like the draft's
                        nonlocal dt, cost, unbilled, writing
                        writing = False
                        dt += generation_s
                        cost += usage_cost(price, program.usage)
                        # a program whose usage the backend did not report is not in ``cost`` either
                        unbilled = unbilled or program.earlier_maybe_billed > 0 or not program.usage.reported

                    writing = True
                    try:
                        check = await run_cross_check(tier.provider, request, completion.text, on_written=written)
                    except (ProviderError, ModelError) as e:
                        # the draft is judged without it (neutral features), as a non-math draft is; the
                        # failed generation was time inside the provider, and the reason says it failed
                        writing = False
                        dt += time.perf_counter() - t_check
                        check_failed = getattr(e, "kind", "model_error")
                        check_billed = may_be_billed(e)
                        unbilled = unbilled or getattr(e, "earlier_maybe_billed", 0) > 0
                in_providers += dt
                judge = functools.partial(decide, completion, tier.accept, self.settings.repetition, tier.calibration,
                                          prompt_text, self.settings.run_examples, check, checks=checks)
                if tier.calibration is not None and tier.calibration.runs_examples:
                    decision = await asyncio.to_thread(judge)  # it starts a process: keep the loop free
                else:
                    decision = judge()
                if check_failed is not None:
                    decision.reason += f" (cross-check failed: {check_failed}; judged without it)"
                # a failed cross-check a provider may still bill leaves the attempt's cost uncertain
                attempt = Attempt(tier.name, completion.model, completion, decision, dt * 1000, cost,
                                  cost_unknown=(check_billed or unbilled) and is_priced(tier.price))
                attempts.append(attempt)
            except BaseException as e:  # stopped while judged (cancelled, a bug): the draft was paid for
                # and a cross-check program cut short while written reported no usage: it may be billed
                where = ("its cross-check was written" if writing else "its draft was judged" if priced
                         else "its answer was priced")
                if writing:  # the program's generation so far was time inside the provider
                    dt += time.perf_counter() - t_check
                attempts.append(Attempt(tier.name, completion.model, completion, None, dt * 1000, cost,
                                        error=f"stopped while {where}: {e!r}", error_kind="interrupted",
                                        cost_unknown=(unbilled or writing or not priced) and is_priced(tier.price)))
                raise
            if decision.accepted:
                answer = attempt
                break
        return answer, in_providers

    def cross_checks(self, tier: Tier, completion: Completion, prompt: str,
                     checks: list[Check] | None = None) -> bool:
        """Whether a draft is worth cross-checking: its calibration uses the cross-check, the config
        allows it, the prompt is a math one, the draft has logprobs to judge (without them the decision
        rests on its checks alone; with none for any token it is rejected unjudged, so a cross-check
        could not count) and no configured check rejects it already (``checks``: their outcomes, where
        the caller has run them)."""
        if tier.calibration is None or not tier.calibration.runs_cross_check or not self.settings.cross_check:
            return False
        if completion.logprobs is None or len(completion.logprobs) == 0:
            return False
        if prompt_domain(prompt) != "math":
            return False
        if checks is None:
            checks = run_checks(completion, tier.accept.checks, self.settings.repetition, prompt)
        return all(ch.passed for ch in checks)

    def _result(self, attempts: list[Attempt], answer: Attempt | None, t0: float,
                in_providers: float) -> Result:
        answered = [a for a in attempts if a.completion is not None]
        if answer is None:
            if not answered or self.settings.on_all_rejected == "error":
                raise AllTiersFailedError(
                    [(a.tier, a.exception if a.exception is not None else TierRejected(a.reason)) for a in attempts],
                    attempts=attempts, cost=sum(a.cost for a in attempts),
                    cost_unknown=[a.tier for a in attempts if a.cost_unknown],
                    latency_ms=(time.perf_counter() - t0) * 1000)
            answer = answered[-1]
            later_failures = [a for a in attempts[attempts.index(answer) + 1:] if a.error is not None]
            if later_failures:
                f = later_failures[-1]
                reason = (f"tier {f.tier!r} failed ({f.error_kind}); returning the answer of tier {answer.tier!r}, "
                          f"which did not meet its rule ({answer.reason})")
            else:
                reason = f"no tier met its rule; returning the last answer ({answer.tier}: {answer.reason})"
        else:
            reason = answer.reason
        assert answer.completion is not None
        total_cost = sum(a.cost for a in attempts)
        strongest = self.tiers[-1]
        # the strongest tier can only be the last attempt (tiers run in order, names are unique)
        last = attempts[-1]
        measured = last if last.tier == strongest.name and last.completion is not None else None
        baseline_cost: float | None
        if measured is not None:
            assert measured.completion is not None
            basis = measured.completion.usage
            baseline_cost, estimated = measured.cost, False
        else:
            basis = answer.completion.usage
            answering = next(t for t in self.tiers if t.name == answer.tier)
            if not is_priced(answering.price):
                # a free (local) server's KV-cache reuse is no billed cache: the strongest tier would
                # have charged those prompt tokens in full. A priced tier's cache hits are priced as
                # cached, as its own cost was
                basis = replace(basis, cached_prompt_tokens=0)
            estimated = True
            try:
                baseline_cost = usage_cost(strongest.price, basis)
            except Exception as e:  # noqa: BLE001 - a price of one's own: the answer, paid for, is kept
                baseline_cost = None  # not known, as for counts no tier reported
                warnings.warn(f"the price of tier {strongest.name!r} failed on the answer's token counts ({e!r}), so "
                              "what the query saved against it is not known: fix that tier's price", stacklevel=2)
        if not basis.reported and is_priced(strongest.price):
            baseline_cost = None  # no token counts to price: $0 would be a guess, and the saving with it
        total = time.perf_counter() - t0
        return Result(
            content=answer.completion.text,
            tier=answer.tier,
            model=answer.model,
            accepted=answer.accepted,
            confidence=answer.confidence,
            reason=reason,
            attempts=attempts,
            cost=total_cost,
            baseline_tier=strongest.name,
            baseline_cost=baseline_cost,
            baseline_estimated=estimated,
            latency_ms=total * 1000,
            overhead_ms=max(total - in_providers, 0.0) * 1000,
        )

    def run_sync(self, prompt: str | Sequence[MessageLike], **kwargs: object) -> Result:
        """Blocking wrapper around :meth:`run` for scripts and notebooks without an event loop.

        Each call runs in its own event loop, so network clients are closed before it returns
        (a client bound to a finished loop cannot be reused); providers open new ones next time.
        Loaded local models stay loaded.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("run_sync() was called inside a running event loop: use `await cascade.run(...)`")

        stopped: list[BaseException] = []

        async def once() -> Result:
            try:
                return await self.run(prompt, **kwargs)  # type: ignore[arg-type]
            except BaseException as e:
                stopped.append(e)
                raise
            finally:
                await self.aclose()

        try:
            return asyncio.run(once())
        except KeyboardInterrupt as k:
            # asyncio.run cancels the query on Ctrl-C and raises a new KeyboardInterrupt: the account
            # the cancellation carries moves onto it, so what was spent is not lost with the answer
            spent = getattr(stopped[0], "attempts", None) if stopped else None
            if spent:
                _tell_spent(k, list(spent), getattr(stopped[0], "latency_ms", 0.0))
            raise

    async def aclose(self) -> None:
        """Close every provider's network client (they reopen on next use); one failing to close
        does not keep the others open. A provider of your own that holds nothing may have no aclose."""
        closing = [close() for t in self.tiers if (close := getattr(t.provider, "aclose", None)) is not None]
        await asyncio.gather(*closing, return_exceptions=True)

    async def __aenter__(self) -> Cascade:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

