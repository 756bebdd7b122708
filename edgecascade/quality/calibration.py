"""Calibrated confidence: features of a draft -> the probability that it is correct.

A calibration is a standardised logistic regression per model, fitted on labelled traces (a
calibration split of a benchmark, or a user's own accepted/rejected answers) and stored as a small
JSON file next to the model's manifest (``models/<name>.calibration.json``) with the command, data
and seed that produced it and its held-out quality. Applying it is a dot product, so it costs
nothing at query time; fitting needs scikit-learn (``pip install 'edgecascade[bench]'``).

Why logistic regression: the features are few and strongly informative, the data are hundreds of
items, and a linear model on standardised features is hard to over-fit and easy to inspect.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import strict_json
from ..config import RepetitionCheck
from ..errors import ConfigError, OneKindError
from ..types import Completion
from .checks import check_refusal, check_repetition, check_truncated
from .crosscheck import CROSS_CHECK_FEATURES
from .domain import prompt_domain
from .examples import examples_pass_rate
from .features import LogprobFeatures, logprob_features
from .structure import code_features, math_features, prompt_features
from .thresholds import label_shift_weights, threshold_for_target

#: every feature a calibrator may use; the names are the keys of :func:`draft_features`
FEATURE_NAMES = (
    "mean_logprob", "min_logprob", "p10_logprob", "mean_margin", "mean_entropy", "n_tokens_log",
    "truncated", "repetition", "refusal",
    "has_final_number", "final_integer", "final_negative", "final_lp_min", "final_lp_mean", "reasoning_agrees",
    "n_numbers_log", "arith_checked_log", "arith_wrong", "numbers_lp_p10",
    "code_block", "code_parses", "defines_function", "code_lp_mean", "code_lp_p10", "prose_chars_log",
    "prompt_numbers_log", "prompt_numbers_used",
)
#: features that need the prompt's examples run against the draft's code (opt-in: it executes code)
EXAMPLE_FEATURES = ("has_examples", "examples_pass")
#: the features a cross-check of a math draft gives (opt-in: one more generation, and it executes code)
NO_CROSS_CHECK = dict.fromkeys(CROSS_CHECK_FEATURES, 0.0)
#: every feature a calibration file may name: the ones :func:`draft_features` computes
KNOWN_FEATURES = frozenset((*FEATURE_NAMES, *EXAMPLE_FEATURES, *CROSS_CHECK_FEATURES))


log = logging.getLogger(__name__)
_REP = RepetitionCheck()  # the documented defaults: a calibration's features must not depend on a config


def draft_features(c: Completion, lf: LogprobFeatures | None = None, *, prompt: str | None = None,
                   run_examples: bool = False, cross_check: dict[str, float] | None = None) -> dict[str, float]:
    """Every calibration feature of one draft (math and code structure features are both computed:
    each is neutral where it does not apply, so one calibrator serves mixed traffic). ``lf``: the
    draft's logprob features when the caller has them already. ``prompt``: the question (the last
    user message), for the prompt features; with ``run_examples`` too, the examples it states are
    run against the draft's code (in a subprocess). ``cross_check``: the draft's cross-check features
    (:func:`.crosscheck.cross_check_features`), where it was cross-checked; neutral otherwise."""
    f: dict[str, float] = dict(cross_check if cross_check is not None else NO_CROSS_CHECK)
    if run_examples and prompt:
        try:
            rate = examples_pass_rate(prompt, c.text)
        except OSError as e:  # no temp dir, no process (EAGAIN, ENOMEM): the draft is judged without them
            log.warning("the prompt's examples could not be run against the draft (%s: %s); it is judged "
                        "as a draft with no examples", type(e).__name__, e)
            rate = None
        f["has_examples"] = 0.0 if rate is None else 1.0
        f["examples_pass"] = 0.0 if rate is None else rate
    if lf is None and c.logprobs is not None:
        lf = logprob_features(c.logprobs)
    if lf is not None:
        # a draft without alternatives (fewer than 2 per token) has no margin or entropy: neutral. One
        # with a missing (null) alternative stays NaN, so its score cannot be computed and it escalates,
        # as a missing chosen logprob does: a 0 there read as certainty and could pass the threshold
        top = c.logprobs.top_logprobs if c.logprobs is not None else None
        alternatives = top is not None and top.ndim == 2 and top.shape[1] >= 2

        def neutral(v: float) -> float:
            return v if math.isfinite(v) or (alternatives and math.isnan(v)) else 0.0

        f.update(mean_logprob=lf.mean_logprob, min_logprob=lf.min_logprob, p10_logprob=lf.p10_logprob,
                 mean_margin=neutral(lf.mean_margin), mean_entropy=neutral(lf.mean_entropy))
    n_tokens = c.usage.completion_tokens
    if (n_tokens <= 0 or not c.usage.reported) and c.logprobs is not None:
        # a backend that sent no token counts (they read 0) but logprobs: count the tokens it scored.
        # A 0 here reads as a very short answer, which the calibrators trust: every draft was accepted
        n_tokens = len(c.logprobs)
    f["n_tokens_log"] = math.log1p(n_tokens)
    f["truncated"] = 0.0 if check_truncated(c).passed else 1.0
    looping = not check_repetition(c, min_period=_REP.min_period, min_repeats=_REP.min_repeats).passed
    f["repetition"] = 1.0 if looping else 0.0
    f["refusal"] = 0.0 if check_refusal(c).passed else 1.0
    f.update(math_features(c))
    f.update(code_features(c))
    f.update(prompt_features(prompt, c.text))
    return f


#: a logit is clipped to this before the sigmoid: an extreme feature (a logprob of -9999) must give
#: P ~ 0, not an overflow (exp(500) is finite; P then differs from 0 or 1 by under 1e-217)
_LOGIT_LIMIT = 500.0


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """P from log-odds, clipped to +-500 first so an extreme one cannot overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -_LOGIT_LIMIT, _LOGIT_LIMIT)))


