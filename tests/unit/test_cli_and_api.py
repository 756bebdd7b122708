"""The CLI's help and error paths, and the curated public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import edgecascade
from edgecascade.cli import main


def test_public_api_is_curated() -> None:
    for name in edgecascade.__all__:
        assert hasattr(edgecascade, name), name
    assert sorted(edgecascade.__all__) == edgecascade.__all__
    public = {n for n in dir(edgecascade) if not n.startswith("_")}
    # submodules are reachable, but every other public name is listed in __all__
    import types

    extra = {n for n in public - set(edgecascade.__all__)
             if not isinstance(getattr(edgecascade, n), types.ModuleType)}
    assert extra == set()


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["models", "--help"],
                                  ["bench", "overhead", "--help"], ["bench", "reliability", "--help"]])
def test_help_is_useful(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 0
    text = capsys.readouterr().out
    assert "usage: edgecascade" in text and len(text) > 300


def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[[tiers]]\nmodel = "a.gguf"\nn_cxt = 100\n')
    assert main(["run", "--config", str(p), "hello"]) == 2
    assert "unknown key 'tiers[0].n_cxt'" in capsys.readouterr().err


def test_a_mistyped_registry_model_exits_2_listing_the_known_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in a tier's model name is a mistake in the config, as a typo in a key is: exit 2 (it was 1,
    the code of a tier that failed), before any model is loaded."""
    p = tmp_path / "c.toml"
    p.write_text('[[tiers]]\nname = "small"\nprovider = "llamacpp"\nmodel = "qwen2.5-coder-0.5b-instrct"\n')
    assert main(["run", "--config", str(p), "hello"]) == 2
    said = capsys.readouterr().err
    assert "no registry model named 'qwen2.5-coder-0.5b-instrct'" in said and "qwen2.5-coder-0.5b," in said


def test_empty_question_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "  "]) == 2
    assert "question is empty" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "said"), [(["--logprobs"], "--logprobs adds the tokens' logprobs to the --json"),
                                             (["--explain", "--json"], "--explain prints each tier's draft")])
def test_run_refuses_flags_that_would_do_nothing(flags: list[str], said: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *flags, "hello"]) == 2  # before any config or model is read
    assert said in capsys.readouterr().err


def test_messages_that_are_not_mappings_are_an_invalid_request() -> None:
    from edgecascade import InvalidRequestError
    from edgecascade.types import to_messages

    with pytest.raises(InvalidRequestError, match="message 0 is a tuple: give each message as"):
        to_messages([("user", "hi")])  # type: ignore[list-item]


def test_the_account_says_when_escalating_cost_more_than_the_baseline() -> None:
    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.cli.run import _account
    from edgecascade.config import AcceptRule, Price

    unsure, sure = ScriptedReply("maybe", logprob=-2.0, prompt_tokens=10), ScriptedReply("yes", logprob=-0.01)
    priced = Price(output_per_mtok=1000.0)
    r = Cascade([Tier("small", ScriptedProvider([unsure]), AcceptRule(min_confidence=0.9), price=priced),
                 Tier("big", ScriptedProvider([sure]), price=priced)]).run_sync("q")
    assert r.saving < 0
    line = _account(r)
    assert f"${-r.saving:.6f} more than always big" in line and "saved $-" not in line


