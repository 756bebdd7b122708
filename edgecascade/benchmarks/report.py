"""`edgecascade bench report`: calibrate on one split, judge every policy on the other.

Discipline: items are split once, by a fixed seed, into a calibration half and a held-out half.
Everything that is learned or chosen (the calibrator's weights, every policy's threshold) sees only
the calibration half; every number reported is measured on the held-out half. A fresh test
(``bench report --fresh-from NAME=N``) fits on a dataset's first N items instead and judges the
items traced after them.

This module builds the report (a dict, saved as report.json); :mod:`.render` prints it, writes it as
Markdown and draws its figure.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import OneKindError
from ..quality.calibration import (
    EXAMPLE_FEATURES,
    FEATURE_NAMES,
    MIN_DOMAIN_ITEMS,
    Calibration,
    ThresholdTable,
    auroc,
    auroc_interval,
    draft_features,
    expected_calibration_error,
    fit_calibration,
)
from ..quality.crosscheck import CROSS_CHECK_FEATURES, CrossCheck
from ..quality.domain import prompt_domain
from .policies import (
    DEFAULT_MARGIN_Z,
    PolicyResult,
    always_large,
    always_small,
    cascadeflow_score,
    choose_threshold,
    curve,
    evaluate,
    mean_logprob_score,
    oracle,
    oracle_share_at_target,
    random_routing,
)
from .traces import Trace, alternatives_count

DEFAULT_SEED = 20261125


def split_ids(ids: Sequence[str], seed: int = DEFAULT_SEED,
              calibration_share: float = 0.5) -> tuple[set[str], set[str]]:
    """(calibration ids, held-out ids). Each item's side is a hash of (seed, its id), so it never
    changes as more items are traced: a resumed benchmark never moves an item across the split."""
    cal = set()
    for i in ids:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") / 2**64
        if h < calibration_share:
            cal.add(i)
    return cal, set(ids) - cal


@dataclass
class DatasetPairs:
    name: str
    calibration: list[list[Trace]]
    held_out: list[list[Trace]]
    #: item id -> the prompt the tiers were asked (for the prompt-examples features)
    prompts: dict[str, str] = field(default_factory=dict)
    #: set when ``calibration`` is the first items and ``held_out`` not the split's other half but
    #: the items from this index on, traced after them (``bench report --fresh-from``)
    fresh_from: int | None = None
    #: item id -> the drafting model's cross-check of that (math) item, where it was traced
    cross_checks: dict[str, Trace] = field(default_factory=dict)

    def cross_check_spend(self, ran: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per held-out item, the seconds and dollars its cross-check took (0 where it has none, or
        where ``ran`` says it was not made): what a policy that uses it pays on top of the draft."""
        ccs = [self.cross_checks.get(p[0].item_id) if ran is None or ran[i] else None
               for i, p in enumerate(self.held_out)]
        return (np.array([0.0 if c is None else c.latency_s for c in ccs]),
                np.array([0.0 if c is None else c.cost for c in ccs]))

    def unchecked(self) -> list[str]:
        """The math items without a traced cross-check (a variant that uses it needs them all)."""
        return [p[0].item_id for p in (*self.calibration, *self.held_out)
                if p[0].item_id not in self.cross_checks and self._domain(p[0]) == "math"]

    def _domain(self, t: Trace) -> str | None:
        """The domain a deployment reads from the item's prompt; the traced item's own, where the
        prompt is not at hand (a dataset that cannot be reloaded)."""
        prompt = self.prompts.get(t.item_id)
        return prompt_domain(prompt) if prompt is not None else (t.domain or None)


@dataclass
class ConfigRule:
    """The traced config's own rule for its first tier, applied offline to each stored draft (with
    the question, for the prompt features): the policy a deployment of that config runs."""

    label: str
    keep: Callable[[Trace, str | None], bool]
    #: False when the rule's calibration was fitted on other data, which may include the held-out items
    held_out: bool = True
    #: whether the rule cross-checks a draft (and so pays for its traced cross-check)
    cross_checks: Callable[[Trace, str | None], bool] | None = None