@dataclass(frozen=True)
class ThresholdTable:
    """What a calibrator's quality-target thresholds were chosen on: each calibration item's
    out-of-fold score, whether the small model's draft was right and whether the large model's
    answer was, with the intercept the calibrator had then and the safety margin used. Kept so that
    the thresholds can be chosen again for other traffic (:mod:`.prior_shift`) without the traces."""

    scores: list[float]
    small_right: list[bool]
    large_right: list[bool]
    intercept: float  # the calibrator's intercept when the scores were made (adapting moves it)
    margin_z: float
    #: the calibrator's own mean P(correct) on these items when the table was made: the base rate its
    #: probabilities stand for here. It is ``prior`` where the calibrator was fitted on exactly these
    #: items (a logistic fit's mean matches its data); a pooled calibrator fitted on every item but
    #: judging only the prompts of no domain may differ there. None (older files): take ``prior``.
    fitted_prior: float | None = None

    def __post_init__(self) -> None:
        if not (len(self.scores) == len(self.small_right) == len(self.large_right)):
            raise TypeError("threshold table columns differ in length")

    @property
    def prior(self) -> float:
        """How often the small model's draft was right on these items: the base rate learned."""
        return sum(self.small_right) / len(self.small_right) if self.small_right else math.nan

    def prior_at(self, shift: float) -> float:
        """This table's base rate moved by ``shift`` log-odds."""
        return float(sigmoid(np.array(logit(self.prior) + shift)))

    def thresholds_at(self, shift: float, targets: Iterable[str]) -> dict[str, float]:
        """The quality-target thresholds for traffic whose log-odds of a right draft are ``shift``
        above this table's (its base rate moved by as much), for a calibrator whose intercept is this
        table's plus ``shift``: chosen by the same rule and margin on these items, each weighted to
        the new base rate, then moved by ``shift`` onto the calibrator's new scale. A shift of 0
        gives back the thresholds the table was made for."""
        weights = label_shift_weights(self.small_right, self.prior, self.prior_at(shift)) if shift else None
        scores, small, large = np.asarray(self.scores), np.asarray(self.small_right), np.asarray(self.large_right)
        return {k: _moved(threshold_for_target(scores, small, large, float(k), self.margin_z, weights), shift)
                for k in targets}


def logit(p: float) -> float:
    """log(p / (1 - p)) of a probability strictly between 0 and 1."""
    return math.log(p) - math.log1p(-p)


def _moved(p: float, shift: float) -> float:
    """A probability moved by ``shift`` log-odds (a threshold of 0, 1 or +inf stays as it is)."""
    return p if not 0 < p < 1 or not shift else float(sigmoid(np.array(logit(p) + shift)))


