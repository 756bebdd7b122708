"""Config loading: shipped configs parse, and every mistake is a clear error naming the key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgecascade import Cascade, ConfigError, ModelNotFoundError, load_config
from edgecascade.config import configs_dir, parse_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_shipped_configs_parse() -> None:
    names = sorted(p.stem for p in configs_dir().glob("*.toml"))
    assert {"default", "tiny"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert len(cfg.tiers) >= 2
        rule = cfg.tiers[0].accept
        # the drafter always has a measured rule: a measured threshold or a calibrated quality target
        assert rule.min_confidence is not None or (rule.confidence == "calibrated" and rule.quality_target)


def test_default_config_is_the_offline_qwen_cascade() -> None:
    cfg = load_config(None)
    assert [t.model for t in cfg.tiers] == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]


def test_unknown_key_is_named_with_its_place(tmp_path: Path) -> None:
    p = write(tmp_path, '[[tiers]]\nmodel = "x.gguf"\n[tiers.accept]\nmin_confidense = 0.5\n')
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert "unknown key 'tiers[0].accept.min_confidense'" in str(ei.value)
    assert str(p) in str(ei.value)


def test_unknown_top_level_key_and_missing_model(tmp_path: Path) -> None:
    p = write(tmp_path, 'teirs = 1\n[[tiers]]\nname = "a"\n')
    msg = str(pytest.raises(ConfigError, load_config, p).value)
    assert "unknown key 'teirs'" in msg and "missing required key 'tiers[0].model'" in msg


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('[[tiers]]\nmodel = "a.gguf"\n[tiers.accept]\nmin_confidence = 1.5\n', "tiers[0].accept.min_confidence"),
        ('[[tiers]]\nmodel = "a.gguf"\n[tiers.accept]\nconfidence = "vibes"\n', "tiers[0].accept.confidence"),
        ('[[tiers]]\nmodel = "a.gguf"\n[[tiers]]\nmodel = "a.gguf"\n', "unique"),
        ("tiers = []\n", "at least one"),
        ('[cascade]\nmax_tokens = 0\n[[tiers]]\nmodel = "a.gguf"\n', "cascade.max_tokens"),
        # inf passed `ge=0` and failed mid-query (a JSON body cannot carry it); a price of inf printed NaN
        ('[cascade]\ntemperature = inf\n[[tiers]]\nmodel = "a.gguf"\n', "cascade.temperature"),
        ('[[tiers]]\nmodel = "m"\nprovider = "openai"\n[tiers.price]\ninput_per_mtok = inf\n',
         "tiers[0].price.input_per_mtok"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="invalid config") as ei:
        load_config(write(tmp_path, body))
    assert fragment in str(ei.value)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as ei:
        load_config(tmp_path / "nope.toml")
    assert "default" in str(ei.value)  # it lists the shipped names
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[[tiers]\n"))
    with pytest.raises(ConfigError, match="is a folder: pass --config with a path to a .toml file in it"):
        load_config(tmp_path)  # it had said the folder "does not exist"


def test_an_unreadable_config_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PermissionError had escaped load_config raw, past code catching ConfigError."""
    path = write(tmp_path, '[[tiers]]\nmodel = "m"\nprovider = "openai"\n')

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError, match=r"cannot be read \(Permission denied\): check its permissions") as ei:
        load_config(path)
    assert str(path) in str(ei.value)