def max_random_share(pairs: Sequence[Sequence[Trace]], target: float) -> float:
    """The largest share random routing can keep while its expected accuracy meets the target."""
    s, lg = always_small(pairs).accuracy, always_large(pairs).accuracy
    goal = target * lg
    if s >= goal:
        return 1.0
    return max(0.0, (lg - goal) / (lg - s)) if lg > s else 0.0


class DraftFeatures:
    """Each small-model trace's calibration features, computed once (running a prompt's examples
    against a draft starts a process); one instance may serve many reports on the same traces."""

    def __init__(self, datasets: Sequence[DatasetPairs], run_examples: bool):
        # keyed like the traces (a .jsonl dataset's traces carry its file stem, whatever name it was given by)
        self.prompts = {(p[0].dataset, p[0].item_id): d.prompts[p[0].item_id]
                        for d in datasets for p in (*d.calibration, *d.held_out) if p[0].item_id in d.prompts}
        self.run_examples = run_examples
        self.cross_checks = {(p[0].dataset, p[0].item_id): d.cross_checks[p[0].item_id]
                             for d in datasets for p in (*d.calibration, *d.held_out) if p[0].item_id in d.cross_checks}
        self._cache: dict[tuple[str, str], dict[str, float]] = {}
        self._domains: dict[tuple[str, str], str | None] = {}

    def prompt(self, t: Trace) -> str | None:
        return self.prompts.get((t.dataset, t.item_id))

    def domain(self, t: Trace) -> str | None:
        """The domain a deployment would read from the trace's prompt (read once per item)."""
        key = (t.dataset, t.item_id)
        if key not in self._domains:
            self._domains[key] = prompt_domain(self.prompt(t))
        return self._domains[key]

    def cross_check(self, t: Trace) -> CrossCheck | None:
        """The draft's cross-check, from its traced program (None where the item has none)."""
        cc = self.cross_checks.get((t.dataset, t.item_id))
        return None if cc is None else CrossCheck.of(t.answer, cc.result)

    def __call__(self, t: Trace) -> dict[str, float]:
        key = (t.dataset, t.item_id)
        if key not in self._cache:
            cc = self.cross_check(t)
            self._cache[key] = draft_features(t.completion(), prompt=self.prompts.get(key),
                                              run_examples=self.run_examples,
                                              cross_check=cc.features if cc is not None else None)
        return self._cache[key]


def _random_at_target(d: DatasetPairs, target: float) -> float:
    """Random routing's share chosen on the calibration half; counted only if it meets the target on held-out."""
    share = max_random_share(d.calibration, target)
    held = random_routing(d.held_out, share)
    return share if held.accuracy >= target * always_large(d.held_out).accuracy - 1e-12 else 0.0


#: the calibrated variants a report fits: name -> features. The examples variant executes the
#: draft's code against the prompt's examples, so a deployment opts in to it (``run_examples``).
CALIBRATED = "calibrated"
CALIBRATED_EXAMPLES = "calibrated + examples"
#: also the cross-check of math drafts (one more generation: a policy using it pays its time), fitted
#: where every math item has its cross-check traced (``bench run`` with ``[cascade] cross_check = true``)
CALIBRATED_CROSS_CHECK = "calibrated + examples + cross-check"
_VARIANTS = {CALIBRATED: FEATURE_NAMES, CALIBRATED_EXAMPLES: FEATURE_NAMES + EXAMPLE_FEATURES,
             CALIBRATED_CROSS_CHECK: FEATURE_NAMES + EXAMPLE_FEATURES + CROSS_CHECK_FEATURES}
BASELINE_SCORES = ("mean logprob", "cascadeflow-style")
#: an experiment, reported beside the calibrators but never saved or deployed: the same features,
#: trained on "keeping the draft loses nothing" (it is right, or the large model is wrong too)
ROUTER = "router (escalation would not help)"
#: experiments too: each variant's calibrator fitted on every domain at once, applied to every
#: prompt (what the calibrated rule was before per-domain calibrators), so their gain is shown
POOLED_SUFFIX = ", one for all domains"


