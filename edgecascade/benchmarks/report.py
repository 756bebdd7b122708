"""`edgecascade bench report`: calibrate on one split, judge every policy on the other.

Discipline: items are split once, by a fixed seed, into a calibration half and a held-out half.
Everything that is learned or chosen (the calibrator's weights, every policy's threshold) sees only
the calibration half; every number reported is measured on the held-out half. A fresh test
(``bench report --fresh-from NAME=N``) fits on a dataset's first N items instead and judges the
items traced after them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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


#: a tier's accuracy on the judged items this many standard errors or more from its accuracy on the
#: fitted items is reported as a shift (a two-proportion z, about a 5% false alarm on random halves)
SHIFT_Z = 2.0


def accuracy_shift(fitted: Sequence[Sequence[Trace]], judged: Sequence[Sequence[Trace]]) -> dict[str, dict[str, float]]:
    """How often each tier (small, large) was right on the items fitted on and on the items judged,
    with a two-proportion z. A threshold is chosen where the fitted items just meet the target; if
    the judged items are harder for the small model, or easier for the large one, than those, the
    same scores mean less and the target asks more, so a miss there says as much about the data as
    about the rule: on GSM8K's items 1,100-1,318 the 0.5B was right on 16.9% against 25.5% of the
    first 1,100 (z -2.7), and the calibrated threshold missed the target by 2.1 points."""
    out = {}
    for tier, i in (("small", 0), ("large", -1)):
        a, n_a = sum(p[i].correct for p in fitted), len(fitted)
        b, n_b = sum(p[i].correct for p in judged), len(judged)
        pa, pb = a / n_a if n_a else math.nan, b / n_b if n_b else math.nan
        pooled = (a + b) / (n_a + n_b) if n_a + n_b else math.nan
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b)) if n_a and n_b else 0.0
        out[tier] = {"fitted": pa, "judged": pb, "z": (pb - pa) / se if se > 0 else 0.0}
    return out


def _shift_line(d: dict[str, Any]) -> str:
    """A warning when the judged items differ from the fitted ones (``SHIFT_Z``), else ""."""
    shift = d.get("shift") or {}
    if not any(abs(v["z"]) >= SHIFT_Z for v in shift.values()):
        return ""
    said = ", ".join(f"the {tier} model right on {v['judged']:.1%} of them against {v['fitted']:.1%} (z {v['z']:+.1f})"
                     for tier, v in shift.items())
    return (f"The judged items differ from the items fitted on: {said}. A threshold chosen on the fitted items "
            "may not hold on such items; the difference is in the data, not only in the rule. On traffic like "
            "that, `edgecascade calibrate --adapt` moves a calibration to it from a few labelled answers.")


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


def _half(rule_entry: dict[str, Any], fresh: bool) -> str:
    """Where a config rule was judged: held-out (or fresh) items, unless its calibration may have seen them."""
    where = "the fresh items" if fresh else "held-out"
    return where if rule_entry["held_out"] else f"{where}, which its calibration may have seen"


def _domains_line(report: dict[str, Any]) -> str:
    """Which domains got a calibrator of their own, on how many drafts, with which threshold."""
    parts = []
    for variant, doms in report.get("domain_calibrators", {}).items():
        said = ", ".join(f"{d} ({m['items']} drafts, threshold {_threshold_text(m['threshold'])})"
                         for d, m in sorted(doms.items()))
        parts.append(f"{variant}: {said or 'none (too few drafts per domain)'}")
    return "Per-domain calibrators, fitted on the calibration items: " + "; ".join(parts) + "."


def _threshold_text(th: float | None) -> str:
    """A calibrator's threshold as read: one that keeps no draft is +inf in memory and null once a
    report is saved as JSON (which has no infinity)."""
    return "none kept" if th is None or math.isinf(th) else f"{th:.4g}"


def _margin_line(report: dict[str, Any]) -> str:
    return (f"Every threshold was chosen on the calibration items with a safety margin of {report['margin_z']:g} "
            "standard errors of the accuracy change (`bench report --margin`; `bench reliability` measures how "
            "often a margin holds).")


def _unmeasured(x: float | None) -> bool:
    """A gap the report could not measure (a missed target, a baseline's gap to itself): NaN in
    memory, null once written as JSON, so a gap prints the same from a saved report.json. Other
    numbers a report may leave unmeasured (an AUROC on judged items of one kind) are not handled
    here: a saved report is for reading, the printed forms come from a report run."""
    return x is None or math.isnan(x)


def print_report(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    for name, d in report["datasets"].items():
        fresh = d["items"].get("fresh_from")
        judged = f"held-out {d['items']['held_out']} items" if fresh is None else (
            f"{d['items']['held_out']} fresh items (from item {fresh} on)")
        judged_on = "held-out" if fresh is None else "the fresh items"
        t = Table(title=f"{name}: {judged} (calibrated on {d['items']['calibration']}), target "
                  f"{report['target']:.0%} of the large model's accuracy")
        for col in ("policy", "small share", "accuracy", "s/query", "$/query", "threshold"):
            t.add_column(col, justify="right" if col != "policy" else "left")
        for p in d["policies"]:
            th = p["threshold"]
            shown = ("none kept" if p.get("keeps_none") else "") if th is None else (
                "none kept" if math.isinf(th) else f"{th:.4f}")
            t.add_row(p["name"], f"{p['small_share']:.1%}", f"{p['accuracy']:.1%}", f"{p['latency_s']:.1f}",
                      f"{p['cost']:.6f}", shown)
        console.print(t)
        a, at = d["auroc"], d["at_target"]
        ci = d["auroc_interval"]
        console.print("AUROC (draft correct, 95% bootstrap interval): "
                      + " · ".join(f"{k} {v:.3f} ({ci[k][0]:.2f}–{ci[k][1]:.2f})" for k, v in a.items())
                      + " · ECE " + " · ".join(f"{k} {v:.3f}" for k, v in d["ece"].items()))
        for v in (*report["variants"], *report.get("experiments", [])):
            r = at[v]
            # a policy that misses the target closed no gap: its share was bought with accuracy
            gap = "" if _unmeasured(r["gap_closed"]) else (
                f"; gap to the oracle closed {r['gap_closed']:.0%}"
                + ("" if _unmeasured(r["gap_closed_budget"])
                   else f", to the budget oracle {r['gap_closed_budget']:.0%}"))
            console.print(f"at target: {v} keeps {r['share']:.1%} of drafts at {r['accuracy']:.1%} accuracy "
                          f"({'meets' if r['meets_target'] else 'MISSES'} the target on {judged_on}{gap})")
        if "config rule" in at:
            r = at["config rule"]
            console.print(f"{r['label']}: keeps {r['share']:.1%} of drafts at {r['accuracy']:.1%} accuracy "
                          f"({'meets' if r['meets_target'] else 'MISSES'} the target on "
                          f"{_half(r, fresh is not None)})")
        console.print(f"best baseline ({at['best_baseline']}) {at['best_baseline_share']:.1%} · oracle "
                      f"{at['oracle_share']:.1%} · budget oracle {at['oracle_share_budget']:.1%}")
        shifted = _shift_line(d)
        if shifted:
            console.print(shifted, style="yellow", markup=False)
        console.print()
    console.print(_domains_line(report))
    console.print(_margin_line(report))


def markdown_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables, for a README."""
    lines: list[str] = []
    for name, d in report["datasets"].items():
        n = d["items"]
        if n.get("fresh_from") is None:
            said = (f"*{name}*: {n['calibration'] + n['held_out']} items traced on both tiers; calibration half "
                    f"{n['calibration']}, held-out {n['held_out']}.")
        else:
            said = (f"*{name}*: fitted on its first {n['fresh_from']} items ({n['calibration']} traced on both "
                    f"tiers); judged on the {n['held_out']} items from item {n['fresh_from']} on, which no fit and "
                    "no threshold saw.")
        lines += [said, "",
                  "| policy | small-model share | accuracy | s/query |", "| --- | --- | --- | --- |"]
        lines += [f"| {p['name']} | {p['small_share']:.1%} | {p['accuracy']:.1%} | {p['latency_s']:.1f} |"
                  for p in d["policies"]]
        at = d["at_target"]
        bold = report["variants"]
        aur = ", ".join(f"{k} {'**' if k in bold else ''}{v:.3f}{'**' if k in bold else ''} "
                        f"({d['auroc_interval'][k][0]:.2f}–{d['auroc_interval'][k][1]:.2f})"
                        for k, v in d["auroc"].items())
        ece = ", ".join(f"{k} {v:.3f}" for k, v in d["ece"].items())
        lines += ["", f"AUROC for \"the draft is right\" (95% bootstrap interval): {aur}; expected calibration "
                  f"error: {ece}."]
        for v in (*report["variants"], *report.get("experiments", [])):
            r = at[v]
            verdict = "meets" if r["meets_target"] else "misses"
            gap = "" if _unmeasured(r["gap_closed"]) else (
                f", closing {r['gap_closed']:.0%} of the gap from the best baseline to the oracle"
                + ("" if _unmeasured(r["gap_closed_budget"])
                   else f" ({r['gap_closed_budget']:.0%} of the gap to the budget oracle)")
                + ("; it keeps more drafts than the oracle because the accuracy budget lets it keep some "
                   "wrong ones" if r["gap_closed"] > 1 else ""))
            lines.append(f"At the target ({at['target_accuracy']:.1%}) *{v}* keeps {r['share']:.1%} of drafts "
                         f"and {verdict} it ({r['accuracy']:.1%}){gap}.")
        if "config rule" in at:
            r = at["config rule"]
            lines.append(f"*{r['label']}* keeps {r['share']:.1%} of drafts and "
                         f"{'meets' if r['meets_target'] else 'misses'} the target ({r['accuracy']:.1%}) on "
                         f"{_half(r, n.get('fresh_from') is not None)}.")
        lines += [f"Best baseline that meets the target: {at['best_baseline']} {at['best_baseline_share']:.1%}; "
                  f"the oracle (the draft exactly when it is right) {at['oracle_share']:.1%}; the budget oracle "
                  f"(perfect knowledge of both tiers, the same accuracy budget) {at['oracle_share_budget']:.1%}."]
        shifted = _shift_line(d)
        lines += [shifted, ""] if shifted else [""]
    lines += [_domains_line(report), "", _margin_line(report), ""]
    return "\n".join(lines)


#: tab20's colours, dark ones first, less its pinks and greys (random routing and the fixed baselines)
_SWEEP_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#bcbd22", "#17becf",
                 "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#dbdb8d", "#9edae5")
