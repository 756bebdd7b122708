"""Does another model's reading of a draft tell right drafts from wrong ones? (a study; nothing shipped)

Every second opinion tried before this study came from the 0.5B itself (a second sample, a
`solution()` program, self-grading). Here another model reads the 0.5B's draft, token by token,
after the same chat prompt (one prefill, no generation), and the study records the reader's logprob
of every draft token and whether it was the reader's own first choice. Two readers:

- **the 1.5B** (the shipped large tier; ``--reader qwen2.5-coder-1.5b``, the default). Where the
  large tier is a GPU server, such a read costs a prefill (vLLM returns it as ``prompt_logprobs``);
  on these two cores it costs most of what the 1.5B's own answer costs, which this study measures.
- **SmolLM2-135M** (``--reader smollm2-135m``), a model far weaker than the 0.5B whose drafts it
  reads, but whose read costs a small fraction of a draft: a second opinion cheap enough to ask on
  every query, if it says anything.

Plan for the 1.5B, fixed before any item was read (committed with this script, 17d3ea6):
- items: GSM8K's first 200 (inside the 1,100 the shipped calibrations are fitted on; no fresh item
  is read); the drafts are the traced ones (`bench/traces/gsm8k`), unchanged;
- reader: qwen2.5-coder-1.5b (Q4_K_M, the shipped large tier), 2 threads, the draft tokenised by
  the same tokenizer family (Qwen2.5), the prompt the bench gives the 1.5B through the model's own
  chat template;
- features (the reader's logprobs put through the shipped math features, prefixed ``reader_``):
  the mean and 10th percentile of its logprobs over the draft, the share of draft tokens that were
  its own first choice, its logprob of the final number's tokens (mean and lowest), the 10th
  percentile over tokens that write numbers, and its mean logprob less the 0.5B's own;
- measure: 5-fold cross-validation repeated 20 times (as `study_cross_check.py`), the shipped
  features against the same plus the reader's, and the shipped features with the cross-check
  against the same plus the reader's; the AUROC of each reader feature alone; seconds per read;
- worth offering (a later issue: a draft judged by a server's prompt logprobs) if the paired gain
  is at least +0.03 over the shipped features with the cross-check; otherwise recorded as tried.
  (Result: +0.016; recorded in docs/benchmarks.md.)

Plan for SmolLM2-135M, fixed before any item was read (committed with this change, before its
first read):
- items: GSM8K's first 1,100, all the items the shipped calibrations are fitted on (no fresh item
  is read; a cheap read allows every one of them), the traced drafts unchanged;
- reader: smollm2-135m (Q4_1, the model the tests use), 2 threads, the draft tokenised by its own
  tokenizer, the same messages through its own chat template (the GGUF's);
- features and measure: as for the 1.5B (its "mean less the 0.5B's own" compares means over two
  tokenizers' tokens, so it is only a feature, not a like-for-like difference); the cost of a read
  against the traced 0.5B draft's time on the same items;
- worth building into the cascade (an issue-sized change: a reader in the draft tier, calibrations
  refitted, reads traced for every draft, then a clean draw to test it) only if all three hold:
  the paired gain over the shipped features with the cross-check is at least +0.015, it is
  positive in at least 80% of folds, and a read costs at most a tenth of a draft's time on
  average; otherwise recorded as tried;
- expected: a gain under +0.01 (the 1.5B, a far stronger reader, gained +0.016 on 200 items), a
  read well under a tenth of a draft.

    .venv/bin/python scripts/study_reader.py read --first 200          # the 1.5B: ~8 s an item here, resumable
    .venv/bin/python scripts/study_reader.py analyze
    .venv/bin/python scripts/study_reader.py --reader smollm2-135m read --first 1100
    .venv/bin/python scripts/study_reader.py --reader smollm2-135m analyze
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

#: each reader and the file its reads are cached in
READERS = {"qwen2.5-coder-1.5b": Path("bench/studies/gsm8k-large-reads.jsonl"),
           "smollm2-135m": Path("bench/studies/gsm8k-smollm2-reads.jsonl")}


def _calibration_traces() -> tuple[Any, Any]:
    """The traced GSM8K items a report fits on (the first 1,100; no fresh item is read), as the
    project's report loads them, and the calibrated config's cascade."""
    from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets

    ns = argparse.Namespace(config="calibrated", datasets=["gsm8k"], fresh_from=[("gsm8k", 1100)], traces=None,
                            max_tokens=None, seed=20261125)
    cascade, _, _ = _bench_cascade("calibrated")
    [d], _ = _traced_datasets(ns, cascade, judges=False)
    return d, cascade


def read(reader: str, first: int) -> None:
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from edgecascade.datasets import load
    from edgecascade.models import model_path

    study = READERS[reader]
    done = {json.loads(x)["item_id"] for x in study.read_text().splitlines()} if study.exists() else set()
    d, cascade = _calibration_traces()
    drafts = {p[0].item_id: p[0] for p in d.calibration}  # the traced greedy 0.5B drafts
    items = [i for i in load("gsm8k", first) if i.id not in done and i.id in drafts]
    if not items:
        print(f"all of GSM8K's first {first} drafts are read ({study})")
        return
    llm = llama_cpp.Llama(model_path=str(model_path(reader)), n_ctx=2048, n_threads=2, logits_all=True,
                          verbose=False)
    meta = llm.metadata
    fmt = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token=llm.detokenize([llm.token_eos()]).decode(),
                              bos_token="")
    study.parent.mkdir(parents=True, exist_ok=True)
    with study.open("a", encoding="utf-8") as f:
        for n, item in enumerate(items):
            draft = drafts[item.id]
            request = cascade.build_request(item.prompt, None, None, None, None, None)
            messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]
            prompt = fmt(messages=messages).prompt
            pt = llm.tokenize(prompt.encode(), add_bos=False, special=True)
            at = llm.tokenize(draft.answer.encode(), add_bos=False, special=False)
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(pt + at)
            seconds = time.perf_counter() - t0
            scores = np.asarray(llm.scores[len(pt) - 1: len(pt) + len(at) - 1], dtype=np.float64)
            peak = scores.max(axis=1, keepdims=True)
            lse = peak[:, 0] + np.log(np.exp(scores - peak).sum(axis=1))
            lps = scores[np.arange(len(at)), at] - lse
            pieces = [llm.detokenize([t]).decode("utf-8", errors="replace") for t in at]
            f.write(json.dumps({"item_id": item.id, "prompt_tokens": len(pt), "s": round(seconds, 3),
                                "tokens": pieces, "logprobs": [round(float(x), 5) for x in lps],
                                "first_choice": [int(x) for x in scores.argmax(axis=1) == np.array(at)]}) + "\n")
            f.flush()
            if n % 10 == 0:
                print(f"{n}/{len(items)} ({seconds:.1f} s)", flush=True)


def reader_features(answer: str, tokens: list[str], logprobs: list[float], first_choice: list[int],
                    own_mean: float) -> dict[str, float]:
    """A reader's reading of a draft, as features (the shipped math features of its logprobs)."""
    from edgecascade.quality.features import percentile
    from edgecascade.quality.structure import math_features
    from edgecascade.types import Completion, Timings, TokenLogprobs, Usage

    lp = np.array(logprobs, dtype=np.float64)
    c = Completion(text=answer, model="reader", finish_reason="stop", usage=Usage(0, len(tokens)),
                   timings=Timings(0.0, 0.0), logprobs=TokenLogprobs(tokens, lp, [[] for _ in tokens],
                                                                      np.zeros((len(tokens), 0))))
    m = math_features(c)
    return {"reader_mean": float(lp.mean()), "reader_p10": percentile(lp, 0.10),
            "reader_first_choice": float(np.mean(first_choice)),
            "reader_final_mean": m["final_lp_mean"], "reader_final_min": m["final_lp_min"],
            "reader_numbers_p10": m["numbers_lp_p10"], "reader_less_own": float(lp.mean()) - own_mean}