def _scores(cals: dict[str, Calibration], pairs: Sequence[Sequence[Trace]], feats: DraftFeatures
            ) -> dict[str, np.ndarray]:
    small = [p[0] for p in pairs]
    out = {"mean logprob": np.array([mean_logprob_score(t) for t in small]),
           "cascadeflow-style": np.array([cascadeflow_score(t) for t in small])}
    for name, cal in cals.items():
        # each draft is scored by the calibrator its prompt's domain picks, as in a deployment
        out[name] = cal.predict_each([feats(t) for t in small], [feats.domain(t) for t in small])
    return out


def _deployed_thresholds(cal: Calibration, pairs: Sequence[Sequence[Trace]], feats: DraftFeatures,
                         target: float) -> np.ndarray:
    """Per draft, the threshold a deployment applies: that of the calibrator its prompt picks."""
    key = f"{target:g}"
    return np.array([cal.for_domain(feats.domain(p[0])).thresholds[key] for p in pairs])


#: folds of the out-of-fold scores thresholds are chosen on (see :func:`out_of_fold_scores`)
THRESHOLD_FOLDS = 5


@dataclass
class OutOfFold:
    """Each calibration item's P(correct) from a calibration fitted without it: ``judged`` by the
    calibrator its domain picks (as deployed), ``pooled`` by the fold's pooled calibrator."""

    judged: np.ndarray
    pooled: np.ndarray