#: a policy with no colour of its own (a config's rule)
OTHER_POLICY_COLOR = "#ff00ff"


def policy_colors(report: dict[str, Any]) -> dict[str, str]:
    """Each policy's colour in the figure: the fixed baselines' own, then one per swept policy (its
    deployed-threshold point shares it). No two series share one, whatever a report holds, up to 16
    swept policies."""
    colors = {"always small": "#000000", "always large": "#696969", "random": "#e377c2", "oracle": "#daa520"}
    for i, label in enumerate((*report["variants"], *BASELINE_SCORES, *report.get("experiments", []))):
        colors[label] = colors[f"{label}, deployed threshold"] = _SWEEP_COLORS[i % len(_SWEEP_COLORS)]
    return colors


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Every policy's accuracy against the share of queries sent to the large model (what a priced
    large tier costs) and against seconds per query (what it costs on this machine, where an
    escalated query pays for both calls); one column per dataset, one legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    # at least two columns' width: the legend's three columns and the title need it with one dataset too
    fig, axes = plt.subplots(2, len(names), figsize=(6.5 * max(len(names), 2), 9.5), squeeze=False)
    styles = {**dict.fromkeys(_VARIANTS, "-"), "mean logprob": "--", "cascadeflow-style": ":",
              ROUTER: "-.", **{v + POOLED_SUFFIX: (0, (3, 1, 1, 1)) for v in _VARIANTS}}
    markers = {"always small": "s", "always large": "D", "random": "X", "oracle": "*",
               CALIBRATED: "o", CALIBRATED_EXAMPLES: "P", CALIBRATED_CROSS_CHECK: "H", "mean logprob": "^",
               "cascadeflow-style": "v", ROUTER: "p", **{v + POOLED_SUFFIX: "d" for v in _VARIANTS}}
    axis = {0: ("share of queries sent to the large model", lambda share, lat: 1 - share),
            1: ("seconds per query (as traced)", lambda share, lat: lat)}
    colors = policy_colors(report)
    for col, name in enumerate(names):
        d = report["datasets"][name]
        fresh = d["items"].get("fresh_from")
        judged = (f"held-out {d['items']['held_out']} items" if fresh is None
                  else f"{d['items']['held_out']} fresh items, from item {fresh} on")
        for row, (xlabel, x) in axis.items():
            ax = axes[row][col]
            for label in (*report["variants"], *BASELINE_SCORES, *report.get("experiments", [])):
                pts = sorted(d["curves"][label], key=lambda q: x(q[0], q[2]))
                ax.plot([x(q[0], q[2]) for q in pts], [q[1] for q in pts], linestyle=styles[label], color=colors[label],
                        label=f"{label} (threshold sweep)")
            for p in d["policies"]:
                ax.scatter([x(p["small_share"], p["latency_s"])], [p["accuracy"]], marker=markers.get(p["name"], "h"),
                           color=colors.get(p["name"], OTHER_POLICY_COLOR), edgecolor="black", linewidth=0.5, s=70,
                           zorder=3,
                           label=f"{p['name']} (at the target)" if p["threshold"] is not None or p.get("keeps_none")
                           else p["name"])
            ax.axhline(d["at_target"]["target_accuracy"], color="grey", lw=0.8, ls="-.",
                       label=f"target: {report['target']:.0%} of the large model's accuracy")
            ax.set_title(f"{name} ({judged})")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("accuracy")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{report['model']} → large model: cost-quality of acceptance policies (on items no fit saw)")
    # the legend's rows go below the axes, however many policies there are: the figure grows for them
    legend_in = 0.3 + 0.19 * math.ceil(len(labels) / 3)
    fig.set_size_inches(fig.get_size_inches()[0], 8.3 + legend_in)
    fig.tight_layout(rect=(0, legend_in / (8.3 + legend_in), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def command_line() -> str:
    return "edgecascade " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("edgecascade") else " ".join(
        sys.argv)
