"""Traces: every tier of a cascade run once on every item of a labelled dataset, graded and stored.

A trace keeps everything a policy or a calibrator may need later (the answer, whether it was
right, tokens, latency, cost, finish reason and the per-token logprobs with their top-k
alternatives), so new features and new policies are evaluated from the stored traces alone,
without generating again. Generation is the expensive part (tens of seconds per item on a laptop
CPU), so traces are appended one line at a time to a JSONL file per (dataset, model, settings):
an interrupted run resumes where it stopped, and a rerun only computes what is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..datasets import DATASETS, GRADER_VERSIONS, Item, grade, grader_name, load, number_value, read_utf8
from ..engine import Cascade, Tier
from ..errors import ConfigError, EdgecascadeError
from ..paths import bench_dir
from ..pricing import Pricing, usage_cost
from ..quality.crosscheck import CROSS_CHECK_MAX_TOKENS, CROSS_CHECK_VERSION, run_cross_check
from ..quality.domain import prompt_domain
from ..types import LOGPROB_FLOOR, Completion, FinishReason, TokenLogprobs, Usage

TRACE_VERSION = 1

log = logging.getLogger(__name__)


def traces_dir() -> Path:
    """``$EDGECASCADE_TRACES``, else the benchmark folder's ``traces`` (:func:`edgecascade.paths.bench_dir`:
    the checkout's ``bench/``, committed, so results can be re-derived and long runs resumed on another
    machine; an installed package's ``<cache>/bench``)."""
    env = os.environ.get("EDGECASCADE_TRACES")
    return Path(env).expanduser() if env else bench_dir() / "traces"


def results_dir(traces: str | None = None) -> Path:
    """Where reports go unless ``--out`` says otherwise, wherever the command runs: ``results`` beside
    the traces folder (``traces``, the command's ``--traces``, else ``$EDGECASCADE_TRACES``, else the
    benchmark folder's: traces pointed at a scratch folder had still had their reports written over
    the benchmark folder's committed ones)."""
    given = traces or os.environ.get("EDGECASCADE_TRACES")
    return Path(given).expanduser().absolute().parent / "results" if given else bench_dir() / "results"