def analyze(reader: str) -> None:
    from study_common import cross_validated_gain

    from edgecascade.benchmarks.report import DraftFeatures
    from edgecascade.quality.calibration import CROSS_CHECK_FEATURES, auroc

    d, _ = _calibration_traces()
    feats = DraftFeatures([d], False)
    by_id = {p[0].item_id: p[0] for p in d.calibration}
    rows, labels, seconds, draft_s = [], [], [], []
    for line in READERS[reader].read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        draft = by_id[r["item_id"]]
        own_mean = float(np.mean(draft.logprobs)) if draft.logprobs else 0.0
        rows.append({**feats(draft), **reader_features(draft.answer, r["tokens"], r["logprobs"], r["first_choice"],
                                                       own_mean)})
        labels.append(draft.correct)
        seconds.append(r["s"])
        draft_s.append(draft.latency_s)
    y = np.array(labels)
    names = [k for k in rows[0] if k.startswith("reader_")]
    print(f"{reader} read {len(y)} drafts (right {y.mean():.1%}); a read took {np.mean(seconds):.2f} s on average "
          f"(median {np.median(seconds):.2f} s), the traced drafts {np.mean(draft_s):.2f} s "
          f"(a read is {np.mean(seconds) / np.mean(draft_s):.1%} of a draft)")
    for k in names:
        print(f"  {k:22s} AUROC alone {auroc(np.array([r[k] for r in rows]), y):.3f}")
    base, more, gain, positive = cross_validated_gain(rows, y, names)
    print(f"cross-validated AUROC (5-fold x 20): shipped features {base:.3f}, with the reader's {more:.3f}; "
          f"paired gain {gain:+.3f}, positive in {positive:.0%} of folds")
    base, more, gain, positive = cross_validated_gain(rows, y, names, base_extra=CROSS_CHECK_FEATURES)
    print(f"  with the cross-check: {base:.3f}, with the reader's too {more:.3f}; paired gain {gain:+.3f}, "
          f"positive in {positive:.0%} of folds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", choices=sorted(READERS), default="qwen2.5-coder-1.5b",
                    help="the model that reads the drafts (default: the 1.5B)")
    sub = ap.add_subparsers(dest="step", required=True)
    s = sub.add_parser("read", help="the reader reads the traced drafts of GSM8K's first N items (resumable)")
    s.add_argument("--first", type=int, default=200)
    sub.add_parser("analyze", help="what the reader's features add, by cross-validation")
    args = ap.parse_args()
    if args.step == "read":
        if not 10 <= args.first <= 1100:
            ap.error("--first must be between 10 and 1100: the items from 1,100 on are the fresh test")
        read(args.reader, args.first)
    else:
        analyze(args.reader)

if __name__ == "__main__":
    main()