def test_run_json_prints_an_error_record_with_what_was_spent(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    """With --json and no answer, stdout held nothing: a script got no record of the error, nor of
    what the rejected tiers cost."""
    import json

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.config import AcceptRule, CascadeSettings, Price

    rule, priced = AcceptRule(min_confidence=0.9), Price(output_per_mtok=1000.0)
    cascade = Cascade([Tier(n, ScriptedProvider([ScriptedReply("maybe", logprob=-2.0)]), rule, price=priced)
                       for n in ("small", "big")], CascadeSettings(on_all_rejected="error"))
    monkeypatch.setattr(Cascade, "from_config", classmethod(lambda cls, path=None: cascade))
    assert main(["run", "--json", "hello"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["error"]["type"] == "AllTiersFailedError"
    assert record["error"]["message"].startswith("no tier's answer met its rule")
    assert [a["tier"] for a in record["attempts"]] == ["small", "big"] and record["attempts"][0]["content"] == "maybe"
    assert record["cost"] == pytest.approx(sum(a["cost"] for a in record["attempts"])) and record["cost"] > 0
    assert "prompt" not in record and "logprobs" not in record["attempts"][0]
    # with --logprobs, the rejected drafts are a labelled line for `calibrate`: the question and each
    # draft's token logprobs, as in a record with an answer
    assert main(["run", "--json", "--logprobs", "hello"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["prompt"] == "hello" and record["error"]["type"] == "AllTiersFailedError"
    assert all(a["logprobs"]["tokens"] for a in record["attempts"])
    # ... which `calibrate` reads: the last draft, labelled; a record where no tier drafted is skipped
    from edgecascade.benchmarks.traces import load_labelled_traces

    nothing = {"error": {"type": "AllTiersFailedError", "message": "x"}, "correct": False,
               "attempts": [{"tier": "small", "model": "m", "content": None, "error": "timeout"}]}
    path = tmp_path / "labelled.jsonl"
    path.write_text(json.dumps({**record, "correct": False}) + "\n" + json.dumps(nothing) + "\n")
    prompts: dict[str, str] = {}
    [t] = load_labelled_traces(path, prompts)
    assert t.answer == "maybe" and t.correct is False and list(prompts.values()) == ["hello"]
    # a bad request is a record too, with its exit code
    assert main(["run", "--json", " "]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "InvalidRequestError"


def test_run_prints_the_answer_byte_for_byte(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """rich read ":100:" in a slice as an emoji and expanded tabs: `run > answer.py` got other code."""
    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.config import AcceptRule

    code = "def f(nums, s, x):\n\tevens = nums[0:100:2]\n\treturn s[1:x:2], [a:b:c]\x08"
    tier = Tier("[small]", ScriptedProvider([ScriptedReply(code, logprob=-0.01)], model="m[/x]"),
                AcceptRule(min_confidence=0.5))
    monkeypatch.setattr(Cascade, "from_config", classmethod(lambda cls, path=None: Cascade([tier])))
    assert main(["run", "--explain", "q"]) == 0
    out, err = capsys.readouterr()
    assert out == code + "\n"
    # a tier or model name is text, never markup: "[small]" was swallowed, "[/x]" raised MarkupError
    assert "cascade: [small]" in err and "tier 1: [small] (m[/x])" in err


def test_an_out_that_cannot_be_written_is_refused_before_the_work(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """--out naming a file where a folder goes (or the reverse) failed with a traceback, after the
    minutes of work whose results it was to hold."""
    taken = tmp_path / "taken"
    taken.write_text("x")
    for argv in (["bench", "report", "--datasets", "gsm8k", "--out", str(taken)],
                 ["bench", "reliability", "--out", str(taken / "sub")],
                 ["calibrate", "--traces", str(taken), "--out", str(tmp_path)]):
        assert main(argv) == 2
        said = capsys.readouterr().err
        assert said.startswith("error: --out ") and "Traceback" not in said


@pytest.mark.parametrize("t", ["nan", "inf", "-0.5", "2.5"])
def test_a_temperature_must_be_from_0_to_2(t: str, capsys: pytest.CaptureFixture[str]) -> None:
    """nan and inf were taken, then failed as a traceback when the request was sent; 50 was taken
    and refused by OpenAI-style tiers mid-query (llama.cpp took it and sampled noise)."""
    from edgecascade.config import parse_config
    from edgecascade.errors import ConfigError, InvalidRequestError
    from edgecascade.types import Message, Request

    with pytest.raises(SystemExit) as ei:
        main(["run", "--temperature", t, "q"])
    assert ei.value.code == 2 and "a number from 0 to 2" in capsys.readouterr().err
    with pytest.raises(InvalidRequestError, match="a number from 0 to 2"):
        Request([Message("user", "q")], temperature=float(t))
    with pytest.raises(ConfigError, match="temperature"):
        parse_config({"cascade": {"temperature": float(t)}, "tiers": [{"model": "m"}]})
    assert Request([Message("user", "q")], temperature=2.0).temperature == 2.0


def test_an_os_error_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edgecascade import Cascade

    def unreadable(cls: type, path: str | None = None) -> Cascade:
        raise PermissionError(13, "Permission denied", "/etc/edgecascade.toml")

    monkeypatch.setattr(Cascade, "from_config", classmethod(unreadable))
    assert main(["run", "q"]) == 2
    assert capsys.readouterr().err.startswith("error: [Errno 13] Permission denied: '/etc/edgecascade.toml'")
    # with --json, stdout carries the error as a record, as for every other error
    assert main(["run", "--json", "q"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "ConfigError"

    def reader_left(cls: type, path: str | None = None) -> Cascade:
        raise BrokenPipeError(32, "Broken pipe")  # `edgecascade run ... | head`

    monkeypatch.setattr(Cascade, "from_config", classmethod(reader_left))
    assert main(["run", "q"]) == 0 and capsys.readouterr().err == ""  # not "check the path given"


def test_a_model_path_that_names_no_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistake in the config, as a mistyped registry name is (it had exited 1, a tier's failure)."""
    p = tmp_path / "c.toml"
    p.write_text(f'[[tiers]]\nmodel = "{tmp_path / "gone.gguf"}"\n')
    assert main(["run", "--config", str(p), "hello"]) == 2
    assert "gone.gguf" in capsys.readouterr().err


def test_console_script_runs() -> None:
    r = subprocess.run([sys.executable, "-m", "edgecascade.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"edgecascade {edgecascade.__version__}"


def test_bench_overhead_engine_only(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["bench", "overhead", "--engine-only", "--queries", "40", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("engine_overhead", "engine_overhead_calibrated"):  # the threshold rule and the shipped default
        assert 0 < r[f"{key}_ms_p50"] <= r[f"{key}_ms_p99"]
        # per path: answered by the first tier, after one escalation, after two (the median falls between)
        by = r[f"{key}_ms_p50_by_tiers"]
        assert set(by) == {"1", "2", "3"} and all(v > 0 for v in by.values())


@pytest.mark.parametrize("argv", [["bench", "report", "--margin", "-1"], ["bench", "report", "--margin", "nan"],
                                  ["bench", "report", "--margin", "inf"],
                                  ["bench", "reliability", "--margins", "1", "-2"]])
def test_a_margin_must_be_a_finite_number_of_standard_errors(argv: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2 and "standard errors, 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["95", "0", "-1", "nan", "x"])
def test_bench_report_refuses_a_target_that_is_not_a_share(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(["bench", "report", "--target", target])
    assert ei.value.code == 2 and "--target" in capsys.readouterr().err


def test_bench_reliability_refuses_a_dataset_named_twice(capsys: pytest.CaptureFixture[str]) -> None:
    for twice in (["a/set.jsonl", "b/set.jsonl"], ["gsm8k", "GSM8K"]):
        assert main(["bench", "reliability", "--datasets", *twice]) == 2
        assert "names a dataset twice" in capsys.readouterr().err


def test_calibrate_refuses_non_finite_logprobs_and_prints_strict_json(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import numpy as np

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tokens": ["a", "b"], "logprobs": [-0.1, float("-inf")], "correct": True}) + "\n")
    assert main(["calibrate", "--traces", str(bad)]) == 2  # a bad input file, as a bad config: exit 2
    err = capsys.readouterr().err
    assert f"{bad}:1" in err and "not a finite number" in err
    # labels unrelated to the logprobs: P(correct) stays near the base rate, no draft reaches 0.95,
    # and the accuracy of the accepted ones is undefined: null in strict JSON, not NaN
    rng = np.random.default_rng(0)
    lines = [{"id": i, "tokens": ["x", "y"], "logprobs": [float(rng.normal(-0.5, 0.1))] * 2,
              "correct": bool(rng.random() < 0.5)} for i in range(120)]
    ok = tmp_path / "ok.jsonl"
    ok.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["calibrate", "--traces", str(ok), "--out", str(tmp_path / "c.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    row = next(r for r in out["thresholds"] if r["min_confidence"] == 0.95)
    assert row["accepted_share"] == 0.0 and row["accepted_accuracy"] is None


def test_the_cli_shows_a_warning_as_one_plain_line(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from edgecascade.cli import parser  # where the parser finds each command's function

    def warns(args: object) -> int:
        warnings.warn("tier 'x' uses a calibration fitted for y", UserWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(parser, "cmd_calibrate", warns)
    assert main(["calibrate", "--traces", "t.jsonl"]) == 0
    said = capsys.readouterr().err
    assert said.strip() == "warning: tier 'x' uses a calibration fitted for y" and "UserWarning" not in said


def test_a_tier_that_sends_no_token_counts_is_named_where_costs_are_reported() -> None:
    """A server that returns no `usage` was costed at $0 and its cost called measured, with only a
    log line to say otherwise: the result and its account name the tier."""
    from edgecascade import Cascade, Completion, Tier, Timings, Usage
    from edgecascade.cli.run import _account
    from edgecascade.config import Price

    class Silent:  # answers, but without token counts
        model = "silent"
        capabilities = __import__("edgecascade").Capabilities()

        async def complete(self, request: object) -> Completion:
            return Completion("Paris.", "silent", "stop", Usage(0, 0, reported=False), Timings())

        async def aclose(self) -> None:
            return None

    r = Cascade([Tier("cloud", Silent(), price=Price(output_per_mtok=10.0))]).run_sync("Capital of France?")  # type: ignore[arg-type]
    assert r.cost == 0.0 and r.usage_missing == ["cloud"] and r.to_dict()["usage_missing"] == ["cloud"]
    assert r.to_dict()["attempts"][0]["tokens"]["reported"] is False
    # the baseline (this tier) is measured on the same missing counts: not known, not $0
    assert r.baseline_cost is None and r.saving is None and r.to_dict()["saving"] is None
    assert _account(r).endswith("no token counts from cloud: a priced tier's cost reads too low")
    assert "saving vs always cloud not known" in _account(r)


def test_importing_the_library_leaves_the_model_registry_unloaded() -> None:
    """The registry (and its pip, zip and subprocess machinery) loads when a model is looked up, not
    at `import edgecascade`; a top-level import added to the engine had pulled it in. The manifests
    (edgecascade.manifests, read for a shipped calibration's path) stay unloaded too."""
    code = ("import sys, edgecascade; "
            "print([m for m in ('edgecascade.models', 'edgecascade.manifests') if m in sys.modules])")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "[]"


def test_the_bench_run_a_command_suggests_names_the_config_it_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """With $EDGECASCADE_CONFIG choosing the config, the suggested `bench run` said --config default,
    which traces other tiers: the report asking for it could never be satisfied."""
    import argparse

    from edgecascade.cli.bench_traces import _bench_run_command

    args = argparse.Namespace(config=None, traces="my traces", max_tokens=None)
    monkeypatch.setenv("EDGECASCADE_CONFIG", "remote.toml")
    assert _bench_run_command(args, "gsm8k", limit=40) == (
        "edgecascade bench run --dataset gsm8k --config remote.toml --limit 40 --traces 'my traces'")
    monkeypatch.delenv("EDGECASCADE_CONFIG")
    assert "--config default" in _bench_run_command(args, "gsm8k")
    assert "--config mine.toml" in _bench_run_command(argparse.Namespace(**{**vars(args), "config": "mine.toml"}),
                                                      "gsm8k")


def test_progress_shows_names_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset or tier name with brackets in the progress bar was read as markup: "gpu[/]" raised
    MarkupError mid-run, "[red]big" lost its first word."""
    import io

    from rich.console import Console

    from edgecascade.cli import console

    seen = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=seen, width=200, markup=False, force_terminal=False))
    with console.progress_bar("my{set}[red] x 2 tiers") as bar:
        task = bar.add_task("cached", total=2)
        bar.update(task, advance=1, description="q1 gpu[/]: right")
    shown = seen.getvalue()
    assert "my{set}[red] x 2 tiers" in shown and "q1 gpu[/]: right" in shown


def test_progress_writes_lines_where_no_bar_can_be_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `bench run` under `nohup` or in CI wrote nothing to its log for the forty minutes a draw
    takes: a live bar draws only on a terminal. There each step is a line (no more than one every
    `_LOG_EVERY_S` seconds, and always the last); on a terminal, none."""
    import io

    from rich.console import Console

    from edgecascade.cli import console

    def run(terminal: bool, every_s: float) -> list[str]:
        seen = io.StringIO()
        monkeypatch.setattr(console, "err", Console(file=seen, width=200, markup=False, force_terminal=terminal))
        monkeypatch.setattr(console, "_LOG_EVERY_S", every_s)
        with console.progress_bar("ds x 2 tiers") as bar:
            task = bar.add_task("", total=3)
            bar.update(task, completed=0, description="cached")
            bar.update(task, completed=1, description="q1 small: right")
            bar.update(task, completed=1, description="q1 small: right")  # no step: no line
            bar.advance(task)
            bar.update(task, completed=3, description="q2 large: wrong")
        return [line for line in seen.getvalue().splitlines() if not line.startswith("ds x 2 tiers ━")]

    assert run(False, 0.0) == ["ds x 2 tiers 1/3 q1 small: right", "ds x 2 tiers 2/3 q1 small: right",
                               "ds x 2 tiers 3/3 q2 large: wrong"]
    assert run(False, 3600.0) == ["ds x 2 tiers 1/3 q1 small: right", "ds x 2 tiers 3/3 q2 large: wrong"]
    assert not any("tiers 1/3" in line or "tiers 3/3" in line for line in run(True, 0.0))  # only the bar


def test_bench_run_says_when_a_tier_failed_and_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A tier that failed on every item read "0 items · accuracy 0.0%" and the command exited 0; the
    report that followed asked for the same bench run."""
    import json

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.cli import bench
    from edgecascade.errors import ModelLoadError

    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"How many apples, {i}?", "reference": "4"}) + "\n"
                            for i in range(2)))
    def cascade(config: str | None) -> tuple[Cascade, None, bool]:
        down = ScriptedReply(error=ModelLoadError("llama.cpp could not load big.gguf: the file may be corrupt"))
        return Cascade([Tier("small", ScriptedProvider([ScriptedReply("The answer is 4.", logprob=-0.1)] * 2,
                                                       model="s")),
                        Tier("my big", ScriptedProvider([down] * 2, model="b"))]), None, True

    monkeypatch.setattr(bench, "_bench_cascade", cascade)
    argv = ["bench", "run", "--dataset", str(data), "--traces", str(tmp_path / "traces")]
    assert main([*argv, "--json"]) == 1
    out, err = capsys.readouterr()
    tiers = json.loads(out)["tiers"]
    assert tiers["small"]["items"] == 2 and tiers["small"]["accuracy"] == 1.0
    assert tiers["my big"] == {**tiers["my big"], "items": 0, "failed": 2, "accuracy": None}
    # a tier's name may hold spaces (a model path does): its failure is still its own
    assert "error: tier my big failed on 2 of 2 items, first: ModelLoadError: llama.cpp could not load big.gguf" in err
    assert main(argv) == 1
    out, _ = capsys.readouterr()
    assert "tier my big: 0 items · accuracy n/a" in out


def test_a_question_piped_in_loses_the_newline_echo_adds(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import json

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier

    provider = ScriptedProvider([ScriptedReply("Blue.", logprob=-0.1)])
    monkeypatch.setattr(Cascade, "from_config", classmethod(lambda cls, path=None: Cascade([Tier("t", provider)])))
    monkeypatch.setattr("sys.stdin", io.StringIO("Name a colour.\n"))
    assert main(["run", "--json", "--logprobs", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt"] == "Name a colour."
    assert provider.requests[0].messages[-1].content == "Name a colour."


def test_bench_run_counts_failed_cross_checks_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.cli import bench
    from edgecascade.config import CascadeSettings
    from edgecascade.errors import ProviderTimeoutError

    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Tom has {i} apples and buys 3 more. How many "
                                        "apples does he have?", "reference": str(i + 3)}) + "\n" for i in range(2)))

    def cascade(config: str | None) -> tuple[Cascade, None, bool]:
        draft = ScriptedReply("The answer is 3.", logprob=-0.1)
        slow = ScriptedReply(error=ProviderTimeoutError("no program in time"))
        return Cascade([Tier("small", ScriptedProvider([draft, draft, slow, slow], model="s")),
                        Tier("big", ScriptedProvider([draft] * 2, model="b"))],
                       CascadeSettings(cross_check=True)), None, True

    monkeypatch.setattr(bench, "_bench_cascade", cascade)
    assert main(["bench", "run", "--dataset", str(data), "--traces", str(tmp_path / "t"), "--json"]) == 1
    out, err = capsys.readouterr()
    checks = json.loads(out)["tiers"]["cross-check"]
    assert checks["items"] == 0 and checks["failed"] == 2 and checks["accuracy"] is None
    assert "error: the cross-check failed on 2 of 2 items, first: ProviderTimeoutError: no program in time;" in err


def test_what_a_user_gets_wrong_on_the_command_line_exits_2_and_says_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From a new user's walkthrough: a model path that names no file exited 1 (a tier's failure), a
    non-UTF-8 stdin reached llama.cpp and failed there (exit 1), an unknown option was said with the
    top-level usage, and a shortened one (--max-token) was taken for --max-tokens."""
    import io
    import types

    cfg = tmp_path / "c.toml"
    cfg.write_text('[[tiers]]\nmodel = "models/none.gguf"\n')
    assert main(["run", "--config", str(cfg), "hi"]) == 2
    assert "model file" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(b"\xff\xfe\x00bad")))
    assert main(["run", "-"]) == 2
    assert "the question on stdin is not UTF-8 text" in capsys.readouterr().err
    # the same bytes as an argument arrive holding surrogates: printed back in a --json error record
    # on a strict UTF-8 stdout, they crashed with a traceback
    assert main(["run", "--json", "--logprobs", "caf\udce9?"]) == 2
    said = capsys.readouterr()
    assert "the question is not UTF-8 text" in said.err + said.out and "Traceback" not in said.err
    for argv, usage in ((["run", "--bogus", "hi"], "usage: edgecascade run "),
                        (["bench", "report", "--bogus"], "usage: edgecascade bench report ")):
        with pytest.raises(SystemExit) as ei:
            main(argv)
        said = capsys.readouterr().err
        assert ei.value.code == 2 and usage in said and "unrecognized arguments: --bogus" in said
    with pytest.raises(SystemExit):
        main(["run", "--max-token", "16", "hi"])
    assert "unrecognized arguments: --max-token" in capsys.readouterr().err


def test_run_json_is_strict_json_even_where_a_number_is_not_finite(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A logprob a server sent as null is NaN inside (on purpose), and `run --json --logprobs` printed
    it as a bare NaN, which strict JSON readers refuse; it is null now, as in every other JSON
    edgecascade writes."""
    import json
    import math

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier

    provider = ScriptedProvider([ScriptedReply("Paris is it", logprob=[-0.1, math.nan, -0.2])])
    monkeypatch.setattr(Cascade, "from_config", classmethod(lambda cls, path=None: Cascade([Tier("t", provider)])))
    assert main(["run", "--json", "--logprobs", "Capital of France?"]) == 0

    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    record = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert record["attempts"][0]["logprobs"]["logprobs"][1] is None


def test_text_no_backend_can_be_sent_is_an_invalid_request_not_a_bad_key(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A system prompt (or an API prompt) holding a lone surrogate failed inside the HTTP tier, which
    blamed the API key ("holds a character that is not ASCII"), exit 1."""
    from edgecascade import Cascade, InvalidRequestError, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.types import Message, Request

    c = Cascade([Tier("t", ScriptedProvider([ScriptedReply("Paris.", logprob=-0.1)]))])
    for bad in ("a\ud800b", [{"role": "user", "content": "caf\udce9?"}]):
        with pytest.raises(InvalidRequestError, match="lone surrogate"):
            c.run_sync(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match=r"message 0 \(system\) is not valid Unicode"):
        Request([Message("system", "caf\udce9"), Message("user", "hi")])
    # a stop string too, before any tier runs (it had failed after a paid tier, as an unknown cost)
    with pytest.raises(InvalidRequestError, match=r"stop string 1 is not valid Unicode"):
        c.run_sync("hi", stop=["\n", "\udcff"])
    with pytest.raises(InvalidRequestError, match=r"stop string 0 is not valid Unicode"):
        Request([Message("user", "hi")], stop=["\udcff"])
    cfg = tmp_path / "remote.toml"
    cfg.write_text('[[tiers]]\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n')
    assert main(["run", "--config", str(cfg), "--system", "caf\udce9", "hi"]) == 2
    said = capsys.readouterr().err
    assert "not valid Unicode" in said and "API key" not in said


def test_a_request_built_by_hand_is_checked_as_a_prompt_is() -> None:
    """Request(messages=[{...}]) failed later with "'dict' object has no attribute 'content'", and
    Request(messages=[]) was taken."""
    from edgecascade import InvalidRequestError
    from edgecascade.types import Message, Request

    assert Request([{"role": "user", "content": "hi"}]).messages == [Message("user", "hi")]  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="no non-empty user turn"):
        Request([])
    with pytest.raises(InvalidRequestError, match="message 0 has role 'bot'"):
        Request([{"role": "bot", "content": "hi"}])  # type: ignore[list-item]


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_split_seed_out_of_range_is_a_usage_error(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`calibrate --seed -1` ended in scikit-learn's InvalidParameterError traceback, after reading every trace."""
    for argv in (["calibrate", "--traces", "t.jsonl", "--seed", seed], ["bench", "report", "--seed", seed]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and "a seed is a whole number from 0 to 4294967295" in capsys.readouterr().err


# -- found by a review of the command line (2026-11-28): each failed on the code before ---------------


def test_run_from_a_closed_stdin_is_a_usage_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when started with stdin closed (`<&-`)
    assert main(["run", "-"]) == 2
    said = capsys.readouterr().err
    assert "stdin is closed" in said and "Traceback" not in said


@pytest.mark.parametrize("argv", [
    ["bench", "report", "--traces", ""],
    ["bench", "run", "--dataset", "gsm8k", "--traces", " "],
    ["bench", "report", "--out", ""],
    ["calibrate", "--traces", "t.jsonl", "--out", ""],
    ["run", "--config", "", "hi"],
])
def test_an_empty_path_is_refused_not_read_as_the_default(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unset variable (`--traces "$DIR"`) had sent traces and results to the committed benchmark folder."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "a path is needed here, not an empty string" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_run_seed_out_of_range_is_a_usage_error(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    """llama.cpp reads -1 as 'random', and 2**32 does not fit its seed."""
    with pytest.raises(SystemExit) as e:
        main(["run", "--seed", seed, "hi"])
    assert e.value.code == 2 and "a seed is a whole number from 0 to 4294967295" in capsys.readouterr().err


def test_an_out_folder_without_rights_is_refused_before_the_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Only the kind of path was checked: a folder that could not be written in failed after the
    report's work, with a raw [Errno 13]."""
    import tempfile

    def refuse(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    for argv in (["bench", "report", "--datasets", "gsm8k", "--out", str(tmp_path / "r")],
                 ["calibrate", "--traces", str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "c.json")]):
        assert main(argv) == 2
        said = capsys.readouterr().err
        assert "cannot write in" in said and "(Permission denied)" in said and "Traceback" not in said


def test_reports_go_beside_the_traces_folder_given_on_the_command_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`--traces DIR` without --out had written the report over the benchmark folder's committed one."""
    import argparse

    from edgecascade.cli.bench_report import _out_dir

    monkeypatch.delenv("EDGECASCADE_TRACES", raising=False)
    scratch = tmp_path / "scratch" / "traces"
    assert _out_dir(argparse.Namespace(out=None, traces=str(scratch))) == tmp_path / "scratch" / "results"
    monkeypatch.setenv("EDGECASCADE_TRACES", str(tmp_path / "env" / "traces"))
    assert _out_dir(argparse.Namespace(out=None, traces=None)) == tmp_path / "env" / "results"
    assert _out_dir(argparse.Namespace(out=str(tmp_path / "o"), traces=str(scratch))) == tmp_path / "o"


def test_no_command_prints_the_help_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "usage: edgecascade" in out.err


def test_bench_overhead_engine_only_refuses_model_options_it_would_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    """`--engine-only --model no-such-model --runs 3` exited 0, the options ignored without a word."""
    assert main(["bench", "overhead", "--engine-only", "--model", "no-such-model", "--runs", "3"]) == 2
    said = capsys.readouterr().err
    assert "--engine-only measures no model, so --model, --runs would do nothing" in said


def test_a_report_on_a_jsonl_file_that_is_not_there_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It warned the file could not be reloaded, then told the user to `bench run` it, which fails the same way."""
    rc = main(["bench", "report", "--datasets", str(tmp_path / "nope.jsonl"), "--traces", str(tmp_path / "tr"),
               "--out", str(tmp_path / "out")])
    said = capsys.readouterr().err
    assert rc == 2 and f"no dataset file at {tmp_path / 'nope.jsonl'}" in said and "bench run --dataset FILE" in said


def test_a_reader_that_leaves_early_gets_no_traceback_and_exit_0(tmp_path: Path) -> None:
    """A table piped to `head` exited 1 (rich's own broken-pipe exit), and a --json error record
    written to a reader that had left printed two tracebacks."""
    def piped(*argv: str) -> subprocess.CompletedProcess[str]:
        command = " ".join([sys.executable, "-m", "edgecascade.cli", *argv])
        return subprocess.run(["bash", "-o", "pipefail", "-c", f"{command} | true"], capture_output=True, text=True,
                              cwd=Path(__file__).parents[2])

    listed = piped("models", "list")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    failed = piped("calibrate", "--json", "--traces", str(tmp_path / "none.jsonl"))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr and "no traces file at" in failed.stderr


def test_an_option_before_the_command_is_said_to_go_after_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--json", "run", "hi"])
    assert e.value.code == 2 and "--json goes after the command: edgecascade run --json ..." in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a command of two words is named whole
        main(["--json", "models", "list"])
    assert "--json goes after the command: edgecascade models list --json ..." in capsys.readouterr().err


def test_a_closed_stdout_is_refused_before_any_tier_is_asked(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # `edgecascade run q >&-` had paid for the answer, then crashed printing it (AttributeError)
    from edgecascade import Cascade

    def never(cls: type, path: str | None = None) -> Cascade:
        raise AssertionError("no cascade is built")

    monkeypatch.setattr(Cascade, "from_config", classmethod(never))
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["run", "hi"]) == 2
    assert "stdout is closed" in capsys.readouterr().err


def test_the_account_names_a_tier_that_failed_on_the_way() -> None:
    """A tier that errored (a server down) was said only with --explain: the next tier answered, exit
    0, and every query could go on to a paid tier without a word."""
    from edgecascade import Cascade, ProviderConnectionError, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.cli.run import _account

    down = ScriptedProvider([ScriptedReply(error=ProviderConnectionError("connection refused"))], model="local")
    r = Cascade([Tier("local", down), Tier("cloud", ScriptedProvider([ScriptedReply("Paris.")], model="big"))]
                ).run_sync("Capital of France?")
    assert r.tier == "cloud" and _account(r).endswith(" · failed: local (connection) (see --explain)")


def test_an_error_with_stdout_closed_is_said_on_stderr(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # only `run` refuses a closed stdout; another command's error had ended in an AttributeError
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["calibrate", "--traces", "nowhere.jsonl"]) == 2
    assert "no traces file at nowhere.jsonl" in capsys.readouterr().err
