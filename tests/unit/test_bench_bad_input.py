"""Bad input to `bench` and `calibrate` gets a clear error (exit 2, no traceback) before any model
loads, and a calibration is written wherever `--out` points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecascade.cli import main
from edgecascade.datasets import load
from edgecascade.errors import ConfigError


def _write(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command, expect exit 2, and return what it said on stderr."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code  # type: ignore[assignment]
    assert code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_bench_run_refuses_a_limit_under_one(limit: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.jsonl", {"prompt": "2+2?", "reference": "4"})
    said = _fails(["bench", "run", "--dataset", str(data), "--limit", limit], capsys)
    assert "a count of items is 1 or more" in said


@pytest.mark.parametrize("command", [["run", "hi"], ["bench", "overhead"], ["bench", "run", "--dataset", "gsm8k"],
                                     ["bench", "report"], ["bench", "reliability"],
                                     ["bench", "replay", "--dataset", "gsm8k"]])
@pytest.mark.parametrize("tokens", ["0", "-5"])
def test_every_command_refuses_a_token_limit_under_one(command: list[str], tokens: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert "a token limit is 1 or more" in _fails([*command, "--max-tokens", tokens], capsys)


def test_bench_run_refuses_an_empty_dataset_before_loading_a_model(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    empty = _write(tmp_path / "empty.jsonl", "", "   ")
    # the config names a model that does not exist: reaching it would be a different error
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[tiers]]\nname = "a"\nmodel = "no-such-model"\n[[tiers]]\nname = "b"\nmodel = "no-such-model"\n')
    said = _fails(["bench", "run", "--dataset", str(empty), "--config", str(cfg)], capsys)
    assert "holds no items" in said and "no-such-model" not in said


def test_a_jsonl_dataset_is_checked_when_it_is_read(tmp_path: Path) -> None:
    """Each fault is named with the file's own line number (blank lines counted), before any model
    answers an item, where a grader would otherwise fail after the generation."""
    p = tmp_path / "d.jsonl"
    ok = {"prompt": "2+2?", "reference": "4"}
    for rows, message in [
        ((ok, "", "[1, 2, 3]"), r"d.jsonl:3 is a JSON list, not an object"),
        ((ok, '"just text"'), r"d.jsonl:2 is a JSON str, not an object"),
        (({"prompt": "Capital of France?", "reference": "Paris"},), r"d.jsonl:1: reference 'Paris' is not a finite "
                                                                     r"number.*name another grader"),
        ((ok, {"prompt": "x", "reference": "nan"}), r"d.jsonl:2: reference 'nan' is not a finite number"),
        (({"prompt": "x", "reference": "([", "grader": "regex"},),
         r"d.jsonl:1: reference '\(\[' is not a valid regular"),
        (({"id": "a", **ok}, "", {"id": "a", **ok}), r"d.jsonl:3: id 'a' is also the id of line 1"),
        ((ok, {"prompt": " \n\t", "reference": "4"}), r"d.jsonl:2: the prompt is empty"),
    ]:
        _write(p, *rows)
        with pytest.raises(ConfigError, match=message):
            load(str(p))
    p.write_bytes((json.dumps(ok) + "\n") .encode() * 300 + b"\xff\xfe{}\n")  # past the first 8 KiB
    with pytest.raises(ConfigError, match=r"d.jsonl:301 is not UTF-8 text"):
        load(str(p))
    # every line is checked, also past --limit: a file is valid or not whichever part a command reads
    _write(p, ok, ok, {"prompt": "x", "reference": "Paris"})
    with pytest.raises(ConfigError, match=r"d.jsonl:3: reference 'Paris'"):
        load(str(p), limit=1)
    # what is valid still loads: a regex and a number written with a thousands separator
    _write(p, {"prompt": "a date", "reference": r"\d{4}", "grader": "regex"}, "", {"prompt": "x", "reference": "1,000"})
    assert [i.id for i in load(str(p))] == ["1", "2"]  # ids count objects, not lines, as before


def test_a_misspelt_dataset_key_is_named_and_other_keys_are_yours(tmp_path: Path) -> None:
    """`"grade": "contains"` was dropped without a word, and the line graded as a number."""
    from edgecascade.datasets import load

    p = _write(tmp_path / "d.jsonl", {"prompt": "Capital of France?", "reference": "Paris", "grade": "contains"})
    with pytest.raises(ConfigError, match=r"d.jsonl:1: 'grade' is no key of a dataset line: did you mean 'grader'"):
        load(str(p))
    _write(p, {"prompt": "Capital of France?", "reference": "Paris", "grader": "contains", "source": "atlas",
               "uid": 7, "idx": 1, "prompt_id": "p1", "domains": ["geo"]})  # keys of the user's own
    assert load(str(p))[0].meta["grader"] == "contains"


def _labelled(i: int, correct: bool, **extra: object) -> dict[str, object]:
    lp = -0.1 if correct else -1.5
    return {"id": f"q{i}", "answer": "The answer is 7.", "tokens": ["The", " answer", " is", " 7", "."],
            "logprobs": [lp] * 5, "correct": correct, **extra}


@pytest.mark.parametrize(("line", "message"), [
    ("[1, 2]", "is a JSON list, not an object"),
    ('{"dataset": "d", "item_', "is not valid JSON .*delete that line"),
    (json.dumps({"attempts": [{"content": "x", "tier": "draft"}], "correct": True}),
     "no token counts .*run --json --logprobs"),
    (json.dumps({"attempts": [{"content": "x", "tier": "cloud", "model": "gpt",
                               "tokens": {"prompt": 3, "completion": 1}, "logprobs": None}], "correct": True}),
     r"\(cloud, gpt\) has no per-token logprobs.*a tier that returns logprobs"),
    # values of the wrong kind, from a review: each had stopped `calibrate` with a traceback
    (json.dumps(_labelled(1, True, prompt_tokens=None)), "'prompt_tokens' is null, not a non-negative number"),
    (json.dumps(_labelled(1, True, latency_s="slow")), "'latency_s' is \"slow\", not a non-negative number"),
    (json.dumps(_labelled(1, True, cost="free")), "'cost' is \"free\", not a non-negative number"),
    ('{"id": "q1", "correct": true, "tokens": ["a"], "logprobs": [-0.1], "n": 1' + "0" * 5000 + "}",
     "is not valid JSON"),
    ("[" * 100000 + "]" * 100000, "is not valid JSON"),
    (json.dumps({**_labelled(1, True), "logprobs": {"tokens": 5, "logprobs": [-0.1]}}),
     "'tokens' \\(a list of strings\\)"),
    (json.dumps({**_labelled(1, True), "tokens": [1, 2, 3, 4, 5]}), "'tokens' \\(a list of strings\\)"),
    # a user's own line repeating an id: both lines named
    (json.dumps(_labelled(0, False)), "t.jsonl:2: item id 'q0' is on line 1 too"),
])
def test_calibrate_names_a_line_it_cannot_read(line: str, message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    traces = _write(tmp_path / "t.jsonl", _labelled(0, True), line)
    said = _fails(["calibrate", "--traces", str(traces), "--out", str(tmp_path / "o.json")], capsys)
    assert "t.jsonl:2" in said and __import__("re").search(message, said) and "Traceback" not in said


def test_calibrate_input_errors_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\n")
    assert "is not UTF-8 text" in _fails(["calibrate", "--traces", str(binary)], capsys)
    assert "no traces file at" in _fails(["calibrate", "--traces", str(tmp_path / "none.jsonl")], capsys)
    traces = _write(tmp_path / "t.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)])
    said = _fails(["calibrate", "--traces", str(traces), "--dataset", str(tmp_path / "missing.jsonl")], capsys)
    assert "no such .jsonl file" in said
    said = _fails(["calibrate", "--traces", str(traces), "--adapt", str(traces), "--out", str(tmp_path / "o.json")],
                  capsys)
    assert "is not a calibration file" in said


def test_calibrate_writes_into_a_new_directory_and_names_an_unnamed_model(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    traces = _write(tmp_path / "t.jsonl", *[_labelled(i, bool(rng.random() < 0.5)) for i in range(120)])
    out = tmp_path / "new" / "deeper" / "mine.json"
    assert main(["calibrate", "--traces", str(traces), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert json.loads(out.read_text())["model"] == "unnamed"
    assert "calibration for unnamed written to" in said.out and "name it with --model" in said.err
    assert main(["calibrate", "--traces", str(traces), "--out", str(out), "--model", "mine"]) == 0
    assert json.loads(out.read_text())["model"] == "mine"


def test_calibrate_says_why_a_held_out_auroc_is_undefined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Right and wrong answers in the part it fits on, but only wrong ones held out: no AUROC, said
    in words (not 'nan'), and the table has dashes where nothing was accepted."""
    from edgecascade.benchmarks.report import split_ids

    ids = [f"q{i}" for i in range(60)]
    _, held = split_ids(ids, 20261125)
    rows = [_labelled(i, False if f"q{i}" in held else i % 2 == 0) for i in range(60)]
    traces = _write(tmp_path / "t.jsonl", *rows)
    assert main(["calibrate", "--traces", str(traces), "--out", str(tmp_path / "o.json")]) == 0
    said = capsys.readouterr().out
    assert f"held-out ({len(held)} items, all wrong): AUROC undefined" in said and "nan" not in said
    assert "—" in said  # at 0.95 no held-out draft (each looks wrong) is accepted: a dash, not 'nan%'


