"""`edgecascade calibrate` on the traces `bench run` writes: their prompts are read back from the datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecascade.cli import main
from edgecascade.datasets import Item


def _bench_line(item: Item, correct: bool, lp: float) -> dict[str, object]:
    """A line as `bench run` writes it: the prompt's digest, not the prompt, and an answer its grader
    reads as ``correct`` (a grade made before grading keys were kept is made again from it)."""
    from edgecascade.benchmarks.traces import prompt_sha256

    answer = f"The answer is {item.reference if correct else -1}."
    return {"dataset": "gsm8k", "item_id": item.id, "tier": "draft", "model": "m", "answer": answer,
            "correct": correct, "tokens": [answer[:-1], "."], "logprobs": [lp, lp],
            "prompt_sha256": prompt_sha256(item.prompt)}


def test_calibrate_reads_back_the_prompts_of_bench_run_traces(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.benchmarks.traces import fill_dataset_prompts, load_labelled_traces
    from edgecascade.datasets import load

    items = load("gsm8k", 200)
    rng = np.random.default_rng(12)
    good = rng.random(200) < 0.5
    lines = [_bench_line(i, bool(g), -0.1 if g else -1.0) for i, g in zip(items, good)]
    lines[0]["prompt_sha256"] = "0" * 64  # a prompt that changed since: not attached
    lines[1]["dataset"] = "mine"  # not a built-in dataset: nothing to read back
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    prompts: dict[str, str] = {}
    traces = load_labelled_traces(path, prompts)
    assert prompts == {} and traces[2].prompt_sha256 == lines[2]["prompt_sha256"]
    assert fill_dataset_prompts(traces, prompts) == {"gsm8k": 198}
    assert items[0].id not in prompts and items[1].id not in prompts and prompts[items[5].id] == items[5].prompt
    # a label graded by an older reading of the answer is graded again (the cached label was kept as it was)
    stale = [{**x, "correct": not x["correct"]} for x in lines[2:4]]
    path.write_text("\n".join(json.dumps(x) for x in stale) + "\n")
    again = load_labelled_traces(path, {})
    fill_dataset_prompts(again, {})
    assert [t.correct for t in again] == [x["correct"] for x in lines[2:4]]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    # through the command: the prompts make them word problems, so a math calibrator is fitted
    out = tmp_path / "c.json"
    assert main(["calibrate", "--traces", str(path), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)["domains"]) == {"math"} and "198 gsm8k" in captured.err
    # several files at once; an id twice across them is refused, naming both files
    half = tmp_path / "half.jsonl"
    half.write_text("\n".join(json.dumps(x) for x in lines[:10]) + "\n")
    assert main(["calibrate", "--traces", str(path), str(half), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is in " + str(path) in err and str(half) in err and "its own id" in err


def test_calibrate_reads_back_the_prompts_of_a_jsonl_dataset_it_is_given(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.datasets import gsm8k_prompt, load

    dataset = tmp_path / "mine.jsonl"  # `bench run --dataset mine.jsonl` traces it under "mine"
    questions = [f"Tom has {a} apples and buys {a + 3} more. How many apples does he have?" for a in range(200)]
    dataset.write_text("\n".join(json.dumps({"id": f"q{n}", "prompt": gsm8k_prompt(q), "reference": str(2 * n + 3)})
                                 for n, q in enumerate(questions)) + "\n")
    items = load(str(dataset))
    good = np.random.default_rng(3).random(len(items)) < 0.5
    lines = [{**_bench_line(i, bool(g), -0.1 if g else -1.0), "dataset": "mine"}
             for i, g in zip(items, good)]
    traces = tmp_path / "traces.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "c.json"
    # without the file, the prompts are unknown: said, and no domain calibrator can be fitted
    assert main(["calibrate", "--traces", str(traces), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert not json.loads(captured.out)["domains"] and "mine carry no prompt" in captured.err
    assert "--dataset" in captured.err
    # with it, each prompt is read back (its digest matches), so these are word problems
    assert main(["calibrate", "--traces", str(traces), "--dataset", str(dataset), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)["domains"]) == {"math"} and "200 mine" in captured.err
    assert "carry no prompt" not in captured.err


def test_calibrate_fits_one_models_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Labelled `run --json` lines of an escalating cascade hold answers of two models (an escalated
    line's answer is the larger model's). Fitted together, the calibration took the first line's
    model name and judged the drafter by the larger model's answers; now it asks which model, and
    fits on that one's alone."""
    rng = np.random.default_rng(3)

    def line(i: int, model: str) -> dict[str, object]:
        ok = bool(rng.random() < 0.5)
        lp = -0.1 if ok else -1.2
        return {"id": f"q{i}", "model": model, "answer": "The answer is 7.", "tokens": ["The", " answer", " 7"],
                "logprobs": [lp] * 3, "correct": ok}

    path = tmp_path / "mixed.jsonl"
    lines = [line(i, "small" if i % 3 else "large") for i in range(120)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "c.json"
    assert main(["calibrate", "--traces", str(path), "--out", str(out)]) == 2
    said = capsys.readouterr().err
    assert "more than one model: small (80 lines), large (40 lines)" in said and "--model" in said
    assert not out.exists()
    assert main(["calibrate", "--traces", str(path), "--out", str(out), "--model", "nobody"]) == 2
    assert "none of the labelled answers is by it" in capsys.readouterr().err
    assert main(["calibrate", "--traces", str(path), "--out", str(out), "--model", "small", "--json"]) == 0
    captured = capsys.readouterr()
    assert "40 by other models are left out" in captured.err
    got = json.loads(captured.out)
    assert got["calibration_items"] + got["held_out_items"] == 80
    assert json.loads(out.read_text())["model"] == "small"
    # one model: --model only names it, as before
    single = tmp_path / "single.jsonl"
    single.write_text("\n".join(json.dumps({**x, "model": "m"}) for x in lines) + "\n")
    assert main(["calibrate", "--traces", str(single), "--out", str(out), "--model", "renamed"]) == 0
    assert json.loads(out.read_text())["model"] == "renamed"
    assert "the answers are by m; the calibration is written for --model renamed" in capsys.readouterr().err


def test_a_plain_records_alternatives_are_read_best_first_in_any_documented_shape(tmp_path: Path) -> None:
    """A plain record's top_logprobs rows were used in the order given (the features read the first
    as the model's own choice: a reversed row turned a margin of +3.0 into -3.0), and OpenAI's
    {"token", "logprob"} rows raised a TypeError traceback."""
    from edgecascade.benchmarks.traces import load_labelled_traces
    from edgecascade.errors import ConfigError

    best_first = [[-0.05, -3.1], [-0.2, -2.9]]
    shapes = {
        "numbers, best first": best_first,
        "numbers, reversed": [row[::-1] for row in best_first],
        "pairs": [[["a", -3.1], ["b", -0.05]], [["c", -0.2], ["d", -2.9]]],
        "openai objects": [[{"token": "x", "logprob": -3.1}, {"token": "y", "logprob": -0.05}],
                           [{"token": "z", "logprob": -2.9}, {"token": "w", "logprob": -0.2}]],
        "one object per step": [{"x": -3.1, "y": -0.05}, {"z": -0.2, "w": -2.9}],
    }
    for name, rows in shapes.items():
        p = tmp_path / "t.jsonl"
        p.write_text(json.dumps({"id": "q", "model": "m", "tokens": ["y", "w"], "logprobs": [-0.05, -0.2],
                                 "top_logprobs": rows, "correct": True}) + "\n")
        assert load_labelled_traces(p)[0].top_logprobs == best_first, name
    for bad in ([["a", "b"]], [[{"token": "x"}]], [[True, -1.0]], [[float("inf"), -1.0]], ["not a row"]):
        p.write_text(json.dumps({"id": "q", "model": "m", "tokens": ["y"], "logprobs": [-0.05],
                                 "top_logprobs": bad, "correct": True}) + "\n")  # inf: written as Infinity
        with pytest.raises(ConfigError, match="'top_logprobs' is not one row per token"):
            load_labelled_traces(p)


def test_a_calibration_records_its_alternatives_per_token_and_a_tier_asking_otherwise_is_told(
        tmp_path: Path) -> None:
    """A calibration fitted on drafts with 5 alternatives per token, used by a tier asking for 20 (or
    3): the margin and entropy features read otherwise and nothing said so."""
    import warnings

    from edgecascade.config import parse_config
    from edgecascade.engine import calibration_for
    from edgecascade.quality.calibration import Calibration

    rng = np.random.default_rng(5)
    lines = []
    for i in range(80):
        ok = bool(rng.random() < 0.5)
        lp = -0.1 if ok else -1.0
        top = [[lp, -3.0, -4.0], [lp, -3.5, -5.0, -6.0]] if i else [[lp, -3.0], [lp, -3.5]]  # one collapsed line
        lines.append({"id": f"q{i}", "model": "m", "tokens": ["a", "b"], "logprobs": [lp, lp], "correct": ok,
                      "top_logprobs": top})  # a line keeps its fewest (3): most lines, 3; one, 2
    traces = tmp_path / "t.jsonl"
    traces.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "c.json"
    assert main(["calibrate", "--traces", str(traces), "--out", str(out)]) == 0
    assert Calibration.load(out).meta["top_logprobs"] == 3
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)

    def tier(k: int) -> object:
        return parse_config({"tiers": [{"model": str(gguf), "top_logprobs": k, "accept": {
            "confidence": "calibrated", "calibration": str(out), "min_confidence": 0.5}}]}).tiers[0]

    with pytest.warns(UserWarning, match="top_logprobs = 20, and its calibration .* fitted on drafts with 3"):
        calibration_for(tier(20))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert calibration_for(tier(3)) is not None  # type: ignore[arg-type]