def fold_assignment(labels: Sequence[bool], domains: Sequence[str | None], *, seed: int,
                    folds: int = THRESHOLD_FOLDS) -> np.ndarray:
    """Each item's fold, drawn within its domain alone (stratified by label there), so that a
    domain calibrator's out-of-fold scores, and the threshold chosen on them, depend only on its own
    domain's items. Folds drawn over all items at once let adding GSM8K items reshuffle the code
    items' folds and move the code threshold (0.756 to 0.8596 with no change to code data). A
    domain with fewer than ``folds`` drafts of a kind gets that many folds. Domains with fewer than
    2 of a kind cannot be stratified alone (nor have a calibrator of their own): their items are
    drawn together, stratified by label, so their rare drafts do not all land in one fold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    def draw(idx: list[int]) -> None:
        y = np.array([bool(labels[i]) for i in idx])
        minority = int(min(y.sum(), len(y) - y.sum()))
        if minority >= 2:
            split = StratifiedKFold(min(folds, minority), shuffle=True, random_state=seed).split(y, y)
        elif len(idx) >= 2:
            split = KFold(min(folds, len(idx)), shuffle=True, random_state=seed).split(y)
        else:
            return  # one item: fold 0, scored by a calibration fitted on every other item
        for f, (_, test) in enumerate(split):
            out[np.asarray(idx)[test]] = f

    out = np.zeros(len(labels), dtype=int)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(domains):
        groups.setdefault(str(d), []).append(i)
    rest: list[int] = []
    for idx in groups.values():
        right = sum(bool(labels[i]) for i in idx)
        if min(right, len(idx) - right) >= 2:
            draw(idx)
        else:
            rest += idx
    if rest:
        draw(sorted(rest))
    return out


def out_of_fold_scores(rows: Sequence[dict[str, float]], labels: Sequence[bool], prompts: Sequence[str | None] | None,
                       domains: Sequence[str | None], *, seed: int, folds: int = THRESHOLD_FOLDS,
                       fitted_domains: Sequence[str] = (), source: str = "the calibration items",
                       **fit: Any) -> OutOfFold:
    """Scores to choose thresholds on. A calibrator scores the items it was fitted on better than
    it will score new ones (it has learned their noise), so a threshold chosen on its own fitting
    data keeps too many drafts: on random cuts of the GSM8K calibration half, thresholds chosen that
    way with a 1.645-SE margin met the target in only 67% of cuts, where the unfitted baselines met
    it in 88-94% (`bench reliability`). Here each item is scored by a calibration fitted on the other
    folds (:func:`fold_assignment`: drawn per domain, stratified by label), which scores it about as
    new data is scored: a little worse, since each fold's calibration learns from 4/5 of the data,
    so the thresholds lean to caution. Each fold fits exactly the domain calibrators the whole
    data's calibration has (``fitted_domains``), so every item is scored by the kind of calibrator
    that will judge it. Fewer folds where one kind of draft is rarer than that; at least 2 of each
    kind are needed."""
    n = len(rows)
    right = sum(bool(y) for y in labels)
    minority = min(right, n - right)
    if minority < 2:
        kind = "right" if right == minority else "wrong"
        raise OneKindError(f"cannot choose thresholds on {source}: only {minority} of its {n} drafts "
                           f"{'is' if minority == 1 else 'are'} {kind}, and out-of-fold scores need at least 2 of "
                           "each kind: trace or label more items")
    fold = fold_assignment(labels, domains, seed=seed, folds=folds)
    judged, pooled = np.empty(n), np.empty(n)
    for f in range(int(fold.max()) + 1):
        train, test = np.flatnonzero(fold != f).tolist(), np.flatnonzero(fold == f).tolist()
        cal = fit_calibration([rows[i] for i in train], [labels[i] for i in train], seed=seed,
                              prompts=None if prompts is None else [prompts[i] for i in train],
                              domains=fitted_domains, source=f"a fold of {source}", **fit)
        test_rows = [rows[i] for i in test]
        judged[test] = cal.predict_each(test_rows, [domains[i] for i in test])
        pooled[test] = cal.predict_many(test_rows)
    return OutOfFold(judged, pooled)


def _choose_thresholds(cal: Calibration, pooled: Sequence[Sequence[Trace]], feats: DraftFeatures, target: float,
                       margin_z: float, oof: OutOfFold) -> None:
    """The thresholds a deployed cascade uses, chosen on the calibration halves' out-of-fold scores:
    each domain calibrator's on its own domain's items; the pooled calibrator's on the items it will
    judge (prompts with no domain calibrator) when there are enough of them, else on every item."""
    key = f"{target:g}"
    judges = [cal.for_domain(feats.domain(p[0])) for p in pooled]
    for c in (cal, *cal.domains.values()):
        idx = [i for i, j in enumerate(judges) if j is c]
        scores = oof.judged
        if c is cal and len(idx) < MIN_DOMAIN_ITEMS:
            idx, scores = list(range(len(pooled))), oof.pooled
        # kept with the calibrator, so the thresholds can be chosen again for other traffic (.prior_shift)
        c.threshold_table = ThresholdTable(
            [float(x) for x in scores[idx]], [pooled[i][0].correct for i in idx],
            [pooled[i][-1].correct for i in idx], c.intercept, margin_z,
            fitted_prior=float(np.mean(c.predict_many([feats(pooled[i][0]) for i in idx]))))
        c.thresholds[key] = c.threshold_table.thresholds_at(0.0, [key])[key]


def _meets(p: PolicyResult, goal: float) -> bool:
    return p.accuracy >= goal - 1e-12


def accuracy_shift(fitted: Sequence[Sequence[Trace]], judged: Sequence[Sequence[Trace]]) -> dict[str, dict[str, float]]:
    """How often each tier (small, large) was right on the items fitted on and on the items judged,
    with a two-proportion z. A threshold is chosen where the fitted items just meet the target; if
    the judged items are harder for the small model, or easier for the large one, than those, the
    same scores mean less and the target asks more, so a miss there says as much about the data as
    about the rule: on GSM8K's items 1,100-1,318 the 0.5B was right on 16.9% against 25.5% of the
    first 1,100 (z -2.7), and the calibrated threshold missed the target by 2.1 points. A rendered
    report warns of a shift from ``SHIFT_Z`` (:mod:`.render`) on."""
    out = {}
    for tier, i in (("small", 0), ("large", -1)):
        a, n_a = sum(p[i].correct for p in fitted), len(fitted)
        b, n_b = sum(p[i].correct for p in judged), len(judged)
        pa, pb = a / n_a if n_a else math.nan, b / n_b if n_b else math.nan
        pooled = (a + b) / (n_a + n_b) if n_a + n_b else math.nan
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b)) if n_a and n_b else 0.0
        out[tier] = {"fitted": pa, "judged": pb, "z": (pb - pa) / se if se > 0 else 0.0}
    return out


def calibration_ids_digest(d: DatasetPairs) -> str:
    """sha256 of the calibration half's item ids: which items a calibration was fitted on, in 64 characters."""
    return hashlib.sha256("\n".join(sorted(p[0].item_id for p in d.calibration)).encode()).hexdigest()