def test_calibrate_says_when_nothing_is_held_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.benchmarks.report import split_ids

    ids = [f"q{i}" for i in range(400)]
    cal, _ = split_ids(ids, 20261125)
    rows = [_labelled(int(k[1:]), int(k[1:]) % 2 == 0) for k in ids if k in cal][:40]
    traces = _write(tmp_path / "t.jsonl", *rows)
    assert main(["calibrate", "--traces", str(traces), "--out", str(tmp_path / "o.json")]) == 0
    said = capsys.readouterr().out
    assert "held-out: no items (all 40 fell in the part to fit)" in said and "nan" not in said


def test_reliability_refuses_a_margin_given_twice_before_reading_traces(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    said = _fails(["bench", "reliability", "--traces", str(tmp_path), "--margins", "1", "1.0"], capsys)
    assert "--margins: margins must differ as printed; these do not: 1 1" in said


#: one trace as the store writes it, for the tests of the store itself
STORED_TRACE = {"dataset": "d", "item_id": "a", "domain": "math", "tier": "t", "model": "m", "settings": "k",
                "answer": "4", "correct": True, "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1,
                "latency_s": 0.1, "first_token_s": None, "cost": 0.0, "tokens": ["4"], "logprobs": [-0.1],
                "top_logprobs": []}


def test_a_stored_trace_line_that_is_no_trace_is_skipped(tmp_path: Path) -> None:
    """The trace store skips what is not a trace (as it skips a line an interrupted write cut), so
    that item is traced again rather than the run failing."""
    from edgecascade.benchmarks.traces import TraceStore

    store = TraceStore(tmp_path)
    path = store.path("d", "m", "k")
    path.parent.mkdir(parents=True)
    good = dict(STORED_TRACE)
    _write(path, good, "[1, 2]", "null", '{"cut": ')
    assert list(store.load("d", "m", "k")) == ["a"]


@pytest.mark.parametrize("cut", ['{"dataset": "d", "item_id": "b", "answ', '{"da', "{"])
def test_a_trace_appended_after_a_cut_line_is_whole_and_the_file_stays_readable(cut: str, tmp_path: Path) -> None:
    """An interrupted write leaves a last line without its newline. The next append drops that
    fragment (it holds no whole trace) instead of gluing the new trace onto it, which lost the new
    trace too and left a line `calibrate --traces` refused."""
    from edgecascade.benchmarks.traces import Trace, TraceStore, load_labelled_traces

    store = TraceStore(tmp_path)
    path = store.path("d", "m", "k")
    path.parent.mkdir(parents=True)
    good = dict(STORED_TRACE)
    path.write_text(json.dumps(good) + "\n" + cut, encoding="utf-8")
    store.append(Trace.from_dict({**good, "item_id": "b", "answer": "5", "correct": False}))
    assert sorted(store.load("d", "m", "k")) == ["a", "b"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and [json.loads(x)["item_id"] for x in lines] == ["a", "b"]
    assert [t.item_id for t in load_labelled_traces(path)] == ["a", "b"]
    # a file that is nothing but a fragment is emptied first; a whole last line is left alone
    path.write_text(cut, encoding="utf-8")
    store.append(Trace.from_dict(good))
    store.append(Trace.from_dict({**good, "item_id": "c"}))
    assert [json.loads(x)["item_id"] for x in path.read_text(encoding="utf-8").splitlines()] == ["a", "c"]
    # a whole trace that only lost its newline (an editor strips it) keeps its place
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    store.append(Trace.from_dict({**good, "item_id": "d"}))
    assert [json.loads(x)["item_id"] for x in path.read_text(encoding="utf-8").splitlines()] == ["a", "c", "d"]


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    from edgecascade.config import load_config

    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b'[cascade]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(cfg)


def test_an_interrupted_bench_run_says_a_rerun_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.cli import parser  # where the parser finds each command's function

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(parser, "cmd_bench_run", interrupted)
    assert main(["bench", "run", "--dataset", "gsm8k", "--limit", "1"]) == 130
    assert "interrupted: every trace written so far is kept; run the same command again" in capsys.readouterr().err
    def also_interrupted(args: object) -> int:  # another command: nothing to resume
        raise KeyboardInterrupt

    monkeypatch.setattr(parser, "cmd_calibrate", also_interrupted)
    assert main(["calibrate", "--traces", "x.jsonl"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_calibrate_reads_a_trace_file_bench_run_wrote_after_a_prompt_changed(tmp_path: Path) -> None:
    """`bench run` appends a new line for an item whose prompt changed: the report reads the last,
    but `calibrate --traces` stopped on the repeated id ("each labelled answer needs its own id")."""
    from edgecascade import Cascade, ScriptedProvider, Tier
    from edgecascade.benchmarks.traces import TraceStore, load_labelled_traces, run_traces
    from edgecascade.datasets import load
    from edgecascade.providers.scripted import ScriptedReply

    data = tmp_path / "toy.jsonl"

    def trace(first: str) -> Path:
        _write(data, *[{"id": f"q{i}", "prompt": first if i == 0 else f"What is {i} plus 4?",
                        "reference": str(i + 4)} for i in range(12)])
        small = ScriptedProvider([ScriptedReply("It is 4", logprob=-0.1)], model="small")
        run_traces(Cascade([Tier("s", small)]), load(str(data)), dataset="toy", store=TraceStore(tmp_path / "t"),
                   max_tokens=16)
        [path] = (tmp_path / "t" / "toy").glob("small-*.jsonl")
        return path

    trace("What is 0 plus 4?")
    path = trace("What is zero plus four?")
    assert len(path.read_text().splitlines()) == 13
    traces = load_labelled_traces(path)
    assert len(traces) == 12 and len({t.item_id for t in traces}) == 12
    lines = path.read_text().splitlines()
    assert traces[0].prompt_sha256 == json.loads(lines[-1])["prompt_sha256"]  # the last line's, as reports read
    # a logprob far below any real one is read as the providers read a placeholder (-1e308 had passed,
    # and adapting to it failed on an infinite logit)
    # one file holding two models' traces of the same items keeps both (a dedupe on the id alone had
    # replaced the first model's)
    both = tmp_path / "both.jsonl"
    both.write_text(path.read_text() + path.read_text().replace('"model":"small"', '"model":"large"'))
    assert sorted({t.model for t in load_labelled_traces(both)}) == ["large", "small"]
    assert len(load_labelled_traces(both)) == 24
    deep = _write(tmp_path / "deep.jsonl", _labelled(0, True, logprobs=[-1e308] * 5))
    assert load_labelled_traces(deep)[0].logprobs == [-100.0] * 5


def test_a_cross_check_whose_program_could_not_start_is_not_kept(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A program the system refused a process for (EAGAIN, ENOMEM) was cached as "no number", graded
    wrong, for good: a failed call is not an answer, and a rerun must try it again."""
    import json

    import edgecascade.quality.crosscheck as cc
    from edgecascade import Cascade, CascadeSettings, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.benchmarks.traces import TraceStore, run_cross_checks
    from edgecascade.datasets import load

    data = tmp_path / "toy.jsonl"
    data.write_text(json.dumps({"prompt": "Tom has 3 boxes of 4 apples and eats 2. How many apples are left?",
                                "reference": 10}) + "\n")
    program = "```python\ndef solution():\n    return 3 * 4 - 2\n```"

    def cascade() -> tuple[Cascade, ScriptedProvider]:
        p = ScriptedProvider(lambda r: ScriptedReply(program if "solution()" in r.messages[-1].content else "10",
                                                     logprob=-0.1), model="small")
        return Cascade([Tier("s", p), Tier("b", ScriptedProvider([ScriptedReply("10")], model="big"))],
                       CascadeSettings(cross_check=True)), p

    store = TraceStore(tmp_path / "t")
    real = cc.program_result

    def refused(*a: object, **k: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(cc, "program_result", refused)
    failures: list[str] = []
    c, _ = cascade()
    assert run_cross_checks(c, load(str(data)), dataset="toy", store=store,
                            on_failure=lambda tier, why: failures.append(why)) == {}
    assert failures and "could not be started" in failures[0]
    monkeypatch.setattr(cc, "program_result", real)
    c, p = cascade()
    got = run_cross_checks(c, load(str(data)), dataset="toy", store=store)
    assert {k: (t.result, t.correct) for k, t in got.items()} == {"1": (10.0, True)} and len(p.requests) == 1


def test_traces_are_filed_under_the_tiers_model_whatever_its_answers_call_it(tmp_path: Path) -> None:
    """A provider whose answers name a dated model ("gpt-4o-2024-08-06") had its traces written to a
    file no rerun or report reads: every run generated everything again and appended duplicates."""
    import dataclasses
    import json

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.benchmarks.traces import TraceStore, run_traces
    from edgecascade.datasets import load

    class Dated(ScriptedProvider):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            return dataclasses.replace(await super().complete(request), model="small-2024-08-06")

    data = tmp_path / "toy.jsonl"
    data.write_text(json.dumps({"prompt": "What is 2+2?", "reference": 4}) + "\n")
    store = TraceStore(tmp_path / "t")
    for generated in (1, 0, 0):
        p = Dated([ScriptedReply("It is 4", logprob=-0.1)], model="small")
        run_traces(Cascade([Tier("s", p)]), load(str(data)), dataset="toy", store=store, max_tokens=32)
        assert len(p.requests) == generated
    [f] = (tmp_path / "t" / "toy").iterdir()
    assert f.name.startswith("small-") and len(f.read_text().splitlines()) == 1


def test_a_chat_format_or_context_window_of_its_own_makes_traces_anew(tmp_path: Path) -> None:
    """A tier's chat_format (it renders the prompt) was in no settings key, so a manifest whose chat
    format changed reused its old traces; and the cross-check's key left out the context window.
    The shipped configs' keys, which name every committed trace file, stay as they were."""
    from edgecascade import Cascade, Tier
    from edgecascade.benchmarks.traces import cross_check_spec, tier_specs
    from edgecascade.providers.llamacpp import LlamaCppProvider

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)

    def keys(**kw: object) -> tuple[str, str]:
        c = Cascade([Tier("s", LlamaCppProvider(path=gguf, model="m", identity="sha256:abc", **kw))])  # type: ignore[arg-type]
        return tier_specs(c, 64)[0].key, cross_check_spec(c).key

    plain, chatml, small_ctx = keys(), keys(chat_format="chatml"), keys(n_ctx=1024)
    assert chatml[0] != plain[0] and chatml[1] != plain[1]
    assert small_ctx[0] != plain[0] and small_ctx[1] != plain[1]
    assert keys(n_ctx=4096) == plain  # the default is left out of the key
    from edgecascade.config import load_config
    from edgecascade.manifests import get_manifest

    for name in ("default", "calibrated"):  # built as from_config builds them, without the model files
        cfg = load_config(name)
        tiers = []
        for t in cfg.tiers:
            m = get_manifest(t.model)
            tiers.append(Tier(t.name or t.model, LlamaCppProvider(
                path=gguf, model=m.name, identity=f"sha256:{m.sha256}", n_ctx=t.n_ctx, top_logprobs=t.top_logprobs,
                chat_format=m.chat_format, context_length=m.context_length)))
        c = Cascade(tiers, cfg.cascade)
        assert [s.key for s in tier_specs(c, c.settings.max_tokens)] == ["25f540b049c8", "ea177a3d2775"]
        assert cross_check_spec(c).key == "c010e024795e"


def test_a_failure_of_two_tiers_sharing_one_trace_file_is_said_for_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Two tiers of one model and settings are traced once, as the first: the second's failure line
    read "first: (no message)"."""
    import json
    import types

    import edgecascade.cli.bench as bench
    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.errors import ProviderError

    data = tmp_path / "toy.jsonl"
    data.write_text(json.dumps({"prompt": "What is 2+2?", "reference": 4}) + "\n")

    def cascade(config: object) -> tuple[Cascade, None, bool]:
        down = [ScriptedReply("", error=ProviderError("server down"))]
        return Cascade([Tier("a", ScriptedProvider(down, model="same")),
                        Tier("b", ScriptedProvider(down, model="same"))]), None, True

    monkeypatch.setattr(bench, "_bench_cascade", cascade)
    args = types.SimpleNamespace(dataset=str(data), limit=None, config=None, max_tokens=None,
                                 traces=str(tmp_path / "t"), json=True)
    assert bench.cmd_bench_run(args) == 1
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(said) == 2 and all("ProviderError: server down" in line for line in said), said



@pytest.mark.parametrize("argv", [["calibrate", "--json", "--traces", "none.jsonl"],
                                  ["bench", "report", "--json", "--datasets", "none.jsonl"]])
def test_a_json_command_that_fails_prints_an_error_record_on_stdout(argv: list[str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # a script reading a command's --json gets an object when the command fails too, as `run --json` does
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    said = capsys.readouterr()
    record = json.loads(said.out)
    assert set(record) == {"error"} and record["error"]["type"] == "ConfigError"
    assert f"error: {record['error']['message']}" in " ".join(said.err.split())  # what stderr said, whole
    assert "none.jsonl" in record["error"]["message"]


def test_calibrate_leaves_cross_check_programs_out_and_refuses_a_file_of_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `bench run` files a drafter's cross-check programs beside its drafts; fitted as drafts, they had
    # made a draft calibrator of programs (held-out AUROC 0.98 in the review's run)
    programs = _write(tmp_path / "m-c010.jsonl", *[_labelled(i, i % 2 == 0, tier="cross-check") for i in range(40)])
    said = _fails(["calibrate", "--traces", str(programs)], capsys)
    assert "holds cross-check programs (tier 'cross-check'), not drafts" in said
    mixed = _write(tmp_path / "mixed.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)],
                   *[_labelled(100 + i, True, tier="cross-check") for i in range(10)])
    assert main(["calibrate", "--json", "--traces", str(mixed), "--out", str(tmp_path / "c.json")]) == 0
    said = capsys.readouterr()
    assert "10 lines of cross-check programs are left out" in " ".join(said.err.split())
    record = json.loads(said.out)
    assert record["calibration_items"] + record["held_out_items"] == 40


def test_calibrate_takes_two_datasets_whose_ids_repeat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # two .jsonl datasets numbered from 1 (`bench run` files them apart): calibrate had refused them
    # ("item id '1' is in ... and again in ..."), with no way out short of tracing them again
    def traced(i: int, ok: bool, dataset: str) -> dict[str, object]:  # a line as `bench run` writes it
        return _labelled(i, ok, dataset=dataset, prompt_sha256=f"{dataset}-{i}")

    alpha = _write(tmp_path / "alpha.jsonl", *[traced(i, i % 2 == 0, "alpha") for i in range(40)],
                   traced(100, True, "alpha"))
    beta = _write(tmp_path / "beta.jsonl", *[traced(i, i % 3 == 0, "beta") for i in range(40)])
    assert main(["calibrate", "--json", "--traces", str(alpha), str(beta), "--out", str(tmp_path / "c.json")]) == 0
    said = capsys.readouterr()
    assert "item ids repeat across datasets (alpha, beta; 40 ids, e.g. 'q0')" in " ".join(said.err.split())
    record = json.loads(said.out)
    assert record["calibration_items"] + record["held_out_items"] == 81
    # within one dataset a repeated id is still an error
    again = _write(tmp_path / "again.jsonl", *[traced(i, True, "alpha") for i in range(3)])
    assert "item id 'q0' is in" in _fails(["calibrate", "--traces", str(alpha), str(again)], capsys)
    # so is one across two files of a user's own labels (one question labelled twice: it would sit on
    # both sides of the split), which name no dataset of their own
    monday = _write(tmp_path / "monday.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)])
    tuesday = _write(tmp_path / "tuesday.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)])
    assert "item id 'q0' is in" in _fails(["calibrate", "--traces", str(monday), str(tuesday)], capsys)


def test_a_dataset_is_named_as_bench_run_files_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgecascade.cli.parser import _fresh_from
    from edgecascade.datasets import dataset_name

    # `bench run --dataset GSM8K` files its traces under gsm8k; `bench report --datasets GSM8K` had
    # looked under GSM8K, found none, and told the user to run that same `bench run` again, forever
    assert [dataset_name(g) for g in ("GSM8K", " humaneval ", "my/Set.jsonl")] == ["gsm8k", "humaneval", "Set"]
    assert _fresh_from("GSM8K=900") == ("gsm8k", 900)
    said = _fails(["bench", "report", "--datasets", "GSM8K", "--traces", str(tmp_path / "none")], capsys)
    assert "only 0 gsm8k items are traced" in " ".join(said.split())
    # a file named like a built-in dataset would share (and keep replacing) its traces
    mine = _write(tmp_path / "GSM8K.jsonl", {"prompt": "2+2?", "reference": "4"})
    said = _fails(["bench", "run", "--dataset", str(mine)], capsys)
    assert "named like the built-in dataset 'gsm8k' would share its traces" in " ".join(said.split())


def test_calibrate_reads_a_file_cut_by_a_kill_as_bench_report_does(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # a last line left without its newline by an interrupted write is left out, with a warning (it had
    # stopped calibrate, while `bench run` and `bench report` read past it); a bad line inside the
    # file is still an error (test_calibrate_names_a_line_it_cannot_read)
    traces = _write(tmp_path / "t.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)])
    with traces.open("a", encoding="utf-8") as f:
        f.write(json.dumps(_labelled(40, True))[:30])
    assert main(["calibrate", "--json", "--traces", str(traces), "--out", str(tmp_path / "c.json")]) == 0
    said = capsys.readouterr()
    assert "t.jsonl:41, the last line, is cut short (an interrupted write): left out" in " ".join(said.err.split())
    record = json.loads(said.out)
    assert record["calibration_items"] + record["held_out_items"] == 40
    # a folder is named as one
    said_dir = _fails(["calibrate", "--traces", str(tmp_path)], capsys)
    assert "is a folder: name the .jsonl trace files in it" in " ".join(said_dir.split())


def test_a_recorded_command_can_be_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # under `python -m edgecascade.cli` the report and calibrations had recorded the path of
    # __main__.py as the command, and no argument was quoted
    from edgecascade.benchmarks.report import command_line

    monkeypatch.setattr("sys.argv", ["/x/edgecascade/cli/__main__.py", "calibrate", "--traces", "my traces.jsonl"])
    assert command_line() == "edgecascade calibrate --traces 'my traces.jsonl'"
    monkeypatch.setattr("sys.argv", ["/venv/bin/edgecascade", "bench", "report"])
    assert command_line() == "edgecascade bench report"
    monkeypatch.setattr("sys.argv", ["scripts/study.py", "--k", "85"])
    assert command_line() == "scripts/study.py --k 85"


def test_where_a_command_writes_by_default_is_checked_before_the_work(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Only a given --out was checked first: a results folder that was a file failed after the whole
    fit, a default calibration path that was a folder after the fit, and a --traces file after the
    first item was answered."""
    traces = tmp_path / "traces"
    traces.mkdir()
    (tmp_path / "results").write_text("")  # where reports beside these traces would go
    said = _fails(["bench", "report", "--traces", str(traces), "--datasets", "gsm8k"], capsys)
    assert f"the results folder {tmp_path / 'results'} (or name one with --out) is a file" in " ".join(said.split())
    labels = _write(tmp_path / "lab.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)])
    (tmp_path / "lab.calibration.json").mkdir()
    said = _fails(["calibrate", "--traces", str(labels)], capsys)
    assert "where the calibration would go (beside --traces), is a folder" in " ".join(said.split())
    data = _write(tmp_path / "d.jsonl", {"prompt": "2+2?", "reference": "4"})
    said = _fails(["bench", "run", "--dataset", str(data), "--traces", str(labels)], capsys)
    assert f"--traces {labels} is a file" in " ".join(said.split())


def test_a_dataset_that_is_a_folder_is_named_as_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "set.jsonl"
    folder.mkdir()  # it had said "no dataset file at", and bench report advised a `bench run` that failed alike
    said = _fails(["bench", "run", "--dataset", str(folder)], capsys)
    assert "is a folder, not a dataset file" in " ".join(said.split())


def test_checking_where_calibrate_writes_makes_nothing_and_lets_its_input_errors_speak(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # the first check of default places crashed on `--traces .` (a ValueError traceback), made the
    # folders of a mistyped path, and looked at the plain file name where --adapt writes another
    monkeypatch.chdir(tmp_path)
    assert "is a folder: name the .jsonl trace files in it" in _fails(["calibrate", "--traces", "."], capsys)
    assert "no traces file at" in _fails(["calibrate", "--traces", "typo/dir/mine.jsonl"], capsys)
    assert not (tmp_path / "typo").exists()
    labels = _write(tmp_path / "lab.jsonl", *[_labelled(i, i % 2 == 0) for i in range(40)])
    (tmp_path / "lab.calibration.json").mkdir()  # in the way of a plain fit, not of an adapted one
    said = _fails(["calibrate", "--traces", str(labels), "--adapt", str(tmp_path / "none.json")], capsys)
    assert "where the calibration would go" not in said and "none.json" in said


def test_calibrate_reads_each_dataset_once_whatever_the_number_of_trace_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import edgecascade.benchmarks.traces as traces_mod
    from edgecascade.benchmarks.traces import prompt_sha256

    # every draft answers 7: right where the reference is 7 (as its label says)
    data = _write(tmp_path / "mine.jsonl", *[{"id": f"q{i}", "prompt": f"What is {i} + 1?",
                                              "reference": "7" if i % 2 == 0 else "8"} for i in range(40)])

    def line(i: int, model: str) -> dict[str, object]:
        return _labelled(i, i % 2 == 0, dataset="mine", model=model, prompt_sha256=prompt_sha256(f"What is {i} + 1?"))

    a = _write(tmp_path / "a.jsonl", *[line(i, "m") for i in range(40)])
    b = _write(tmp_path / "b.jsonl", *[line(i, "other") for i in range(40)])
    reads: list[str] = []
    real = traces_mod.load
    monkeypatch.setattr(traces_mod, "load", lambda name, *k: reads.append(name) or real(name, *k))
    assert main(["calibrate", "--traces", str(a), str(b), "--dataset", str(data), "--model", "m",
                 "--out", str(tmp_path / "c.json")]) == 0
    assert reads == [str(data)]  # it had been read once per trace file