def test_a_missing_config_named_by_the_environment_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It said "pass --config" to a user who had passed none."""
    monkeypatch.setenv("EDGECASCADE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"\$EDGECASCADE_CONFIG names .*nope.toml, which does not exist") as ei:
        load_config()
    assert "--config" not in str(ei.value) and "default" in str(ei.value)


def test_missing_model_fails_when_the_cascade_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECASCADE_CACHE", str(tmp_path / "cache"))
    cfg = parse_config({"tiers": [{"model": str(tmp_path / "missing.gguf")}]})
    with pytest.raises(ModelNotFoundError, match="missing.gguf"):
        Cascade.from_config(cfg)
    cfg = parse_config({"tiers": [{"model": "qwen2.5-coder-0.5b"}]})
    with pytest.raises(ModelNotFoundError, match="edgecascade models pull qwen2.5-coder-0.5b"):
        Cascade.from_config(cfg)
    cfg = parse_config({"tiers": [{"model": "no-such-model"}]})
    with pytest.raises(ModelNotFoundError, match="smollm2-135m"):  # lists the known names
        Cascade.from_config(cfg)


def test_calibrated_rules_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="quality_target needs confidence"):
        parse_config({"tiers": [{"model": "a.gguf", "accept": {"quality_target": 0.95}}]})
    with pytest.raises(ConfigError, match="either min_confidence or quality_target"):
        parse_config({"tiers": [{"model": "a.gguf", "accept": {"confidence": "calibrated", "quality_target": 0.9,
                                                                "min_confidence": 0.5}}]})


def test_quality_target_resolves_through_the_calibration(tmp_path: Path) -> None:
    import math as _math

    from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.engine import calibration_for
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    n = len(FEATURE_NAMES)
    coef = [0.0] * n
    coef[FEATURE_NAMES.index("mean_logprob")] = 1.0
    cal = Calibration("m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, coef, 0.0, thresholds={"0.95": 0.4})
    path = tmp_path / "m.calibration.json"
    cal.save(path)
    cfg = parse_config({"tiers": [{"model": "a.gguf", "accept": {"confidence": "calibrated", "quality_target": 0.95,
                                                                 "calibration": str(path)}}]})
    loaded = calibration_for(cfg.tiers[0])
    assert loaded is not None and loaded.threshold_for(0.95) == 0.4
    rule = cfg.tiers[0].accept
    # P(correct) = sigmoid(mean_logprob): -0.1 -> 0.475 (kept), -1.0 -> 0.269 (escalated)
    hi, lo = ScriptedReply("a b", logprob=-0.1), ScriptedReply("a b", logprob=-1.0)
    top = Tier("big", ScriptedProvider([ScriptedReply("ok", logprob=-0.01)]))
    r = Cascade([Tier("small", ScriptedProvider([hi]), rule, calibration=loaded), top]).run_sync("q")
    assert r.tier == "small" and r.confidence == pytest.approx(1 / (1 + _math.exp(0.1)))
    assert "calibrated 0.475 >= 0.4" in r.reason
    r = Cascade([Tier("small", ScriptedProvider([lo]), rule, calibration=loaded), top]).run_sync("q")
    assert r.tier == "big" and "calibrated 0.269 < 0.4" in r.attempts[0].reason
    with pytest.raises(ConfigError, match="no threshold for quality_target 0.9"):
        loaded.threshold_for(0.9)
    with pytest.raises(ValueError, match="needs a Calibration"):
        Tier("small", ScriptedProvider([hi]), rule)
    with pytest.raises(ConfigError, match="no calibration at"):
        calibration_for(parse_config({"tiers": [{"model": "a.gguf", "accept": {
            "confidence": "calibrated", "calibration": str(tmp_path / "missing.json")}}]}).tiers[0])
    # a target the file has no threshold for is refused when the config is read, not at the first
    # query, naming the file and what to do: a file `calibrate --traces` writes has no thresholds
    for thresholds, said in (({"0.9": 0.3}, "has them only for 0.9: use one of those"),
                             ({}, "has none: a file `edgecascade calibrate --traces` writes has none.*set "
                                  "min_confidence instead")):
        Calibration("m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, coef, 0.0, thresholds=thresholds).save(path)
        with pytest.raises(ConfigError, match=f"quality_target = 0.95 needs a threshold chosen for it, and the "
                                              f"calibration {path} {said}"):
            calibration_for(cfg.tiers[0])


def test_env_interpolation_in_shipped_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGECASCADE_VLLM_URL", raising=False)
    cfg = load_config("gpu-server")
    assert cfg.tiers[1].base_url == "http://127.0.0.1:8000/v1" and cfg.tiers[1].provider == "vllm"
    monkeypatch.setenv("EDGECASCADE_VLLM_URL", "http://gpu-box:9000/v1")
    assert load_config("gpu-server").tiers[1].base_url == "http://gpu-box:9000/v1"
    hybrid = load_config("hybrid")
    assert [t.provider for t in hybrid.tiers] == ["llamacpp", "llamacpp", "openai"]
    assert hybrid.tiers[2].api_key_env == "OPENAI_API_KEY"
    # a .env file's CR is no part of the model's name (every query had asked for 'Qwen...\r')
    monkeypatch.setenv("EDGECASCADE_VLLM_MODEL", "Qwen/Qwen2.5-7B-Instruct\r")
    assert load_config("gpu-server").tiers[1].model == "Qwen/Qwen2.5-7B-Instruct"


def test_a_substitution_inside_a_default_is_refused_not_mangled(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # it had read as 'http://${HOST:-127.0.0.1:8000/v1}' and failed as an address it cannot read
    monkeypatch.delenv("EDGECASCADE_X_URL", raising=False)
    p = write(tmp_path, '[[tiers]]\nmodel = "m"\nprovider = "vllm"\n'
                        'base_url = "${EDGECASCADE_X_URL:-http://${HOST:-127.0.0.1}:8000/v1}"\n')
    with pytest.raises(ConfigError, match=r"the default of \$\{EDGECASCADE_X_URL:-\.\.\.\} holds another"):
        load_config(p)


def test_unset_env_without_default_and_keys_in_config_are_errors(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, '[[tiers]]\nmodel = "m"\nprovider = "vllm"\nbase_url = "${EDGECASCADE_NOPE_URL}"\n')
    with pytest.raises(ConfigError, match=r"EDGECASCADE_NOPE_URL\}, which is not set"):
        load_config(p)
    for blank in ("", "   "):  # spaces had become a base_url of spaces, an error that named no variable
        monkeypatch.setenv("EDGECASCADE_NOPE_URL", blank)
        with pytest.raises(ConfigError, match=r"EDGECASCADE_NOPE_URL\}, which is set but blank"):
            load_config(p)
    p = write(tmp_path, '[[tiers]]\nmodel = "m"\nprovider = "openai"\napi_key = "sk-123"\n')
    msg = str(pytest.raises(ConfigError, load_config, p).value)
    assert "api_key_env" in msg and "sk-123" not in msg


def test_the_environment_fills_tiers_only_and_a_system_prompt_is_text(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A system prompt's ${HOME} was filled from the environment (and sent to every tier), and a
    template literal ${name} in it failed the whole config."""
    monkeypatch.setenv("EDGECASCADE_TEST_MODEL", "m-from-env")
    monkeypatch.delenv("name", raising=False)
    p = write(tmp_path, '[cascade]\nsystem_prompt = "Say `${name}` and ${HOME}."\n'
                        '[[tiers]]\nmodel = "${EDGECASCADE_TEST_MODEL}"\nprovider = "vllm"\n')
    cfg = load_config(p)
    assert cfg.cascade.system_prompt == "Say `${name}` and ${HOME}." and cfg.tiers[0].model == "m-from-env"