def _data_record(d: DatasetPairs) -> dict[str, Any]:
    """What a calibration's meta keeps of each dataset it was fitted on."""
    rec: dict[str, Any] = {"calibration_items": len(d.calibration), "held_out_items": len(d.held_out),
                           "calibration_ids_sha256": calibration_ids_digest(d)}
    if d.fresh_from is not None:
        rec["fresh_from"] = d.fresh_from
    return rec


def fitted_on(meta: dict[str, Any], datasets: Sequence[DatasetPairs], seed: int) -> bool:
    """Whether a calibration (by the record :func:`_data_record` keeps in its meta) was fitted on
    exactly these datasets' calibration items, so that everything else in them is unseen by it. An
    adapted calibration (``calibrate --adapt``) is not: it was moved on drafts its record does not
    name, which may be the very items judged."""
    if meta.get("adapted"):
        return False
    data = meta.get("data") or {}
    if meta.get("seed") != seed or set(data) != {d.name for d in datasets}:
        return False
    for d in datasets:
        rec = data[d.name]
        if "calibration_ids_sha256" in rec:  # which items it was fitted on
            if rec["calibration_ids_sha256"] != calibration_ids_digest(d):
                return False
        elif rec != {"calibration_items": len(d.calibration), "held_out_items": len(d.held_out)}:
            return False  # an older record: only the counts to compare
    return True


