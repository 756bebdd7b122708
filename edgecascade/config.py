"""Cascade configuration: pydantic models and the TOML loader.

A config is deliberately plain: an ordered ``[[tiers]]`` array, each naming a ``model`` and its
acceptance rule; everything else has a documented default. Unknown keys are errors (a typo in a
threshold must never be silently ignored), and every error names the key and the file.
"""

from __future__ import annotations

import os
import re
import sys
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import ConfigError
from .paths import shipped_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: The confidence scores an acceptance rule may use (see edgecascade.quality.features) and the checks.
ConfidenceName = Literal["geo_mean_prob", "p10_prob", "min_prob", "mean_margin_prob", "calibrated"]
CheckName = Literal["empty", "truncated", "repetition", "refusal", "arithmetic"]
CHECK_NAMES: tuple[CheckName, ...] = ("empty", "truncated", "repetition", "refusal", "arithmetic")


#: a duration as Ollama reads keep_alive (Go's time.ParseDuration, or a plain number of seconds)
_GO_DURATION = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
                          r"(?:(?:ns|us|µs|ms|s|m|h)(?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))*)?")
#: a number with no unit: Ollama takes it as seconds when it is sent as a number, and refuses it as a
#: string ("time: missing unit in duration")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


class _Strict(BaseModel):
    # a value is never repeated in a validation error: it may be a key written in the wrong place
    # inf and nan are refused: a temperature or a price of inf passed every bound and failed mid-query
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_conversion(cls, value: Any, info: ValidationInfo) -> Any:
        """A number or a switch is written as one: pydantic's lax mode had read `max_tokens = true` as 1,
        `quality_target = true` as 1.0 (every draft rejected) and `run_examples = "yes"` as true (code
        run from a string). Lists stay free to become tuples, and whole numbers floats."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None or isinstance(value, (dict, list)):
            return value
        kinds = {a for a in (typing.get_args(field.annotation) or (field.annotation,)) if a is not type(None)}
        if not kinds or not kinds <= {int, float, bool}:
            return value
        if bool in kinds and not isinstance(value, bool):
            raise ValueError("must be true or false")
        if bool not in kinds and (isinstance(value, (bool, str))):
            raise ValueError("must be a number (written without quotes), not " + ("true/false" if isinstance(
                value, bool) else "text"))
        return value


class AcceptRule(_Strict):
    """When is a tier's draft good enough to return?

    ``min_confidence`` is compared with the score named by ``confidence``; both come from a
    measurement (see configs/README.md). ``confidence = "calibrated"`` uses the model's calibration
    file (P(correct) from a fitted calibrator), and then ``quality_target`` may replace the raw
    number: "keep at least this share of the strongest tier's accuracy", resolved to the threshold
    the calibration chose for that target on its calibration split. With neither, only the checks
    decide. ``checks`` are the cheap validators that must pass.
    """

    confidence: ConfidenceName = "geo_mean_prob"
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    quality_target: float | None = Field(default=None, gt=0.0, le=1.0)
    #: calibration file; default: the model's shipped one beside its manifest (see engine.calibration_for)
    calibration: str | None = None
    checks: tuple[CheckName, ...] = CHECK_NAMES

    @model_validator(mode="after")
    def _one_threshold(self) -> AcceptRule:
        if self.min_confidence is not None and self.quality_target is not None:
            raise ValueError("set either min_confidence or quality_target, not both")
        if self.quality_target is not None and self.confidence != "calibrated":
            raise ValueError('quality_target needs confidence = "calibrated"')
        if self.calibration is not None and self.confidence != "calibrated":
            raise ValueError('calibration is read only with confidence = "calibrated"')
        return self


class Price(_Strict):
    """Price in dollars per million tokens. Local tiers cost 0 unless you say otherwise."""

    input_per_mtok: float = Field(default=0.0, ge=0.0)
    output_per_mtok: float = Field(default=0.0, ge=0.0)
    #: prompt tokens the backend served from its cache (None: the input price)
    cached_input_per_mtok: float | None = Field(default=None, ge=0.0)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        cached = min(max(cached_prompt_tokens, 0), prompt_tokens)
        cached_price = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return ((prompt_tokens - cached) * self.input_per_mtok + cached * cached_price
                + completion_tokens * self.output_per_mtok) / 1e6


ProviderName = Literal[
    "llamacpp", "openai-compatible", "vllm", "llamacpp-server", "openai", "groq", "together", "openrouter",
    "deepseek", "ollama", "anthropic",
]


class TimeoutConfig(_Strict):
    """Seconds: to connect, to wait for the next bytes, and for the whole call with its retries."""

    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=60.0, gt=0)
    total: float = Field(default=120.0, gt=0)


class RetryConfig(_Strict):
    """Calls in all (the first included) for retryable failures; backoff doubles, with jitter."""

    attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=8.0, ge=0)


class CooldownConfig(_Strict):
    """After ``failures`` failed calls in a row an endpoint is skipped for ``seconds``, then probed."""

    failures: int = Field(default=3, ge=1)
    seconds: float = Field(default=30.0, ge=0)


#: an API key variable's name: capitals, digits and _ (as every provider names its own). Lower case is
#: refused too, because many keys are letters and digits alone and would pass as a name: a key pasted
#: here was read as a variable's name, and the 401 that followed printed it in "set $<key>". This
#: narrows the hole, not closes it: a key of capitals and digits alone still reads as a name
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
#: how common API keys begin (OpenAI, Groq, Hugging Face, GitHub, Stripe-like, Slack), in lower case as
#: keys write them (HF_TOKEN is a variable's name, hf_... a token)
_KEY_PREFIXES = ("sk_", "gsk_", "hf_", "ghp_", "pk_", "xox")
_REMOTE_ONLY = ("base_url", "api_key_env", "timeout", "retry", "cooldown")
_LOCAL_ONLY = ("n_ctx", "n_threads", "n_gpu_layers")
_OPENAI_COMPAT = ("openai-compatible", "vllm", "llamacpp-server", "openai", "groq", "together", "openrouter",
                  "deepseek")


class TierConfig(_Strict):
    """One rung of the cascade."""

    model: str
    name: str | None = None
    provider: ProviderName = "llamacpp"
    accept: AcceptRule = AcceptRule()
    #: None: local and self-hosted tiers cost 0, cloud tiers are priced from genai-prices
    price: Price | None = None
    # remote tiers
    base_url: str | None = None
    #: the NAME of the environment variable holding the API key (keys never live in config files)
    api_key_env: str | None = None
    timeout: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    cooldown: CooldownConfig = CooldownConfig()
    # Ollama: how long the server keeps the model loaded: a duration ("5m") or seconds (300; -1: always)
    keep_alive: str | float | None = None
    #: ask a remote tier for token logprobs (default: what its preset says the backend supports)
    logprobs: bool | None = None
    # llama.cpp options (in-process tiers)
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    n_gpu_layers: int = 0
    top_logprobs: int = Field(default=5, ge=0, le=20)

    @property
    def display_name(self) -> str:
        return self.name or self.model

    def __repr_args__(self) -> Any:
        """As pydantic's, with ``base_url`` as it may be printed: a key in its query string (``?api-key=``,
        which some gateways need) or its userinfo would otherwise show in every repr and log of the config."""
        from .providers._common import safe_url

        for k, v in super().__repr_args__():
            yield k, (safe_url(v) if k == "base_url" and isinstance(v, str) else v)

    @field_validator("model")
    @classmethod
    def _model_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model must name a registry model or a path to a .gguf file")
        return v

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _a_duration(cls, v: Any) -> Any:
        if isinstance(v, bool):  # true would read as 1 second
            raise ValueError('keep_alive is a duration ("5m") or a number of seconds (300; -1 keeps the model '
                             "loaded), not true or false")
        if isinstance(v, str):
            v = v.strip()
            if _PLAIN_NUMBER.fullmatch(v):  # "-1" (as ${OLLAMA_KEEP_ALIVE} gives it): sent as the number
                return float(v) if "." in v else int(v)
            if not _GO_DURATION.fullmatch(v):  # Ollama refused it at every query
                raise ValueError(f'keep_alive {v!r} is not a duration Ollama reads: write it as "5m", "1h30m", "300s" '
                                 "or a number of seconds (-1 keeps the model loaded)")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _a_variable_name(cls, v: str | None) -> str | None:
        # the message never repeats the value: it may be the key itself, written in the wrong place
        if v is not None and (not _ENV_NAME.fullmatch(v) or v.startswith(_KEY_PREFIXES)):
            raise ValueError("api_key_env takes the NAME of an environment variable (capital letters, digits and _, "
                             "e.g. OPENAI_API_KEY), never the key itself: put the key in that variable")
        return v

    @model_validator(mode="after")
    def _keys_that_apply(self) -> TierConfig:
        """A key that the tier's kind of provider never reads is an error, not a silent no-op (a remote
        tier that forgot its ``provider`` would otherwise be looked for as a local file)."""
        # given and not the default: a dumped config (every field set, most to their defaults) loads again
        given = {k for k in self.model_fields_set
                 if getattr(self, k) != type(self).model_fields[k].get_default(call_default_factory=True)}
        if self.provider == "llamacpp":
            wrong = [k for k in (*_REMOTE_ONLY, "keep_alive", "logprobs") if k in given]
            fix = ('they are for remote tiers, and this tier runs in-process (provider "llamacpp", the default): '
                   'for a model served elsewhere set provider (e.g. "vllm", "openai-compatible", "ollama")')
        else:
            wrong = [k for k in _LOCAL_ONLY if k in given]
            wrong += [k for k, only in (("keep_alive", ("ollama",)), ("logprobs", _OPENAI_COMPAT),
                                        ("top_logprobs", (*_OPENAI_COMPAT, "ollama")))  # Anthropic sends none
                      if k in given and self.provider not in only]
            fix = f'provider "{self.provider}" does not read them'
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: {fix}; or remove them")
        if self.price is not None:
            unset = [k for k in ("input_per_mtok", "output_per_mtok") if k not in self.price.model_fields_set]
            if unset:
                # a price replaces the catalogue's whole: a side left out was costed at $0, and with it
                # every saving measured against this tier
                raise ValueError(f"price sets no {' or '.join(unset)}: a [tiers.price] replaces the tier's whole "
                                 "price, so give both input_per_mtok and output_per_mtok (0 for a side that is "
                                 "free), or remove the table to use the default (cloud tiers: the genai-prices "
                                 "catalogue; local ones: free)")
        if (self.accept.confidence in ("mean_margin_prob", "calibrated") and self.top_logprobs < 2
                and self.provider != "anthropic"):
            # a calibrator reads each token's margin over its runner-up too: without one it reads a coin flip
            raise ValueError(f"accept.confidence = \"{self.accept.confidence}\" compares each token with its "
                             f"runner-up, and top_logprobs = {self.top_logprobs} asks for fewer than 2 alternatives: "
                             "set top_logprobs = 2 or more (the shipped calibrations were fitted with 5), or choose "
                             "another confidence")
        return self


#: how much of an answer's end the repetition check reads: loops show there, and it bounds the cost
REPETITION_TAIL_CHARS = 2000


class RepetitionCheck(_Strict):
    """A draft loops when a chunk of at least ``min_period`` characters repeats ``min_repeats``
    times back to back at its end (small models that lose the thread do exactly this)."""

    min_period: int = Field(default=8, ge=1)
    min_repeats: int = Field(default=4, ge=2)

    @model_validator(mode="after")
    def _can_fire(self) -> RepetitionCheck:
        # a loop longer than the end the check reads is never seen: the check would be off without a word
        if self.min_period * self.min_repeats > REPETITION_TAIL_CHARS:
            raise ValueError(f"min_period x min_repeats is {self.min_period * self.min_repeats}, but the check reads "
                             f"only the last {REPETITION_TAIL_CHARS} characters of an answer: it could never fire; "
                             f"keep the product at {REPETITION_TAIL_CHARS} or less")
        return self


class CascadeSettings(_Strict):
    """Defaults for every request; each can be overridden per call."""

    max_tokens: int = Field(default=384, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)  # OpenAI's range; llama.cpp's is wider, to no use
    seed: int | None = None
    system_prompt: str | None = None
    #: what to return when no tier's draft met its rule: the last tier's answer (flagged
    #: accepted=false), or raise
    on_all_rejected: Literal["last", "error"] = "last"
    #: allow calibrations that run the examples a coding prompt states against the draft's code
    #: (in a separate, time-limited process). Off by default: it executes model-written code.
    run_examples: bool = False
    #: allow calibrations that cross-check a math draft: the drafting model writes the problem as a
    #: Python program (one more, short generation), which runs in a separate, time-limited process,
    #: and the calibration learns whether its result agrees. Off by default: it costs a call and
    #: executes model-written code.
    cross_check: bool = False
    repetition: RepetitionCheck = RepetitionCheck()


class CascadeConfig(_Strict):
    cascade: CascadeSettings = CascadeSettings()
    tiers: tuple[TierConfig, ...]

    @model_validator(mode="after")
    def _check_tiers(self) -> CascadeConfig:
        if not self.tiers:
            raise ValueError("a cascade needs at least one [[tiers]] entry")
        names = [t.display_name for t in self.tiers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tier names must be unique; give these a distinct 'name': {dupes}")
        return self


def configs_dir() -> Path:
    """Where the shipped configs live: the checkout's ``configs/``, or the copy inside an installed
    package (see :mod:`edgecascade.paths`)."""
    return shipped_dir("configs")


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """A path, or a shipped config's short name (``tiny`` -> configs/tiny.toml), or the default
    (``$EDGECASCADE_CONFIG``, itself a path or a short name). Only a bare name is a short name:
    ``mine/hybrid``, a typo for a local-only ``mine/hybrid.toml``, had loaded the shipped hybrid,
    which sends prompts to a cloud API."""
    if path is None:
        env = os.environ.get("EDGECASCADE_CONFIG")
        if not env:
            return configs_dir() / "default.toml"  # the shipped offline cascade
        path = env
    given = os.fspath(path)
    p = Path(given).expanduser()
    bare = not any(sep in given for sep in (os.sep, os.altsep, "~") if sep)
    if bare and not p.exists() and p.suffix == "" and (configs_dir() / f"{p.name}.toml").exists():
        return configs_dir() / f"{p.name}.toml"
    return p


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, source: str = "<config>") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``value``, so one shipped file
    works on every machine (server addresses come from the environment). A config expands its
    ``[[tiers]]`` only (see :func:`load_config`): a ``[cascade]`` system prompt is text, and its
    ``${name}`` (a template literal) is neither filled from the environment nor an error."""
    if isinstance(value, dict):
        return {k: expand_env(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, source) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if default is not None and "${" in default:  # the default had ended at the inner one's "}"
            raise ConfigError(f"{source}: the default of ${{{name}:-...}} holds another ${{...}}, which is not "
                              f"read: give ${{{name}}} a plain default (or set {name})")
        got = os.environ.get(name)
        if got and got.strip():  # blank, as unset: "  " had become a base_url or a model name of spaces
            return got.strip()  # a .env file's CR or a stray space is no part of an address or a name
        if default is not None:
            return default
        state = "is set but blank" if name in os.environ else "is not set"
        raise ConfigError(f"{source} uses ${{{name}}}, which {state}: export {name}=... or give a default "
                          f"with ${{{name}:-value}}")

    return _ENV.sub(sub, value)


def _format_loc(loc: tuple[Any, ...]) -> str:
    """('tiers', 0, 'accept', 'min_conf') -> 'tiers[0].accept.min_conf'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def parse_config(data: dict[str, Any], source: str = "<config>") -> CascadeConfig:
    try:
        return CascadeConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = _format_loc(tuple(err["loc"]))
            if err["type"] == "extra_forbidden" and where.rsplit(".", 1)[-1] in ("api_key", "key", "token"):
                problems.append(f"'{where}': API keys never live in config files: set api_key_env to the NAME "
                                "of the environment variable that holds the key")
            elif err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{where}'")
            elif err["type"] == "missing":
                problems.append(f"missing required key '{where}'")
            elif where == "tiers" and isinstance(err.get("input"), dict):
                problems.append("'tiers' is one table: write each tier as [[tiers]] (two brackets: a list of "
                                "tables, cheapest tier first), not [tiers]")
            else:
                problems.append(f"'{where}': {err['msg']}")
        raise ConfigError(
            f"invalid config {source}:\n  - " + "\n  - ".join(problems)
            + f"\nSee {configs_dir() / 'README.md'} for every key and its default."
        ) from None


def load_config(path: str | os.PathLike[str] | None = None) -> CascadeConfig:
    p = resolve_config_path(path)
    if p.is_dir():
        raise ConfigError(f"config {p} is a folder: pass --config with a path to a .toml file in it, e.g. "
                          f"{p / 'cascade.toml'}")
    if not p.is_file() and path is None and os.environ.get("EDGECASCADE_CONFIG"):
        raise ConfigError(f"$EDGECASCADE_CONFIG names {p}, which does not exist: set it to a .toml file or a shipped "
                          f"name ({', '.join(sorted(c.stem for c in configs_dir().glob('*.toml')))}), or unset it")
    if not p.is_file():
        raise ConfigError(
            f"config file {p} does not exist: pass --config with a path to a .toml file, "
            f"or one of the shipped names ({', '.join(sorted(c.stem for c in configs_dir().glob('*.toml')))})"
        )
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))  # a Windows editor's byte-order mark is no key
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {p} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8 "
                          "TOML") from None
    except OSError as e:  # unreadable (permissions, a vanished network share): a ConfigError all the same
        raise ConfigError(f"config file {p} cannot be read ({e.strerror or e}): check its permissions") from None
    if isinstance(data.get("tiers"), list):
        for i, t in enumerate(data["tiers"]):
            if isinstance(t, dict) and isinstance(t.get("api_key_env"), str) and "${" in t["api_key_env"]:
                # expanded, it would be the key itself, read as a variable's name and printed in errors
                raise ConfigError(f"invalid config {p}: tiers[{i}].api_key_env takes the variable's name as it is "
                                  "(api_key_env = \"OPENAI_API_KEY\"), not ${...}: edgecascade reads the variable "
                                  "itself, and never writes its value anywhere")
        data["tiers"] = expand_env(data["tiers"], str(p))
    return _from_folder(parse_config(data, str(p)), p.resolve().parent)


def _from_folder(cfg: CascadeConfig, folder: Path) -> CascadeConfig:
    """Relative file paths in a config file (a local tier's ``.gguf`` model, a calibration) are read
    from the file's own folder, so a config works from whatever directory a command runs in."""
    from .models import looks_like_path

    def anchored(path: str) -> str:
        return path if path.startswith("~") or Path(path).is_absolute() else str(folder / path)

    tiers = []
    for t in cfg.tiers:
        update: dict[str, Any] = {}
        if t.provider == "llamacpp" and looks_like_path(t.model) and anchored(t.model) != t.model:
            update["model"] = anchored(t.model)
            update["name"] = t.display_name  # the tier keeps the name it was written with
        if t.accept.calibration:
            update["accept"] = t.accept.model_copy(update={"calibration": anchored(t.accept.calibration)})
        tiers.append(t.model_copy(update=update) if update else t)
    return cfg.model_copy(update={"tiers": tuple(tiers)})