def test_relative_paths_in_a_config_file_are_read_from_its_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A config's relative `.gguf` model and calibration paths were read from wherever the command
    ran, so the same config failed from another directory; they are read from the file's folder."""
    from edgecascade.config import load_config

    folder = tmp_path / "cfgs"
    folder.mkdir()
    (folder / "c.toml").write_text(
        '[[tiers]]\nmodel = "weights/small.gguf"\n[tiers.accept]\nconfidence = "calibrated"\n'
        'calibration = "mine.calibration.json"\nmin_confidence = 0.5\n'
        '[[tiers]]\nname = "abs"\nmodel = "/opt/big.gguf"\n[tiers.accept]\nconfidence = "calibrated"\n'
        'calibration = "~/cal.json"\nmin_confidence = 0.5\n'
        '[[tiers]]\nmodel = "qwen2.5-coder-1.5b"\n'
        '[[tiers]]\nprovider = "vllm"\nmodel = "Qwen/Qwen2.5-7B-Instruct"\n')
    elsewhere = tmp_path / "run-here"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    small, big, registry, remote = load_config(folder / "c.toml").tiers
    assert small.model == str(folder / "weights" / "small.gguf") and small.display_name == "weights/small.gguf"
    assert small.accept.calibration == str(folder / "mine.calibration.json")
    assert big.model == "/opt/big.gguf" and big.accept.calibration == "~/cal.json"  # absolute and ~ stay
    assert registry.model == "qwen2.5-coder-1.5b" and remote.model == "Qwen/Qwen2.5-7B-Instruct"