def build_report(datasets: Sequence[DatasetPairs], *, model: str, target: float, seed: int,
                 command: str, run_examples: bool = False, margin_z: float = DEFAULT_MARGIN_Z,
                 features: DraftFeatures | None = None, detail: bool = True,
                 fits: dict[str, tuple[Calibration, OutOfFold] | None] | None = None
                 ) -> tuple[dict[str, Any], dict[str, Calibration]]:
    """Fit the small model's calibrators on every dataset's calibration half, then evaluate every
    policy on the held-out halves. Returns the report and the calibrations by variant name
    (``calibrated``, and ``calibrated + examples`` with ``run_examples``).

    ``margin_z``: the safety margin of every chosen threshold (:func:`.policies.choose_threshold`).
    ``features``: a feature cache to reuse (it must cover these traces, with the same
    ``run_examples``). Without ``detail`` the AUROC intervals and the curves, which only a printed
    report needs, are left empty: many reports on resampled halves run much faster. ``fits``: a
    cache of the fitted calibrators and their out-of-fold scores, filled by the first report and
    reused by reports on the same datasets and ``run_examples`` that differ only in margin or target
    (each report sets the thresholds, target and margin of the calibrations it returns anew; the
    calibrations are shared, so a later report changes what an earlier one returned)."""
    feats = features if features is not None else DraftFeatures(datasets, run_examples)
    cal_small = [p[0] for d in datasets for p in d.calibration]
    pooled = [p for d in datasets for p in d.calibration]
    variants = [CALIBRATED, CALIBRATED_EXAMPLES] if run_examples else [CALIBRATED]
    if run_examples and any(d.cross_checks for d in datasets) and not any(d.unchecked() for d in datasets):
        variants.append(CALIBRATED_CROSS_CHECK)
    rows, labels = [feats(t) for t in cal_small], [t.correct for t in cal_small]
    source = f"the calibration items of {', '.join(d.name for d in datasets)}"
    prompts, domains = [feats.prompt(t) for t in cal_small], [feats.domain(t) for t in cal_small]
    fitted = fits if fits is not None else {}
    cals: dict[str, Calibration] = {}
    oofs: dict[str, np.ndarray] = {}  # per policy that is fitted: out-of-fold scores of every calibration item
    for name in variants:
        if name not in fitted:
            full = fit_calibration(
                rows, labels, model=model, seed=seed, features=_VARIANTS[name], prompts=prompts,
                source=source,
                meta={
                    "command": command, "date": _dt.date.today().isoformat(), "seed": seed,
                    "data": {d.name: _data_record(d) for d in datasets},
                    "target": target,
                    "run_examples": name in (CALIBRATED_EXAMPLES, CALIBRATED_CROSS_CHECK),
                    "cross_check": name == CALIBRATED_CROSS_CHECK,
                    "thresholds_on": f"out-of-fold scores ({THRESHOLD_FOLDS} folds, drawn per domain)",
                    "top_logprobs": alternatives_count(cal_small),
                },
            )
            fitted[name] = (full, out_of_fold_scores(rows, labels, prompts, domains, seed=seed, model=model,
                                                     features=_VARIANTS[name], fitted_domains=sorted(full.domains),
                                                     source=source))
        entry = fitted[name]
        assert entry is not None  # only the router's entry may be None
        cal, oof = entry
        cal.meta["target"] = target
        oofs[name], oofs[name + POOLED_SUFFIX] = oof.judged, oof.pooled
        _choose_thresholds(cal, pooled, feats, target, margin_z, oof)
        cal.meta["margin_z"] = margin_z
        cals[name] = cal
    best_variant = variants[-1]
    harmless = [p[0].correct or not p[-1].correct for p in pooled]
    # the router needs items where escalating helped and items where it did not (at least 2 of each for its
    # out-of-fold scores); without them it is left out
    router: dict[str, Calibration] = {}
    if ROUTER not in fitted:
        try:
            fitted[ROUTER] = (
                fit_calibration(rows, harmless, model=model, seed=seed, features=_VARIANTS[best_variant],
                                meta={"label": "draft right, or large model wrong too"}),
                out_of_fold_scores(rows, harmless, None, [None] * len(rows), seed=seed, model=model,
                                   features=_VARIANTS[best_variant], source=source))
        except OneKindError:
            fitted[ROUTER] = None  # an experiment only: left out when its data has too few of a kind
    router_fit = fitted[ROUTER]
    if router_fit is not None:
        router[ROUTER], oofs[ROUTER] = router_fit[0], router_fit[1].pooled
    pooled_cals = {v + POOLED_SUFFIX: cals[v].pooled() for v in variants}
    experiments = [*router, *pooled_cals]
    paying = {k for k, c in {**cals, **router, **pooled_cals}.items() if c.runs_cross_check}
    scored = {**cals, **router, **pooled_cals}
    key = f"{target:g}"
    out: dict[str, Any] = {"model": model, "target": target, "margin_z": margin_z, "seed": seed, "command": command,
                           "variants": variants, "experiments": experiments, "datasets": {},
                           "calibration_thresholds": {k: c.thresholds[key] for k, c in cals.items()},
                           # the domains that got their own calibrator, with their thresholds and items
                           "domain_calibrators": {k: {d: {"threshold": sub.thresholds[key], **sub.meta}
                                                      for d, sub in c.domains.items()} for k, c in cals.items()}}
    start = 0
    for d in datasets:
        # thresholds are chosen on scores from calibrations fitted without the item; baselines fit nothing
        here = slice(start, start + len(d.calibration))
        start = here.stop
        cal_scores = {**_scores({}, d.calibration, feats), **{k: v[here] for k, v in oofs.items()}}
        held_scores = _scores(scored, d.held_out, feats)
        labels = [p[0].correct for p in d.held_out]
        goal = target * always_large(d.held_out).accuracy
        policies: list[PolicyResult] = [always_small(d.held_out), always_large(d.held_out)]
        chosen: dict[str, float] = {}
        by_name: dict[str, PolicyResult] = {}
        # a policy that uses the cross-check pays for it on every item that has one
        extra = d.cross_check_spend()
        for name in (*BASELINE_SCORES, *variants, *experiments):
            t = choose_threshold(d.calibration, cal_scores[name], target, margin_z)
            chosen[name] = t
            by_name[name] = evaluate(name, d.held_out, held_scores[name] >= t, threshold=t,
                                     extra=extra if name in paying else None)
            policies.append(by_name[name])
        policies.append(random_routing(d.held_out, by_name[best_variant].small_share))
        policies.append(oracle(d.held_out))
        for name in variants:  # what `quality_target` in a config does: one threshold per domain
            th = _deployed_thresholds(cals[name], d.held_out, feats, target)
            policies.append(evaluate(f"{name}, deployed threshold", d.held_out, held_scores[name] >= th,
                                     threshold=float(th[0]) if len(th) and (th == th[0]).all() else None,
                                     extra=extra if name in paying else None))
        baseline_shares = {
            **{k: by_name[k].small_share if _meets(by_name[k], goal) else 0.0 for k in BASELINE_SCORES},
            # the random share that meets the target is chosen on the calibration half, like every threshold
            "random": _random_at_target(d, target),
            "always large": 0.0,
        }
        best = max(baseline_shares.values())
        # no baseline keeps a draft and meets the target: the best one is then "always large"
        best_name = next(k for k, v in baseline_shares.items() if v == best) if best > 0 else "always large"
        # two upper bounds: the oracle (the draft exactly when it is right), and the most drafts a
        # policy with perfect knowledge of both tiers could keep within the same accuracy budget
        orc = oracle(d.held_out).small_share
        orc_budget = oracle_share_at_target(d.held_out, target)
        at_target: dict[str, Any] = {"target_accuracy": goal, "best_baseline": best_name,
                                     "best_baseline_share": best, "oracle_share": orc,
                                     "oracle_share_budget": orc_budget}
        for name in (*variants, *experiments):
            pol = by_name[name]
            meets = _meets(pol, goal)  # a threshold chosen on the calibration half may miss on held-out
            # above 1 when the policy keeps more drafts than the oracle: it may spend the accuracy
            # budget (1 - target) on wrong drafts, which the oracle never keeps
            at_target[name] = {
                "share": pol.small_share, "accuracy": pol.accuracy, "meets_target": meets,
                "gap_closed": (pol.small_share - best) / (orc - best) if orc > best and meets else float("nan"),
                "gap_closed_budget": (pol.small_share - best) / (orc_budget - best)
                if orc_budget > best and meets else float("nan"),
            }
        out["datasets"][d.name] = {
            "items": {"calibration": len(d.calibration), "held_out": len(d.held_out), "fresh_from": d.fresh_from},
            "shift": accuracy_shift(d.calibration, d.held_out),
            "auroc": {k: auroc(v, labels) for k, v in held_scores.items()},
            # 95% bootstrap interval over the held-out items (seeded by the split seed)
            "auroc_interval": {k: list(auroc_interval(v, labels, seed=seed)) if detail else [math.nan, math.nan]
                               for k, v in held_scores.items()},
            "ece": {k: expected_calibration_error(held_scores[k], labels)
                    for k in (*variants, *(v + POOLED_SUFFIX for v in variants))},
            "thresholds": chosen,
            "policies": [p.to_dict() for p in policies],
            "at_target": at_target,
            "curves": {k: curve(d.held_out, v, extra if k in paying else None) if detail else []
                       for k, v in held_scores.items()},
        }
    return out, cals