def _idless_lines() -> list[dict[str, object]]:
    """60 labelled lines without ids (as `run --json` writes them), right ones surer than wrong ones."""
    rng = np.random.default_rng(11)
    lines: list[dict[str, object]] = []
    for _ in range(60):
        ok = bool(rng.random() < 0.5)
        lp = -0.1 if ok else -1.1
        lines.append({"model": "m", "tokens": ["a", "b"], "logprobs": [lp, lp], "correct": ok})
    return lines


def test_the_split_of_lines_without_ids_does_not_depend_on_how_the_path_is_typed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`calibrate --traces lab.jsonl` and `--traces /full/path/lab.jsonl` fitted on different lines
    (22 and 15 of 40): a line without an id was named by the path as typed."""
    lines = _idless_lines()
    (tmp_path / "lab.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    monkeypatch.chdir(tmp_path)
    got = []
    for given in ("lab.jsonl", str(tmp_path / "lab.jsonl"), "./lab.jsonl"):
        assert main(["calibrate", "--traces", given, "--out", str(tmp_path / "c.json"), "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        got.append((r["calibration_items"], r["held_out_items"], r["held_out"]["auroc"]))
    assert got[0] == got[1] == got[2]


def test_a_placeholder_alternative_is_floored_as_the_served_draft_is(tmp_path: Path) -> None:
    """`calibrate --traces` floored the chosen tokens' logprobs but not the alternatives': an export
    with OpenAI's -9999 placeholder fitted on a margin 100 times the one the same draft gets served."""
    from edgecascade.benchmarks.traces import load_labelled_traces
    from edgecascade.providers._common import token_logprobs
    from edgecascade.quality.calibration import draft_features
    from edgecascade.types import LOGPROB_FLOOR, Completion, Timings, Usage

    tokens, lps = ["The", " answer", " is", " 4"], [-0.1, -0.2, -0.05, -0.3]
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"id": "q", "model": "m", "tokens": tokens, "logprobs": lps, "correct": True,
                             "top_logprobs": [[lp, -9999.0] for lp in lps]}) + "\n")
    [t] = load_labelled_traces(p)
    assert [row[1] for row in t.top_logprobs] == [LOGPROB_FLOOR] * 4
    rows = [{"token": tok, "logprob": lp,
             "top_logprobs": [{"token": tok, "logprob": lp}, {"token": "x", "logprob": -9999.0}]}
            for tok, lp in zip(tokens, lps)]
    served = Completion("".join(tokens), "m", "stop", Usage(5, 4), Timings(), token_logprobs(rows))
    fitted, serving = draft_features(t.completion()), draft_features(served)
    assert fitted["mean_margin"] == pytest.approx(serving["mean_margin"]) == pytest.approx(100 - 0.1625)