@dataclass
class Trace:
    dataset: str
    item_id: str
    domain: str
    tier: str
    model: str
    settings: str  # the settings key: same key, same generation
    answer: str
    correct: bool
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    first_token_s: float | None
    cost: float
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[list[float]] = field(default_factory=list)
    error: str | None = None
    version: int = TRACE_VERSION
    #: sha256 of the prompt the tier was asked: a cached trace counts only for the same prompt
    prompt_sha256: str = ""
    #: a cross-check's program result (None: it gave no number); see :mod:`..quality.crosscheck`
    result: float | None = None
    #: how ``correct`` was reached (:func:`grading_key`): a grade made by another grader version or
    #: against another reference is recomputed from the stored answer (:func:`regraded`). Empty in
    #: traces from before it was kept: graded by version 1 of their grader
    graded: str = ""
    #: of ``prompt_tokens``, those the backend served from its prompt cache (billed at a discount)
    cached_prompt_tokens: int = 0
    #: False when the backend sent no token counts (they read 0): priced, the trace's cost reads too
    #: low, and the report says so. Traces from before it was kept: local tiers, which always count
    usage_reported: bool = True
    #: True when the backend sent logprobs that cover no token (a server's empty list): kept apart from
    #: a draft that came without logprobs, which a rule accepts on its checks alone, where the cascade
    #: rejects this one (written only when True, so other traces read as before)
    empty_logprobs: bool = False

    def token_logprobs(self) -> TokenLogprobs | None:
        """The stored logprobs in the provider's shape, so quality features run on traces unchanged."""
        if not self.tokens:
            if self.empty_logprobs:
                return TokenLogprobs(tokens=[], logprobs=np.zeros(0), top_tokens=[], top_logprobs=np.zeros((0, 0)))
            return None
        k = len(self.top_logprobs[0]) if self.top_logprobs else 0
        return TokenLogprobs(
            tokens=list(self.tokens),
            logprobs=np.asarray(self.logprobs, dtype=np.float64),
            top_tokens=[[""] * k for _ in self.tokens],
            top_logprobs=np.asarray(self.top_logprobs, dtype=np.float64).reshape(len(self.tokens), k),
        )

    def completion(self) -> Completion:
        from ..types import Timings, Usage

        reason: FinishReason = "stop"
        if self.finish_reason in ("length", "filtered", "error"):
            reason = self.finish_reason  # type: ignore[assignment]
        return Completion(
            text=self.answer, model=self.model,
            finish_reason=reason,
            usage=Usage(self.prompt_tokens, self.completion_tokens, reported=self.usage_reported is not False),
            timings=Timings(total_s=self.latency_s, first_token_s=self.first_token_s),
            logprobs=self.token_logprobs(),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


#: how a cross-check's number is compared with the reference (:func:`grade_number`); 2: as a number
#: for text-graded items (it had been a sentence read by their text grader)
CROSS_CHECK_GRADING = 2


def grading_key(item: Item, *, cross_check: bool = False) -> str:
    """What a grade depends on besides the answer: the grader, its version and what it compares with
    (the reference; a HumanEval item's tests); for a cross-check's number, how it is compared too."""
    name = grader_name(item)
    version = GRADER_VERSIONS.get(name, 1)
    blob = json.dumps([name, version, item.reference, item.meta.get("test")])
    key = f"{name}-v{version}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"
    return f"{key}-cc{CROSS_CHECK_GRADING}" if cross_check else key


def _graded_otherwise(t: Trace, item: Item) -> bool:
    if t.graded:
        return t.graded != grading_key(item, cross_check=t.tier == CROSS_CHECK)
    if t.tier == CROSS_CHECK:
        return True  # a number compared again: cheap, and its comparison has changed since
    # kept before grading keys were: graded by the first version of its grader, against the
    # reference as it stood, which nothing tells apart from today's (the committed datasets' are).
    # HumanEval stays at its first version although its runner now ends at its verdict: that can
    # change only a completion whose exit handlers or threads outlived its tests, and none of the
    # committed ones does (regrading runs every stored completion's tests again, on every read); nor
    # one that opens with a future import or reads its own program's file (regraded: 0 of 328 differ)
    return GRADER_VERSIONS.get(grader_name(item), 1) > 1


def regraded(traces: Mapping[str, Trace], items: Mapping[str, Item]) -> dict[str, Trace]:
    """``traces`` (by item id) with every grade made otherwise than ``items`` are graded now (another
    grader version, a corrected reference) made again from the stored answer (a cross-check's from
    its program's result). Regrading needs no generation: a fixed grader or reference never leaves
    stale right/wrong labels in the cache. Traces of items not in ``items`` are kept as stored."""
    out = dict(traces)
    for k, t in traces.items():
        item = items.get(k)
        if item is None or not _graded_otherwise(t, item):
            continue
        right = grade_number(item, t.result) if t.tier == CROSS_CHECK else grade(item, t.answer)
        out[k] = replace(t, correct=right, graded=grading_key(item, cross_check=t.tier == CROSS_CHECK))
    return out


def settings_key(model_id: str, request_settings: dict[str, Any]) -> str:
    """A short hash of everything that changes a generation: the model file, the prompt template
    version and the request settings."""
    blob = json.dumps({"model": model_id, **request_settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class TraceStore:
    """Append-only JSONL files, one per (dataset, model, settings key)."""

    def __init__(self, root: Path | None = None):
        self.root = root or traces_dir()

    def path(self, dataset: str, model: str, key: str) -> Path:
        return self.root / dataset / f"{_file_safe(model)}-{key}.jsonl"

    def load(self, dataset: str, model: str, key: str) -> dict[str, Trace]:
        p = self.path(dataset, model, key)
        out: dict[str, Trace] = {}
        if not p.exists():
            return out
        for raw in p.read_bytes().split(b"\n"):
            if not raw.strip():
                continue
            try:
                t = Trace.from_dict(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError, AttributeError):
                # a line cut by an interrupted write (inside a character: "€" is 3 bytes), or not a trace
                # at all: skip it, it will be generated again
                continue
            if t.error is None:
                out[t.item_id] = t
        return out

    def append(self, trace: Trace) -> None:
        p = self.path(trace.dataset, trace.model, trace.settings)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8") as f:
            # held while a cut last line is dropped and this one written: a second writer (two runs
            # side by side) had taken the other's half-written line for a cut one and dropped it
            _lock(f)
            _drop_cut_line(p)
            line = asdict(trace)
            if not line["empty_logprobs"]:
                del line["empty_logprobs"]
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _file_safe(model: str) -> str:
    """A model name as a file name: a server's model may be named by its path ("/models/Qwen2.5"),
    which as it stood wrote traces outside the traces folder (or into a subfolder no report reads)."""
    safe = re.sub(r"[/\\:]", "_", model)
    return "_" + safe[1:] if safe.startswith(".") else safe


def _lock(f: IO[str]) -> None:
    """An exclusive lock on an open file until it is closed (POSIX; elsewhere, none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


def _drop_cut_line(p: Path) -> None:
    """Remove a last line left without its newline by an interrupted write, before appending.

    Appending after it would glue the new trace onto the fragment: both would be lost, and the file
    would stay unreadable for `calibrate --traces`. A fragment holds no whole trace (its item is
    generated again), so dropping it loses nothing; a last line that is whole JSON only gets its
    newline back. (One `bench run` writes a file at a time: runs of the same dataset, config and
    trace folder side by side are not supported.)"""
    if not p.exists():
        return
    with p.open("r+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return
        pos, cut = end, 0
        while pos > 0:  # back to the last newline, a block at a time
            start = max(0, pos - 65536)
            f.seek(start)
            at = f.read(pos - start).rfind(b"\n")
            if at >= 0:
                cut = start + at + 1
                break
            pos = start
        f.seek(cut)
        try:  # a whole trace that only lost its newline (an editor strips it) is kept
            whole = isinstance(json.loads(f.read(end - cut)), dict)
        except (json.JSONDecodeError, UnicodeDecodeError):
            whole = False
        if whole:
            f.seek(end)
            f.write(b"\n")
        else:
            f.truncate(cut)


def prompt_sha256(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _trace_from(item: Item, tier: str, key: str, c: Completion, latency_s: float, cost: float,
                correct: bool) -> Trace:
    lp = c.logprobs
    return Trace(
        prompt_sha256=prompt_sha256(item.prompt),
        dataset=item.dataset, item_id=item.id, domain=item.domain, tier=tier, model=c.model,
        settings=key, answer=c.text, correct=correct, finish_reason=c.finish_reason,
        prompt_tokens=c.usage.prompt_tokens, completion_tokens=c.usage.completion_tokens,
        cached_prompt_tokens=c.usage.cached_prompt_tokens, usage_reported=c.usage.reported,
        latency_s=round(latency_s, 4),
        first_token_s=round(c.timings.first_token_s, 4) if c.timings.first_token_s is not None else None,
        cost=cost,
        tokens=list(lp.tokens) if lp is not None else [],
        logprobs=[round(float(x), 5) for x in lp.logprobs] if lp is not None else [],
        top_logprobs=[[round(float(x), 4) for x in row] for row in lp.top_logprobs] if lp is not None else [],
        graded=grading_key(item, cross_check=tier == CROSS_CHECK),
        empty_logprobs=lp is not None and len(lp.tokens) == 0,
    )


def priced(traces: Mapping[str, Trace], price: Pricing) -> dict[str, Trace]:
    """The traces with each cost worked out at ``price`` from its token counts. A trace stores what
    its call cost when it was made, but the settings key that caches it leaves the price out (a
    price changes no answer): a tier priced since, or a second tier of the same model and settings
    (one file) at another price, would have been billed at the old or the other price."""
    return {k: replace(t, cost=usage_cost(price, Usage(t.prompt_tokens, t.completion_tokens,
                                                        cached_prompt_tokens=t.cached_prompt_tokens)))
            for k, t in traces.items()}


@dataclass
class TierSpec:
    """What the runner needs of a tier: its name, its provider, its price and its settings key."""

    name: str
    model: str
    key: str


def _model_id(tier: Tier) -> str:
    """What identifies a tier's model in a settings key: its file's identity where it has one."""
    return str(getattr(tier.provider, "identity", "") or tier.provider.model)


_DEFAULT_TOP_K = 5
_DEFAULT_N_CTX = 4096


def tier_specs(cascade: Cascade, max_tokens: int) -> list[TierSpec]:
    """Each tier's name, model and settings key for traces made greedily with ``max_tokens``."""
    request_settings = {
        "trace_version": TRACE_VERSION, "max_tokens": max_tokens, "temperature": 0.0, "seed": 0,
        "system": cascade.settings.system_prompt,
    }
    specs = []
    for t in cascade.tiers:
        # the alternatives kept per token change the features (entropy is taken over them), and so
        # does whether a tier gives logprobs at all; what every committed trace had (logprobs, 5
        # alternatives) is left out of the key, so the traces made before these counted keep theirs
        provider = getattr(t.provider, "inner", t.provider)
        k = getattr(provider, "top_logprobs", _DEFAULT_TOP_K)
        settings = dict(request_settings)
        if not t.provider.capabilities.logprobs:
            settings["logprobs"] = False
        elif k != _DEFAULT_TOP_K:
            settings["top_logprobs"] = k
        settings.update(_model_settings(provider))
        specs.append(TierSpec(t.name, t.provider.model, settings_key(_model_id(t), settings)))
    return specs


def run_traces(
    cascade: Cascade,
    items: Sequence[Item],
    *,
    dataset: str,
    store: TraceStore,
    max_tokens: int,
    on_progress: Callable[[str, int, int], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> dict[str, dict[str, Trace]]:
    """Generate (or load from the cache) one trace per item and tier; returns {tier: {item_id: trace}}."""
    specs = tier_specs(cascade, max_tokens)
    wanted_sha = {i.id: prompt_sha256(i.prompt) for i in items}
    # a trace made for another prompt (the dataset's prompt template changed) is stale: made again
    # (traces from before prompts were recorded carry no sha and are kept)
    by_id = {i.id: i for i in items}
    # two tiers with the same model and settings (one file) give the same greedy answers: traced once,
    # shared by both (each had been generated twice, into that one file)
    first = {(s.model, s.key): s.name for s in reversed(specs)}
    have: dict[str, dict[str, Trace]] = {}
    for s in specs:
        if first[s.model, s.key] == s.name:
            have[s.name] = regraded({k: t for k, t in store.load(dataset, s.model, s.key).items()
                                     if not t.prompt_sha256 or wanted_sha.get(k) in (None, t.prompt_sha256)}, by_id)
        else:
            have[s.name] = have[first[s.model, s.key]]
    todo = [(i, s) for i in items for s in specs if i.id not in have[s.name] and first[s.model, s.key] == s.name]
    total = len(items) * len(first)
    done = total - len(todo)
    if on_progress:
        on_progress("cached", done, total)

    async def one(item: Item, spec: TierSpec, tier_index: int) -> Trace:
        tier = cascade.tiers[tier_index]
        request = cascade.build_request(item.prompt, max_tokens, 0.0, None, 0, None)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            c = await tier.provider.complete(request)
        except EdgecascadeError as e:
            return Trace(item.dataset, item.id, item.domain, spec.name, spec.model, spec.key, "", False,
                         "error", 0, 0, loop.time() - t0, None, 0.0, error=f"{type(e).__name__}: {e}")
        latency = loop.time() - t0
        correct = await asyncio.to_thread(grade, item, c.text)
        cost = usage_cost(tier.price, c.usage)
        # filed under the tier's model as the runner looks it up: a provider whose answers name a
        # dated model ("gpt-4o-2024-08-06") had its traces written where no rerun or report reads
        return replace(_trace_from(item, spec.name, spec.key, c, latency, cost, correct), model=spec.model)

    async def go() -> None:
        nonlocal done
        index = {s.name: n for n, s in enumerate(specs)}
        for item, spec in todo:
            trace = await one(item, spec, index[spec.name])
            done += 1
            if trace.error is not None:
                # a failed call is not an answer: never cached, never graded; a rerun tries it again
                if on_failure:
                    on_failure(spec.name, trace.error)
                if on_progress:
                    on_progress(f"{item.id} {spec.name}: FAILED ({trace.error})", done, total)
                continue
            store.append(trace)
            have[spec.name][item.id] = trace
            if on_progress:
                on_progress(f"{item.id} {spec.name}: {'right' if trace.correct else 'wrong'}", done, total)

    if todo:
        asyncio.run(go())
    wanted = {i.id for i in items}
    price = {t.name: t.price for t in cascade.tiers}
    return {name: priced({k: v for k, v in traces.items() if k in wanted}, price[name])
            for name, traces in have.items()}


#: the ``tier`` of a cross-check trace: the drafting model's program for a math item
CROSS_CHECK = "cross-check"


def _model_settings(provider: object) -> dict[str, Any]:
    """What an in-process model runs with that changes its generations, beyond its file: its context
    window bounds its answers (a prompt past it fails; an answer stops where it fills up), and its
    chat format renders the prompt. Every committed trace had the defaults (4,096 tokens, the file's
    own template), left out of the key so those traces keep theirs."""
    out: dict[str, Any] = {}
    n_ctx = getattr(provider, "n_ctx", _DEFAULT_N_CTX)
    if n_ctx != _DEFAULT_N_CTX:
        out["n_ctx"] = n_ctx
    chat_format = getattr(provider, "chat_format", None)
    if isinstance(chat_format, str):  # a manifest's or a tier's: it had not made traces anew
        out["chat_format"] = chat_format
    return out


def cross_check_spec(cascade: Cascade) -> TierSpec:
    """The drafting tier's cross-checks: its model, and a settings key of their own (so they sit in
    their own file beside its drafts, and a change of the cross-check's prompt makes them anew)."""
    t = cascade.tiers[0]
    settings = {"trace_version": TRACE_VERSION, "cross_check_version": CROSS_CHECK_VERSION,
                "max_tokens": CROSS_CHECK_MAX_TOKENS, "temperature": 0.0, "seed": 0,
                "system": cascade.settings.system_prompt,
                **_model_settings(getattr(t.provider, "inner", t.provider))}
    return TierSpec(CROSS_CHECK, t.provider.model, settings_key(_model_id(t), settings))


def grade_number(item: Item, value: float | None) -> bool:
    """Whether a number (a cross-check program's result) is the item's answer, by the item's own
    grader: written out in full (1e-05 would read as 1), a whole number without ".0" (for exact
    graders). No number is never right."""
    if value is None:
        return False
    written = str(int(value)) if value.is_integer() else format(value, ".12f").rstrip("0").rstrip(".")
    if grader_name(item) in ("number", "gsm8k"):
        return grade(item, f"The answer is {written}")
    # a text grader reads text: "exact" would compare the sentence with "6", "contains" find "6" in 16
    want = number_value(item.reference)
    if want is not None:
        return math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-6)
    return grade(item, written)


def run_cross_checks(
    cascade: Cascade,
    items: Sequence[Item],
    *,
    dataset: str,
    store: TraceStore,
    on_progress: Callable[[str, int, int], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> dict[str, Trace]:
    """Generate (or load from the cache) the drafting tier's cross-check of every math item (its
    domain read from the prompt, as a deployment reads it): the program, its result, and the time
    and cost of both, which a policy that uses it pays on top of the draft."""
    spec = cross_check_spec(cascade)
    math_items = [i for i in items if prompt_domain(i.prompt) == "math"]
    wanted_sha = {i.id: prompt_sha256(i.prompt) for i in math_items}
    have = regraded({k: t for k, t in store.load(dataset, spec.model, spec.key).items()
                     if k in wanted_sha and t.prompt_sha256 == wanted_sha[k]}, {i.id: i for i in math_items})
    todo = [i for i in math_items if i.id not in have]
    total, done = len(math_items), len(math_items) - len(todo)
    if on_progress:
        on_progress("cached", done, total)
    tier = cascade.tiers[0]

    async def go() -> None:
        nonlocal done
        for item in todo:
            # the request the draft was made with: the cross-check asks for a program for its problem
            request = cascade.build_request(item.prompt, None, 0.0, None, 0, None)
            try:
                check = await run_cross_check(tier.provider, request, "")
            except EdgecascadeError as e:
                done += 1
                if on_failure:  # not an answer: never cached; a rerun tries it again
                    on_failure(CROSS_CHECK, f"{type(e).__name__}: {e}")
                if on_progress:
                    on_progress(f"{item.id} {CROSS_CHECK}: FAILED ({type(e).__name__}: {e})", done, total)
                continue
            if not check.ran:  # the system refused its process: no outcome of the program's, never cached
                done += 1
                if on_failure:
                    on_failure(CROSS_CHECK, "its program could not be started (no process or temporary folder)")
                if on_progress:
                    on_progress(f"{item.id} {CROSS_CHECK}: FAILED (its program could not be started)", done, total)
                continue
            c, result = check.completion, check.result
            assert c is not None
            right = await asyncio.to_thread(grade_number, item, result)
            # its latency: the generation and the program's run, what a deployment waits
            trace = replace(_trace_from(item, CROSS_CHECK, spec.key, c, check.latency_s,
                                        usage_cost(tier.price, c.usage), right), model=spec.model, result=result)
            store.append(trace)
            have[item.id] = trace
            done += 1
            if on_progress:
                on_progress(f"{item.id} {CROSS_CHECK}: {'no result' if result is None else result!r}", done, total)

    if todo:
        asyncio.run(go())
    return priced(have, tier.price)


def paired(traces: dict[str, dict[str, Trace]], tiers: Iterable[str]) -> list[list[Trace]]:
    """Items traced on every tier, as one row of traces per item (tier order kept)."""
    names = list(tiers)
    common = set.intersection(*(set(traces[n]) for n in names)) if names else set()
    return [[traces[n][i] for n in names] for i in sorted(common)]


def alternatives_count(traces: Sequence[Trace]) -> int:
    """How many alternatives per token the traces kept: the most common count (a line whose
    alternatives collapsed, as old `run --json` lines' could, does not set it), 0 when none has any.
    A calibration records it: its entropy feature means what it meant with that many, and a tier
    asking for another number reads it otherwise."""
    counts = Counter(len(t.top_logprobs[0]) for t in traces if t.top_logprobs)
    return counts.most_common(1)[0][0] if counts else 0


def _alternatives(row: Any) -> list[float]:
    """One step's alternatives' logprobs, best first, from any shape a user's line may hold them in:
    numbers, [token, logprob] pairs (`run --json --logprobs`), {"token", "logprob"} objects (OpenAI's
    ``top_logprobs``) or one {token: logprob} object (lines printed before the pairs, and
    llama-cpp-python's). The features read the first as the model's own choice, so order is not
    taken on trust. Raises TypeError/ValueError/KeyError/IndexError on anything else."""
    if isinstance(row, dict):
        values: list[Any] = list(row.values())
    elif isinstance(row, list):
        values = [x[1] if isinstance(x, list) else x["logprob"] if isinstance(x, dict) else x for x in row]
    else:
        raise TypeError(f"a row of alternatives is a {type(row).__name__}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise TypeError("an alternative's logprob is not a number")
    out = sorted((float(v) for v in values), reverse=True)
    if not all(math.isfinite(v) for v in out):
        raise ValueError("an alternative's logprob is not finite")
    return out


def load_labelled_traces(path: Path, prompts: dict[str, str] | None = None,
                         checks: dict[str, float | None] | None = None, *, labelled: bool = True,
                         drafter: str | None = None, name: str | None = None) -> list[Trace]:
    """A user's answers for `edgecascade calibrate`, labelled (unless ``labelled=False``).

    A line may carry the question it answered as ``prompt`` (the last user message): the prompt
    features need it. Pass a dict as ``prompts`` to receive them, keyed by item id. A line may carry
    its answer's cross-check (:mod:`..quality.crosscheck`): the answering attempt's ``cross_check``
    of a `run --json` line, or a plain record's ``cross_check_result`` (the program's number, or
    null when it gave none). Pass a dict as ``checks`` to receive their results, keyed by item id.

    Each JSONL line is a trace as `bench run` writes it, or a plain record with ``answer`` (or
    ``content``), ``tokens``, ``logprobs``, optional ``top_logprobs`` and ``finish_reason``, and a
    label ``correct`` or ``accepted`` (for example whether your user accepted the answer). A line of
    `edgecascade run --json --logprobs` output plus a ``correct`` (or ``label``) field works too: its
    answering attempt (the one of the line's own ``tier``: a tier after it may have failed) is used.

    ``labelled=False`` reads answers whose labels are not needed (adapting to unlabelled traffic): a
    line may then have none, and its trace's ``correct`` is False, to be ignored. ``drafter`` (a
    model name): from a `run --json` line take the answer of that model's attempt, not the last one
    (every draft counts when a calibration adapts to its traffic, escalated ones too, and an
    escalated line's last answer is another model's); a tier name picks it too. A line without
    such an attempt is an error. ``name``: what a line without an id is named by, with its line
    number (default: the file's name).
    """
    if path.is_dir():
        raise ConfigError(f"{path} is a folder: name the .jsonl trace files in it (`bench run` writes one per "
                          "dataset and model, e.g. traces/gsm8k/MODEL-KEY.jsonl)")
    if not path.is_file():
        raise ConfigError(f"no traces file at {path}")
    out: list[Trace] = []
    traced_at: dict[tuple[str, ...], tuple[int, int]] = {}  # each answer's first line, and its place in ``out``
    lines = read_utf8(path).split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except (ValueError, RecursionError) as e:  # a number too long for int(), nesting too deep too
            if n == len(lines):  # the last line, without its newline: cut by an interrupted write, as
                # `bench run` and `bench report` read it too
                warnings.warn(f"{path}:{n}, the last line, is cut short (an interrupted write): left out",
                              stacklevel=2)
                continue
            raise ConfigError(f"{path}:{n} is not valid JSON ({type(e).__name__}: {str(e)[:200]}); if it is a trace "
                              "cut short by an interrupted run, delete that line (`bench run` traces its item "
                              "again)") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{path}:{n} is a JSON {type(d).__name__}, not an object: each line must be one JSON "
                              "object (a trace, or a `run --json --logprobs` line with a label)")
        label = d.get("correct", d.get("accepted_by_user", d.get("label")))
        if isinstance(d.get("attempts"), list) and d["attempts"]:  # a `run --json --logprobs` line
            # the answering attempt: the one of the line's own tier (after it, a tier may have failed
            # and the cascade returned this answer), else the last
            last = next((a for a in reversed(d["attempts"]) if isinstance(a, dict) and "tier" in d
                         and a.get("tier") == d["tier"] and a.get("content") is not None), d["attempts"][-1])
            if "error" in d:  # a record without an answer: its last draft, if any tier wrote one
                drafts = [a for a in d["attempts"] if isinstance(a, dict) and a.get("content") is not None]
                if not drafts:
                    continue  # every tier failed: nothing was drafted to learn from
                last = drafts[-1]
            if drafter is not None:
                last = next((a for a in d["attempts"] if isinstance(a, dict) and drafter in (a.get("model"),
                                                                                            a.get("tier"))), None)
                if last is None:
                    made = ", ".join(f"{a.get('tier')} ({a.get('model')})"
                                     for a in d["attempts"] if isinstance(a, dict))
                    raise ConfigError(f"{path}:{n} has no answer by {drafter} (its attempts: {made}): name the "
                                      "drafting tier or model with --drafter")
            usage = last.get("tokens") if isinstance(last, dict) else None
            if not isinstance(usage, dict):
                raise ConfigError(f"{path}:{n}: its answering attempt has no token counts ('tokens'): write the "
                                  "lines with `edgecascade run --json --logprobs`")
            if not isinstance(last.get("logprobs"), dict):
                raise ConfigError(f"{path}:{n}: its answering attempt ({last.get('tier')}, {last.get('model')}) has no "
                                  "per-token logprobs: write the lines with `edgecascade run --json --logprobs`, from "
                                  "a tier that returns logprobs (a calibration is fitted on them)")
            d = {**last, "answer": last.get("content") or "", "completion_tokens": usage.get("completion", 0),
                 "prompt_tokens": usage.get("prompt", 0),
                 **{k: v for k, v in d.items() if k in ("id", "item_id", "prompt")}}
            if isinstance(last.get("cross_check"), dict):
                d["cross_check_result"] = last["cross_check"].get("result")
        elif label is None:
            label = d.get("accepted")
        if not labelled:
            label = False
        elif not isinstance(label, bool):
            raise ConfigError(f"{path}:{n} has no boolean label: 'correct' or 'accepted' (on a `run --json` "
                              "line, whose own 'accepted' is the cascade's verdict: 'correct' or 'label'). "
                              "Answers without labels can adapt a calibration to their traffic: "
                              "`calibrate --adapt BASE --unlabelled`")
        lp = d.get("logprobs")
        if isinstance(lp, dict):  # the shape `edgecascade run --json --logprobs` prints per attempt
            tokens, logprobs = lp.get("tokens", []), lp.get("logprobs", [])
            try:
                top = [_alternatives(row) for row in lp.get("top", [])]
            except (TypeError, ValueError, IndexError, KeyError):
                raise ConfigError(f"{path}:{n}: 'top' is not one list of [token, logprob] pairs per token, as "
                                  "`run --json --logprobs` prints it") from None
        else:
            tokens, logprobs = d.get("tokens", []), lp or []
            try:
                top = [_alternatives(row) for row in d.get("top_logprobs", [])]
            except (TypeError, ValueError, IndexError, KeyError):
                raise ConfigError(f"{path}:{n}: 'top_logprobs' is not one row per token of the alternatives' "
                                  "logprobs (numbers, [token, logprob] pairs or {\"token\", \"logprob\"} "
                                  "objects), each a finite number") from None
        if not isinstance(tokens, list) or not isinstance(logprobs, list) or not tokens \
                or len(tokens) != len(logprobs) or not all(isinstance(x, str) for x in tokens):
            raise ConfigError(f"{path}:{n} needs 'tokens' (a list of strings) and one 'logprobs' value per token")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in logprobs):
            raise ConfigError(f"{path}:{n} has a logprob that is not a finite number (NaN, -Infinity or not a "
                              "number): export each token's log probability as a number")
        k = min((len(r) for r in top), default=0)
        answer = str(d.get("answer", d.get("content", "".join(tokens))) or "")
        # a line without an id (`run --json` writes none) is named by ``name`` (the file's name) and its
        # line: the calibration split, by id, is then the same however and wherever the path is typed
        # ("lab.jsonl", "/home/me/lab.jsonl", or another machine's copy: a full path had split them
        # differently), and the caller names two files of one name apart
        item_id = str(d.get("item_id", d.get("id", f"{name or path.name}:{n}")))
        if prompts is not None and isinstance(d.get("prompt"), str):
            prompts[item_id] = d["prompt"]
        if checks is not None and "cross_check_result" in d:
            r = d["cross_check_result"]
            if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r)):
                raise ConfigError(f"{path}:{n} has a cross_check_result that is not a finite number or null")
            checks[item_id] = None if r is None else float(r)
        t = Trace(
            dataset=str(d.get("dataset", path.stem)), item_id=item_id,
            domain=str(d.get("domain", "")), tier=str(d.get("tier", "")), model=str(d.get("model", "")),
            settings="", answer=answer, correct=label, finish_reason=str(d.get("finish_reason", "stop")),
            prompt_tokens=int(_number(d, "prompt_tokens", 0, path, n)),
            completion_tokens=int(_number(d, "completion_tokens", len(tokens), path, n)),
            latency_s=_number(d, "latency_s", 0.0, path, n), first_token_s=None,
            cost=_number(d, "cost", 0.0, path, n),
            tokens=list(tokens), logprobs=[max(float(x), LOGPROB_FLOOR) for x in logprobs],  # -1e308 broke adapting
            # floored as the chosen tokens' are, and as providers floor both: a -9999 placeholder
            # alternative gave a margin 100 times the one the same draft gets when served
            top_logprobs=([[max(float(x), LOGPROB_FLOOR) for x in r[:k]] for r in top]
                          if k and len(top) == len(tokens) else []),
            prompt_sha256=str(d.get("prompt_sha256") or ""),
        )
        # a line `bench run` wrote: a changed prompt (or a regenerated item) is a later line of the same
        # item, model and settings, and the last one is the trace, as every report reads the file
        traced = "settings" in d and "prompt_sha256" in d
        key = (item_id, str(d.get("model", "")), str(d.get("settings", ""))) if traced else (item_id,)
        at = traced_at.get(key)
        if at is not None:
            first_line, place = at
            if not traced:
                raise ConfigError(f"{path}:{n}: item id {item_id!r} is on line {first_line} too: each labelled answer "
                                  "needs its own id (the `id` field)")
            out[place] = t
            continue
        traced_at[key] = (n, len(out))
        out.append(t)
    if not out:
        raise ConfigError(f"{path} holds no traces")
    return out


def _number(d: dict[str, Any], key: str, default: float, path: Path, n: int) -> float:
    """A line's finite, non-negative number ``key`` (``default`` when absent), or a ConfigError that
    names the line: a null or a string had stopped `calibrate` with a traceback."""
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{path}:{n}: '{key}' is {json.dumps(value)[:40]}, not a non-negative number: write it "
                          "as a number, or leave it out")
    return float(value)


def fill_dataset_prompts(traces: list[Trace], prompts: dict[str, str], datasets: Sequence[str] = (),
                         loaded: dict[str, dict[str, Item]] | None = None) -> dict[str, int]:
    """Prompts for lines `bench run` wrote (they store a digest of the prompt, not the prompt): for a
    trace of a built-in dataset (gsm8k, humaneval), or of a .jsonl dataset in ``datasets`` (traced
    under its file's stem), with no prompt in ``prompts``, the dataset's prompt for its item, where
    its digest matches the trace's (so a prompt that changed since is never attached). Fills
    ``prompts`` in place, and grades those traces again in place where their grade was made
    otherwise (:func:`regraded`: a grader or reference fixed since); returns how many prompts were
    filled per dataset. ``loaded``: datasets read before, by name (a caller filling several lists
    of traces reads each dataset once)."""
    sources = {Path(f).stem: f for f in datasets}
    loaded = {} if loaded is None else loaded
    wanted: dict[str, list[int]] = {}
    for n, t in enumerate(traces):
        if t.item_id not in prompts and t.prompt_sha256 and (t.dataset in DATASETS or t.dataset in sources):
            wanted.setdefault(t.dataset, []).append(n)
    filled: dict[str, int] = {}
    for name, places in wanted.items():
        try:
            if name not in loaded:
                loaded[name] = {i.id: i for i in load(sources.get(name, name))}
            items = loaded[name]
        except EdgecascadeError as e:  # the prompts are a help, not a need: go on without them
            log.warning("the %s dataset cannot be read (%s): its %d traced answers keep no prompt", name, e,
                        len(places))
            continue
        for n in places:
            t = traces[n]
            item = items.get(t.item_id)
            if item is not None and prompt_sha256(item.prompt) == t.prompt_sha256:
                prompts[t.item_id] = item.prompt
                filled[name] = filled.get(name, 0) + 1
                traces[n] = regraded({t.item_id: t}, items)[t.item_id]
    return filled