@dataclass
class Calibration:
    """A fitted calibrator: P(correct) = sigmoid(intercept + coef . (x - mean) / scale)."""

    model: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    #: thresholds on P(correct) chosen on the calibration split, keyed by quality target ("0.95")
    thresholds: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: per-domain calibrators (``"math"``, ``"code"``: see :mod:`.domain`), fitted where the data
    #: allowed; this one, fitted on every domain, answers for a prompt with no domain or no own one
    domains: dict[str, Calibration] = field(default_factory=dict)
    #: the domain this calibrator was fitted on (None: all of them)
    domain: str | None = None
    #: what its thresholds were chosen on (None: a calibration without quality_target thresholds,
    #: or one saved before tables were kept)
    threshold_table: ThresholdTable | None = None

    @property
    def label(self) -> str:
        """How a decision names its score: ``calibrated`` or ``calibrated[math]``."""
        return f"calibrated[{self.domain}]" if self.domain else "calibrated"

    def pooled(self) -> Calibration:
        """This calibration without its domain calibrators (a copy: nothing written to it reaches this one)."""
        return replace(self, domains={}, thresholds=dict(self.thresholds), meta=dict(self.meta))

    def for_domain(self, domain: str | None) -> Calibration:
        """The calibrator for a domain: its own one where this calibration has it, else this one."""
        return self.domains.get(domain, self) if domain else self

    def for_prompt(self, prompt: str | None) -> Calibration:
        """The calibrator for a prompt (its domain read by :func:`.domain.prompt_domain`)."""
        return self.for_domain(prompt_domain(prompt)) if self.domains else self

    @property
    def runs_examples(self) -> bool:
        """Whether this calibration needs the prompt-examples check (which executes the draft's code)."""
        return any(n in EXAMPLE_FEATURES for n in self.features)

    @property
    def reads_alternatives(self) -> bool:
        """Whether this calibration (or one of its domains') reads the alternatives of each token (a
        margin or an entropy): a draft with fewer per token than it was fitted on cannot be judged."""
        return any(n in ("mean_margin", "mean_entropy") for c in (self, *self.domains.values()) for n in c.features)

    @property
    def runs_cross_check(self) -> bool:
        """Whether this calibration needs math drafts cross-checked (one more generation; runs its code)."""
        return any(n in CROSS_CHECK_FEATURES for n in self.features)

    def vector(self, feats: dict[str, float]) -> np.ndarray:
        return np.array([feats.get(n, 0.0) for n in self.features], dtype=np.float64)

    def predict(self, feats: dict[str, float]) -> float:
        z = (self.vector(feats) - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = self.intercept + float(z @ np.asarray(self.coef))
        if math.isnan(logit):  # a feature that cannot be computed (a null logprob): no score, as
            return math.nan    # predict_many gives; clamped, it had read as P 0 ("calibrated 0.000")
        return 1.0 / (1.0 + math.exp(-min(_LOGIT_LIMIT, max(-_LOGIT_LIMIT, logit))))

    def logits(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """log(P / (1 - P)) of each row, clipped to +-500."""
        X = np.array([self.vector(r) for r in rows]).reshape(len(rows), len(self.features))
        z = (X - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.clip(self.intercept + z @ np.asarray(self.coef), -_LOGIT_LIMIT, _LOGIT_LIMIT)

    def predict_many(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        return sigmoid(self.logits(rows))

    def predict_each(self, rows: Sequence[dict[str, float]], domains: Sequence[str | None]) -> np.ndarray:
        """P(correct) of each row by its domain's calibrator: one vectorised pass per calibrator."""
        judges = [self.for_domain(d) for d in domains]
        out = np.empty(len(rows))
        for judge in {id(j): j for j in judges}.values():
            idx = [i for i, j in enumerate(judges) if j is judge]
            out[idx] = judge.predict_many([rows[i] for i in idx])
        return out

    def threshold_for(self, target: float) -> float:
        """The threshold this calibration chose for a quality target, on its calibration split."""
        key = f"{target:g}"
        if key not in self.thresholds:
            have = ", ".join(sorted(self.thresholds)) or "none"
            raise ConfigError(
                f"the calibration of {self.model} has no threshold for quality_target {key} (it has: {have}); "
                f"rerun `edgecascade bench report --target {key} --save-calibration`"
            )
        return self.thresholds[key]

    def save(self, path: Path) -> None:
        """Strict JSON: a threshold that keeps no draft (+inf) and an undefined score (NaN) are null."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(strict_json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        domains = {k: cls.from_dict(v) for k, v in (data.get("domains") or {}).items()}
        # a null threshold is one that keeps no draft
        thresholds = {k: math.inf if v is None else float(v) for k, v in (data.get("thresholds") or {}).items()}
        table = data.get("threshold_table")
        cal = cls(**{**data, "domains": domains, "thresholds": thresholds,
                     "threshold_table": None if table is None else ThresholdTable(**table)})
        for c in (cal, *domains.values()):
            if not isinstance(c.meta, dict):  # read when a cascade is built: its model, its alternatives
                raise TypeError("'meta' is not a JSON object")
            if not (len(c.features) == len(c.mean) == len(c.scale) == len(c.coef)):
                raise TypeError("feature/coefficient counts differ")
            if set(c.features) - set(cal.features):  # checked against the config for the pooled one only
                raise ValueError(f"a domain calibrator reads {', '.join(sorted(set(c.features) - set(cal.features)))}, "
                                 "which the pooled one does not")
            unknown = sorted(set(c.features) - KNOWN_FEATURES)
            if unknown:  # it would be read as 0 for every draft, silently
                raise ValueError(f"unknown features {', '.join(map(repr, unknown))}")
            numbers = [*c.mean, *c.scale, *c.coef, c.intercept]
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
                raise ValueError("its weights must all be finite numbers")
            if not all(x > 0 for x in c.scale):  # a feature is divided by its scale
                raise ValueError("a feature's scale is not above 0")
            # a threshold is a number, or +inf (null in the file): one that keeps no draft. NaN rejected
            # every draft "< nan", and -inf every draft as one that "keeps no draft", its opposite
            if any(math.isnan(t) or t == -math.inf for t in c.thresholds.values()):
                raise ValueError("a threshold is NaN or -Infinity: give a number, or null for one that keeps no draft")
        for d, sub in domains.items():  # a missing one would fail mid-query, and only for that domain
            missing = set(cal.thresholds) - set(sub.thresholds)
            if missing:
                raise TypeError(f"the {d} calibrator has no threshold for quality_target {', '.join(sorted(missing))}")
        return cal

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            cal = cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigError(
                f"no calibration at {path}: fit one with `edgecascade bench report --save-calibration` or "
                "`edgecascade calibrate --traces FILE`"
            ) from None
        except IsADirectoryError:
            raise ConfigError(f"{path} is a directory, not a calibration file") from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError, ValueError) as e:
            raise ConfigError(f"{path} is not a calibration file, or a damaged one ({e}): name a file that "
                              "`edgecascade calibrate` or `bench report --save-calibration` wrote, or fit it "
                              "again") from None
        return cal


#: a domain gets its own calibrator only with this many labelled drafts, and this many of each
#: kind (right and wrong): fewer, and its weights would follow noise; the pooled one answers instead
MIN_DOMAIN_ITEMS = 60
MIN_DOMAIN_CLASS = 10


def _fit_one(rows: Sequence[dict[str, float]], labels: Sequence[bool], *, model: str, names: list[str],
             c_reg: float, seed: int, meta: dict[str, Any], domain: str | None = None) -> Calibration:
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=int)
    X = np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature carries no information; keep it inert
    clf = LogisticRegression(C=c_reg, max_iter=5000, random_state=seed)
    clf.fit((X - mean) / scale, y)
    return Calibration(model=model, features=names, mean=mean.tolist(), scale=scale.tolist(),
                       coef=clf.coef_[0].tolist(), intercept=float(clf.intercept_[0]), meta=meta, domain=domain)


def fit_calibration(rows: Sequence[dict[str, float]], labels: Sequence[bool], *, model: str,
                    features: Sequence[str] = FEATURE_NAMES, c_reg: float = 1.0, seed: int = 0,
                    meta: dict[str, Any] | None = None,
                    prompts: Sequence[str | None] | None = None, source: str = "the labelled traces",
                    domains: Sequence[str] | None = None) -> Calibration:
    """Fit P(correct | features) by L2-regularised logistic regression on standardised features.

    With ``prompts`` (one per row), each domain the prompts show (:func:`.domain.prompt_domain`)
    with at least ``MIN_DOMAIN_ITEMS`` drafts, ``MIN_DOMAIN_CLASS`` of them right and as many
    wrong, also gets its own calibrator in ``domains``; the pooled one is always fitted.
    ``source`` names the data in an error (e.g. "the calibration halves"). ``domains``: fit exactly
    these domain calibrators instead, whatever their counts (each needs both kinds of draft): a
    part of some data, fitted to score the rest, must judge each item with the kind of calibrator
    the whole data's calibration will.
    """
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("fitting a calibration needs scikit-learn: pip install 'edgecascade[bench]'") from None
    names = list(features)
    finite = [all(math.isfinite(r.get(n, 0.0)) for n in names) for r in rows]
    if not all(finite):
        # a draft a score cannot be computed for (a backend sent a null logprob) is never accepted: it
        # escalates, so no calibrator judges it, and scikit-learn refuses NaN outright
        log.warning("%d of the %d drafts in %s have a feature that is not a finite number (a logprob the "
                    "backend did not send): they always escalate, and are left out of the fit",
                    finite.count(False), len(rows), source)
        rows = [r for r, ok in zip(rows, finite) if ok]
        labels = [y for y, ok in zip(labels, finite) if ok]
        prompts = None if prompts is None else [p for p, ok in zip(prompts, finite) if ok]
    if not labels:
        raise OneKindError(f"cannot calibrate: {source} holds no drafts, and a calibrator learns from right and "
                          "wrong ones: trace or label more items")
    if len(set(bool(x) for x in labels)) < 2:
        kind = "right" if bool(labels[0]) else "wrong"
        raise OneKindError(f"cannot calibrate: in {source} all {len(labels)} drafts are {kind}, and a calibrator "
                          "learns from both kinds: trace or label more items")
    cal = _fit_one(rows, labels, model=model, names=names, c_reg=c_reg, seed=seed, meta=meta or {})
    if prompts is not None:
        if len(prompts) != len(rows):
            raise ValueError("one prompt per row")
        by_domain: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            d = prompt_domain(p)
            if d is not None:
                by_domain.setdefault(d, []).append(i)
        for d, idx in sorted(by_domain.items()):
            right = sum(bool(labels[i]) for i in idx)
            if domains is not None:
                if d not in domains:
                    continue
                if min(right, len(idx) - right) == 0:
                    raise OneKindError(f"cannot fit the {d} calibrator: in {source} all {len(idx)} {d} drafts are "
                                       f"{'right' if right else 'wrong'}: trace or label more items")
            elif len(idx) < MIN_DOMAIN_ITEMS or min(right, len(idx) - right) < MIN_DOMAIN_CLASS:
                continue
            cal.domains[d] = _fit_one([rows[i] for i in idx], [labels[i] for i in idx], model=model, names=names,
                                      c_reg=c_reg, seed=seed, domain=d,
                                      meta={"items": len(idx), "right": right})
    return cal


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged); nan if one class is missing. A score
    that could not be computed (NaN) ranks lowest, tied with any other: such a draft is never accepted
    (sorted as it came, it had ranked as the most confident, and its place depended on the order)."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def resample_groups(groups: Sequence[Hashable]) -> Callable[[np.random.Generator], np.ndarray]:
    """Draw items again as a bootstrap must when they come in groups whose items are alike (several
    instances of one problem template, several questions from one user): whole groups, with
    replacement, as many as there are, each bringing all its items. Items resampled one by one would
    count a group of near-copies as that many independent items and give intervals far too narrow.
    Groups are taken in order of first appearance, so when every item is its own group the draws are
    those of resampling items (``rng.integers(0, n, n)``)."""
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    parts = [np.array(m, dtype=np.intp) for m in members.values()]
    n = len(groups)
    if len(parts) == n:
        return lambda rng: rng.integers(0, n, n)
    return lambda rng: np.concatenate([parts[int(g)] for g in rng.integers(0, len(parts), len(parts))])


def auroc_interval(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray, *,
                   resamples: int = 1000, level: float = 0.95, seed: int = 0,
                   groups: Sequence[Hashable] | None = None) -> tuple[float, float]:
    """A percentile bootstrap interval for the AUROC (items resampled with replacement, seeded): on a
    few hundred items an AUROC moves by hundredths, and a report should say by how much. ``groups``:
    each item's group, where items come in groups of alike ones (see :func:`resample_groups`)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    draw = resample_groups(range(len(s)) if groups is None else groups)
    values = []
    for _ in range(resamples):
        idx = draw(rng)
        a = auroc(s[idx], y[idx])
        if math.isfinite(a):
            values.append(a)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def expected_calibration_error(probs: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                               bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width probability bins, weighted by bin size. A
    probability that could not be computed (NaN) counts as 0: such a draft is never accepted (it had
    been counted in the total but in no bin)."""
    p = np.asarray(probs, dtype=np.float64)
    p = np.where(np.isnan(p), 0.0, p)
    y = np.asarray(labels, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.sum() / p.size * abs(y[m].mean() - p[m].mean())
    return float(err)