def test_a_calibration_fitted_for_another_model_is_used_with_a_warning(tmp_path: Path) -> None:
    """A calibration describes one model's drafts; a 1.5B file on a SmolLM2 tier was used silently."""
    import warnings

    from edgecascade.engine import calibration_for
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    n = len(FEATURE_NAMES)
    path = tmp_path / "c.json"
    for fitted_for, warns in (("qwen2.5-coder-1.5b", True), ("smollm2-135m", False), ("unnamed", False)):
        Calibration(fitted_for, list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.0] * n, 0.0).save(path)
        tier = parse_config({"tiers": [{"model": "smollm2-135m", "accept": {
            "confidence": "calibrated", "calibration": str(path), "min_confidence": 0.5}}]}).tiers[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert calibration_for(tier) is not None
        said = [str(w.message) for w in caught]
        assert bool(said) == warns, said
        if warns:
            assert "(model smollm2-135m) uses a calibration fitted for qwen2.5-coder-1.5b" in said[0]


@pytest.mark.parametrize("value", ["sk-test-SECRET123", "gsk_SECRET123abc", "hf_SECRET123abc", "MY KEY"])
def test_api_key_env_takes_a_variable_name_and_never_repeats_a_key(value: str) -> None:
    """A key written into api_key_env (instead of the variable's name) was accepted, and a 401
    then printed it in 'set $<key>'. Refused at load, without repeating the value."""
    with pytest.raises(ConfigError, match="api_key_env takes the NAME of an environment variable") as e:
        parse_config({"tiers": [{"provider": "openai", "model": "gpt-4.1-mini", "api_key_env": value}]})
    assert value not in str(e.value) and "SECRET" not in str(e.value)
    for name in ("MY_OPENAI_KEY", "HF_TOKEN", "SK_PROD_KEY"):  # variables' names, whatever they begin with
        assert parse_config({"tiers": [{"provider": "openai", "model": "m", "api_key_env": name}]})
    # built in Python, the validation error does not repeat the value either
    from pydantic import ValidationError

    from edgecascade import TierConfig

    with pytest.raises(ValidationError) as raw:
        TierConfig(provider="openai", model="m", api_key_env=value)
    assert value not in str(raw.value) and "SECRET" not in str(raw.value)


def test_a_config_dumped_and_loaded_again_is_the_same() -> None:
    """Dumping sets every field, most to their defaults: the check for keys a tier never reads
    must not read those as given (every shipped config failed to load again)."""
    import warnings

    from edgecascade import CascadeConfig

    for name in sorted(p.stem for p in configs_dir().glob("*.toml")):
        cfg = load_config(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no serializer warning either
            assert CascadeConfig.model_validate(cfg.model_dump()) == cfg
            assert CascadeConfig.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.parametrize(("tier", "said"), [
    ({"model": "Qwen/Qwen2.5-7B-Instruct", "base_url": "http://127.0.0.1:8000/v1"},
     'base_url: they are for remote tiers, and this tier runs in-process .*set provider'),
    ({"model": "qwen2.5-coder-0.5b", "api_key_env": "K", "keep_alive": "5m", "timeout": {"read": 9}},
     "api_key_env, timeout, keep_alive: they are for remote tiers"),
    ({"provider": "vllm", "model": "m", "n_ctx": 2048}, 'n_ctx: provider "vllm" does not read them'),
    ({"provider": "openai", "model": "m", "keep_alive": "5m"}, 'keep_alive: provider "openai" does not read'),
    ({"provider": "ollama", "model": "m", "logprobs": True}, 'logprobs: provider "ollama" does not read'),
    ({"provider": "anthropic", "model": "m", "top_logprobs": 3}, 'top_logprobs: provider "anthropic" does not'),
    ({"model": "a.gguf", "top_logprobs": 1, "accept": {"confidence": "mean_margin_prob", "min_confidence": 0.5}},
     "top_logprobs = 1 asks for fewer than 2 alternatives"),
    # a calibrator reads the margins too: with 0 or 1 alternatives the shipped one rejected nearly every draft
    ({"model": "a.gguf", "top_logprobs": 0, "accept": {"confidence": "calibrated", "min_confidence": 0.5}},
     '"calibrated" compares each token with its runner-up, and top_logprobs = 0 asks for fewer than 2'),
    ({"model": "a.gguf", "accept": {"calibration": "c.json", "min_confidence": 0.5}},
     'calibration is read only with confidence = "calibrated"'),
])
def test_a_key_the_tier_never_reads_is_an_error(tier: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        parse_config({"tiers": [tier]})


def test_the_default_config_variable_takes_a_short_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """EDGECASCADE_CONFIG=tiny failed ('config file tiny does not exist ... or one of the shipped
    names (..., tiny)'): the variable is read as --config is."""
    monkeypatch.setenv("EDGECASCADE_CONFIG", "tiny")
    assert load_config().tiers[0].model == "smollm2-135m"
    monkeypatch.setenv("EDGECASCADE_CONFIG", str(configs_dir() / "calibrated.toml"))
    assert load_config().cascade.cross_check
    monkeypatch.delenv("EDGECASCADE_CONFIG")
    assert load_config().tiers[0].model == "qwen2.5-coder-0.5b"


def test_a_cloud_tier_is_priced_from_the_catalogue_or_says_which_tier_needs_a_price() -> None:
    from edgecascade.pricing import resolve_price

    def tier(model: str) -> object:
        return parse_config({"tiers": [{"name": "cloud", "provider": "openai", "model": model}]}).tiers[0]

    if sys.version_info < (3, 11):  # genai-prices >= 0.2 needs 3.11: the `cloud` extra leaves it out on 3.10
        with pytest.raises(ConfigError, match="catalogue needs Python 3.11 or newer, so on this Python set "
                                              "input_per_mtok"):
            resolve_price(tier("gpt-4.1-mini"))  # type: ignore[arg-type]
        return
    price = resolve_price(tier("gpt-4.1-mini"))  # type: ignore[arg-type]
    assert 0 < price.cost(1000, 0) < price.cost(1000, 1000)  # genai-prices' catalogue, offline
    # prompt tokens served from OpenAI's cache cost less: they had been billed at the full input price
    assert 0 < price.cost(2000, 0, cached_prompt_tokens=1920) < price.cost(2000, 0)
    with pytest.raises(ConfigError, match=r"tier 'cloud': genai-prices has no price for openai/no-such-model-x"):
        resolve_price(tier("no-such-model-x"))  # type: ignore[arg-type]
    local = parse_config({"tiers": [{"model": "qwen2.5-coder-0.5b"}]}).tiers[0]
    assert resolve_price(local).cost(10**6, 10**6) == 0.0  # local tiers are free unless priced


@pytest.mark.parametrize("value", ["aB3dE5fG7hJ9kL1mN3pQ5rS7tV9wX1yZ", "fw_3ZxYq9abcDEF", "r8_Ab12cdEF34",
                                   "0a1b2c3d4e5f60718293a4b5c6d7e8f9"])
def test_a_key_shaped_like_a_variable_name_is_refused_too(value: str) -> None:
    """Keys of letters and digits alone (Mistral-, Together-, Fireworks-, Replicate-style) passed as a
    variable's name: the variable was unset, and the 401 printed the key in "set $<key>"."""
    with pytest.raises(ConfigError, match="capital letters") as e:
        parse_config({"tiers": [{"provider": "openai", "model": "m", "api_key_env": value}]})
    assert value not in str(e.value)


def test_api_key_env_written_as_a_substitution_is_refused_before_it_becomes_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`api_key_env = "${MISTRAL_API_KEY}"` was expanded into the key itself, read as a name and printed."""
    monkeypatch.setenv("MISTRAL_API_KEY", "KEYVALUE0123456789")
    f = tmp_path / "k.toml"
    f.write_text('[[tiers]]\nmodel = "m"\nprovider = "openai"\napi_key_env = "${MISTRAL_API_KEY}"\n')
    with pytest.raises(ConfigError, match=r"tiers\[0\]\.api_key_env takes the variable's name as it is") as e:
        load_config(f)
    assert "KEYVALUE" not in str(e.value)


@pytest.mark.parametrize("price", [{"input_per_mtok": 0.4}, {"output_per_mtok": 1.6},
                                   {"cached_input_per_mtok": 0.1}, {}])
def test_a_price_table_gives_both_sides(price: dict[str, float]) -> None:
    """A [tiers.price] replaces the catalogue's whole price: one that set only the input price costed every
    output token at $0 (only a cache price: the whole tier), and every saving measured against it was wrong."""
    with pytest.raises(ConfigError, match="give both input_per_mtok and output_per_mtok"):
        parse_config({"tiers": [{"provider": "openai", "model": "gpt-4.1-mini", "price": price}]})
    free_input = parse_config({"tiers": [{"provider": "openai", "model": "m",
                                          "price": {"input_per_mtok": 0, "output_per_mtok": 1.6}}]})
    assert free_input.tiers[0].price is not None and free_input.tiers[0].price.output_per_mtok == 1.6


def test_a_key_in_a_base_url_stays_out_of_the_configs_repr() -> None:
    cfg = parse_config({"tiers": [{"provider": "openai-compatible", "model": "m",
                                   "base_url": "https://me:pw@proxy.example/v1?api-key=sk-live-SECRET"}]})
    for shown in (repr(cfg), str(cfg.tiers[0]), repr(cfg.tiers[0])):
        assert "SECRET" not in shown and "pw@" not in shown and "https://proxy.example/v1" in shown
    assert cfg.tiers[0].base_url == "https://me:pw@proxy.example/v1?api-key=sk-live-SECRET"  # the value itself stays


def test_tiers_written_as_one_table_says_to_use_double_brackets(tmp_path: Path) -> None:
    f = tmp_path / "one.toml"
    f.write_text('[tiers]\nmodel = "qwen2.5-coder-0.5b"\n')
    with pytest.raises(ConfigError, match=r"write each tier as \[\[tiers\]\]"):
        load_config(f)


def test_every_toml_example_in_the_docs_is_a_valid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's configuration example gave a one-sided [tiers.price] after that was refused: a user
    who copied it got a broken config. Every ```toml block of the README and configs/README.md parses."""
    import re

    from edgecascade.config import expand_env, tomllib

    root = Path(__file__).resolve().parents[2]
    monkeypatch.delenv("EDGECASCADE_VLLM_MODEL", raising=False)
    monkeypatch.delenv("EDGECASCADE_VLLM_URL", raising=False)
    blocks = [b for doc in ("README.md", "configs/README.md")
              for b in re.findall(r"```toml\n(.*?)```", (root / doc).read_text(encoding="utf-8"), re.S)]
    assert len(blocks) >= 2
    for block in blocks:
        data = tomllib.loads(block)
        if "tiers" in data:
            data["tiers"] = expand_env(data["tiers"])
        assert parse_config(data).tiers


def test_a_path_with_a_folder_is_never_read_as_a_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mine/hybrid` (a typo for mine/hybrid.toml, a local-only cascade) loaded the shipped hybrid,
    which sends prompts to a cloud API and bills them; only a bare name is a shipped config."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "hybrid.toml").write_text('[[tiers]]\nmodel = "smollm2-135m"\n')
    monkeypatch.chdir(tmp_path)
    for given in ("mine/hybrid", str(tmp_path / "mine" / "hybrid"), "./hybrid", "~/nowhere-edgecascade/hybrid"):
        with pytest.raises(ConfigError, match="does not exist"):
            load_config(given)
        monkeypatch.setenv("EDGECASCADE_CONFIG", given)
        with pytest.raises(ConfigError, match=r"\$EDGECASCADE_CONFIG names .*which does not exist"):
            load_config()
        monkeypatch.delenv("EDGECASCADE_CONFIG")
    assert [t.provider for t in load_config("mine/hybrid.toml").tiers] == ["llamacpp"]
    assert load_config("hybrid").tiers[-1].provider == "openai"  # the bare name is the shipped one


def test_ollama_keep_alive_takes_a_duration_or_seconds() -> None:
    """Ollama reads seconds as a number too (-1: keep the model loaded); the config refused them."""
    def keep(v: object) -> object:
        tier = {"provider": "ollama", "model": "llama3.2:1b", "keep_alive": v}
        return parse_config({"tiers": [tier]}).tiers[0].keep_alive

    assert (keep("5m"), keep(300), keep(-1)) == ("5m", 300, -1)
    with pytest.raises(ConfigError, match="keep_alive is a duration"):
        keep(True)
    # a string Ollama cannot read as a duration failed at every query, as an upstream error
    assert (keep("1h30m"), keep("300s"), keep("1.5h"), keep("+5m")) == ("1h30m", "300s", "1.5h", "+5m")
    # a number written as text (as ${OLLAMA_KEEP_ALIVE} gives it) is sent as the number: Ollama refuses
    # "-1" as a string ("time: missing unit in duration"), at every query; surrounding spaces go
    assert (keep("-1"), keep(" 300 "), keep("2.5"), keep(" 5m")) == (-1, 300, 2.5, "5m")
    for bad in ("abc", "5 minutes", "m", ""):
        with pytest.raises(ConfigError, match="is not a duration Ollama reads"):
            keep(bad)


def test_an_ollama_host_that_is_no_http_address_is_refused_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """`base_url = "ftp://h"` built, and every query failed as "cannot reach Ollama"; OLLAMA_HOST of
    spaces was taken for a host ("cannot reach Ollama at : is `ollama serve` running at ?")."""
    from edgecascade.config import TierConfig
    from edgecascade.providers import build_provider

    with pytest.raises(ConfigError, match="is not an http\\(s\\) address"):
        build_provider(TierConfig(provider="ollama", model="llama3.2:1b", base_url="ftp://h:11434"))
    monkeypatch.setenv("OLLAMA_HOST", "   ")
    built = build_provider(TierConfig(provider="ollama", model="llama3.2:1b"))
    assert built.inner.host == "http://127.0.0.1:11434"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("where", "key", "value"), [
    ("cascade", "max_tokens", "true"), ("cascade", "temperature", "true"),
    ("cascade", "temperature", '"0.5"'), ("cascade", "seed", "true"), ("tiers", "top_logprobs", "true"),
    ("cascade", "run_examples", '"yes"'), ("cascade", "cross_check", "1"), ("tiers.accept", "quality_target", "true"),
    ("tiers.accept", "min_confidence", '"0.5"')])
def test_a_value_of_the_wrong_kind_is_refused_not_converted(tmp_path: Path, where: str, key: str, value: str) -> None:
    """pydantic's lax mode read `max_tokens = true` as 1, `quality_target = true` as 1.0 (every draft
    rejected) and `run_examples = "yes"` as true (code run on the strength of a string)."""
    head = {"tiers": '[[tiers]]\nmodel = "m.gguf"\n', "cascade": '[[tiers]]\nmodel = "m.gguf"\n[cascade]\n',
            "tiers.accept": '[[tiers]]\nmodel = "m.gguf"\n[tiers.accept]\nconfidence = "geo_mean_prob"\n'}[where]
    if key == "quality_target":
        head = head.replace('"geo_mean_prob"', '"calibrated"')
    p = write(tmp_path, f"{head}{key} = {value}\n")
    with pytest.raises(ConfigError, match=rf"{key}': Value error, must be (a number|true or false)"):
        load_config(p)


def test_whole_numbers_stay_numbers_and_a_byte_order_mark_is_no_key(tmp_path: Path) -> None:
    """A temperature of 0 is a number (TOML writes it as an integer); a config saved as "UTF-8 with BOM"
    by a Windows editor had failed as "Invalid statement (at line 1, column 1)"."""
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + b'[[tiers]]\nmodel = "m.gguf"\n[cascade]\ntemperature = 0\nrun_examples = true\n')
    cfg = load_config(p)
    assert cfg.cascade.temperature == 0.0 and cfg.cascade.run_examples is True