def add_config_rule(report: dict[str, Any], datasets: Sequence[DatasetPairs], rule: ConfigRule) -> None:
    """Evaluate a config's own first-tier rule on each dataset's held-out half and add it to the
    report (a policy row and ``at_target["config rule"]``). Separate from :func:`build_report` so the
    rule is judged with the calibration the config will load, e.g. the one just saved."""
    for d in datasets:
        entry = report["datasets"][d.name]
        kept = np.array([rule.keep(p[0], d.prompts.get(p[0].item_id)) for p in d.held_out], dtype=bool)
        extra = None if rule.cross_checks is None else d.cross_check_spend(
            [rule.cross_checks(p[0], d.prompts.get(p[0].item_id)) for p in d.held_out])
        result = evaluate(rule.label, d.held_out, kept, extra=extra)
        entry["policies"].append(result.to_dict())
        entry["at_target"]["config rule"] = {
            "label": rule.label, "share": result.small_share, "accuracy": result.accuracy,
            "meets_target": _meets(result, entry["at_target"]["target_accuracy"]), "held_out": rule.held_out}


def command_line() -> str:
    """The command that is running, as one can paste it to run it again: `edgecascade ...` for the
    command line however it was started (``python -m edgecascade.cli`` names its ``__main__.py``),
    else the script and its arguments; each argument quoted where the shell needs it."""
    argv = sys.argv or [""]
    program = argv[0].replace("\\", "/")
    if program.endswith(("edgecascade", "edgecascade/cli/__main__.py", "edgecascade/__main__.py")):
        return shlex.join(["edgecascade", *argv[1:]])
    return shlex.join(argv)