def test_two_models_bench_files_calibrate_one_of_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two `bench run` files of one dataset (the drafter's and the larger model's) name the same items:
    `calibrate --traces A B --model small` stopped at "item id ... is in A and again in B", before
    --model could pick the drafter's answers."""
    from edgecascade.datasets import load

    items = load("gsm8k", 80)
    rng = np.random.default_rng(2)
    paths = []
    for model in ("small", "large"):
        lines = []
        for it in items:
            ok = bool(rng.random() < 0.5)
            lines.append({**_bench_line(it, ok, -0.1 if ok else -1.3), "model": model, "settings": "s1"})
        paths.append(tmp_path / f"{model}.jsonl")
        paths[-1].write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "c.json"
    assert main(["calibrate", "--traces", *map(str, paths), "--model", "small", "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["calibration_items"] + got["held_out_items"] == 80
    assert json.loads(out.read_text())["model"] == "small"
    # one model's answer to one item twice (its file given under two names) is still refused
    assert main(["calibrate", "--traces", str(paths[0]), str(tmp_path / "." / "small.jsonl"), "--out", str(out)]) == 2
    assert "names" in capsys.readouterr().err


def test_lines_without_ids_split_the_same_wherever_the_file_lies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A line without an id was named by its file's full path: the same file, command and seed in
    another folder (or on another machine) split differently (21/19 against 23/17 in a review), so
    the recorded command did not give the recorded numbers. Two files of one name in two folders
    still keep their lines apart."""
    lines = _idless_lines()
    got = []
    for folder in ("d1", "deeper/d2"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "lab.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
        monkeypatch.chdir(tmp_path / folder)
        assert main(["calibrate", "--traces", "lab.jsonl", "--out", "c.json", "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        got.append((r["calibration_items"], r["held_out_items"], r["held_out"]["auroc"]))
    assert got[0] == got[1]
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--traces", "d1/lab.jsonl", "deeper/d2/lab.jsonl", "--out", "c.json", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["calibration_items"] + r["held_out_items"] == 120
    assert main(["calibrate", "--traces", "d1/lab.jsonl", "./d1/lab.jsonl", "--out", "c.json"]) == 2
    assert "twice" in capsys.readouterr().err


def test_calibrate_offers_thresholds_on_the_calibration_part_and_checks_them_on_the_held_out_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its table of min_confidence values was of the held-out part alone, under "use it: ...
    min_confidence = ...": a threshold picked from it was picked on the held-out answers."""
    from edgecascade.benchmarks.report import DEFAULT_SEED, split_ids

    rng = np.random.default_rng(4)
    right = rng.random(100) < 0.4
    lines = [{"id": f"q{i}", "model": "m", "tokens": ["a", "b"], "logprobs": [-0.1 if ok else -2.0] * 2,
              "correct": bool(ok)} for i, ok in enumerate(right)]
    path = tmp_path / "lab.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert main(["calibrate", "--traces", str(path), "--out", str(tmp_path / "c.json"), "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out)["thresholds"] if r["min_confidence"] == 0.5)
    cal_ids, held_ids = split_ids([x["id"] for x in lines], DEFAULT_SEED)
    share = {part: np.mean([x["correct"] for x in lines if x["id"] in ids]) for part, ids in
             (("cal", cal_ids), ("held", held_ids))}
    assert share["cal"] != share["held"]  # the two columns are told apart by this data
    # separable drafts: at 0.5 each part keeps exactly its right ones
    assert row["calibration_accepted_share"] == pytest.approx(share["cal"])
    assert row["accepted_share"] == pytest.approx(share["held"])
    assert row["calibration_accepted_accuracy"] == row["accepted_accuracy"] == 1.0
    assert main(["calibrate", "--traces", str(path), "--out", str(tmp_path / "c.json")]) == 0
    assert "choose min_confidence on the calibration part's columns" in capsys.readouterr().out
