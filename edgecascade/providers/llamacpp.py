"""In-process GGUF models through llama-cpp-python, with cheap per-token logprobs.

Why not llama-cpp-python's own ``logprobs=True``: it needs ``logits_all=True`` and sorts the whole
vocabulary in Python for every token (`edgecascade bench overhead`: 0.11x plain speed on
Qwen2.5-Coder-0.5B, 0.17x on SmolLM2). Instead a logits
processor copies each step's raw logits and numpy computes the log-softmax normaliser and the
top-k alternatives (an O(vocab) pass in C); a thin ``generate`` override sees which token was
actually sampled, so the chosen token's logprob is exact even when sampling and even for the
last token (which a logits processor alone never sees). Values equal the built-in ones to float
tolerance (tests/integration/test_llamacpp.py checks it).

Every generation starts from a clean state (``reset()``): llama-cpp-python would otherwise reuse
the KV cache of a shared prompt prefix, whose differently batched evaluation changes the last
float bits and can flip greedy near-ties, so the same question could get a different answer
depending on what was asked before. Reproducible answers and logprobs are worth re-reading the
prompt (a fraction of the decode time for chat-sized prompts).

Each loaded model has one lock; generation runs in a worker thread so the event loop stays free.
Models load lazily, on the first request that reaches them, and are shared by every provider in
the process that asks for the same file with the same settings.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ContextLengthError, ModelLoadError, UpstreamError
from ..types import Completion, Delta, FinishReason, Request, Timings, TokenLogprobs, Usage
from ._common import DeltaStream, before_stop, stop_prefix
from .base import Capabilities

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "llama-cpp-python is not installed: run `python3 scripts/bootstrap.py setup`, or "
    "`CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'edgecascade[local]'`"
)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelLoadError(INSTALL_HINT) from e
    return llama_cpp


_SAMPLE_STRIDE = 32  # top-k pre-selection sample: 1 logit in 32 (see LogprobCapture.__call__)


class LogprobCapture:
    """Logits processor + token hook that records each generated token's logprob and top-k."""

    def __init__(self, top_k: int):
        self.top_k = top_k
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.top_ids: list[np.ndarray] = []
        self.top_lps: list[np.ndarray] = []
        self.first_token_at: float | None = None
        self._scores: np.ndarray | None = None
        self._buf: np.ndarray | None = None
        self._lse = 0.0

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        s = np.array(scores, dtype=np.float32, copy=True)  # llama-cpp-python reuses this buffer
        m = float(s.max())
        if self._buf is None or self._buf.shape != s.shape:
            self._buf = np.empty_like(s)
        np.subtract(s, m, out=self._buf)
        np.exp(self._buf, out=self._buf)
        lse = m + float(np.log(self._buf.sum(dtype=np.float64)))
        self._scores, self._lse = s, lse
        k = self.top_k
        if k:
            # A full-vocabulary argpartition costs ~1 ms on Qwen's 152k vocabulary. The k-th largest
            # of a strided sample is <= the true k-th largest, so every logit at or above it is a
            # candidate and there are always at least k of them: partition only those (exact).
            if s.shape[0] > 64 * k:
                sample = s[::_SAMPLE_STRIDE]
                floor = np.partition(sample, -k)[-k]
                near = np.flatnonzero(s >= floor)
                idx = near[np.argpartition(s[near], -k)[-k:]]
            else:
                idx = np.argpartition(s, -k)[-k:]
            idx = idx[np.argsort(-s[idx], kind="stable")]
            self.top_ids.append(idx)
            self.top_lps.append(s[idx].astype(np.float64) - lse)
        return scores

    def on_token(self, token: int) -> None:
        """Called with each sampled token, right after the processor saw its step's logits."""
        assert self._scores is not None
        self.ids.append(int(token))
        self.logprobs.append(float(self._scores[token]) - self._lse)


def _detokenize_whole(model: Any, llama_cpp: Any, tokens: Sequence[int], special: bool = False) -> bytes:
    """What ``LlamaModel.detokenize`` returns, with every piece kept whole: llama-cpp-python 0.3 gives
    llama.cpp a 32-byte buffer per token and reads its "needs N bytes" (-N) as an empty piece, so a
    token longer than that (a run of 33 or more spaces of indentation, a long comment rule: Qwen2.5's
    vocabulary has 240) vanished from the answer (abetlen/llama-cpp-python#2362)."""
    import ctypes

    out = bytearray()
    size = 32
    buffer = (ctypes.c_char * size)()
    for token in tokens:
        n = llama_cpp.llama_token_to_piece(model.vocab, llama_cpp.llama_token(token), buffer, size, 0, special)
        if n < 0:  # longer than the buffer: ask again with room for it
            whole = (ctypes.c_char * -n)()
            n = llama_cpp.llama_token_to_piece(model.vocab, llama_cpp.llama_token(token), whole, -n, 0, special)
            out += whole.raw[:max(n, 0)]
        else:
            out += buffer.raw[:n]
    # as upstream: a leading space after a beginning-of-sentence token is the tokenizer's, not the text's
    if len(tokens) > 0 and tokens[0] == model.token_bos() and out[:1] == b" ":
        return bytes(out[1:])
    return bytes(out)


def _capturing_llama_class(llama_cpp: Any) -> type:
    class CapturingLlama(llama_cpp.Llama):  # type: ignore[misc, name-defined]
        """Llama whose ``generate`` reports every sampled token to the active capture."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            model = self._model  # what the answer, the stream and the logprob tokens are all spelt by
            model.detokenize = lambda tokens, special=False: _detokenize_whole(model, llama_cpp, tokens, special)

        _capture: LogprobCapture | None = None
        #: set when the request that is generating was cancelled: generation ends at the next token
        _stop: threading.Event | None = None
        #: the request's max_tokens; ``_capped`` says the answer was ended at it here (see generate)
        _limit: int | None = None
        _capped: bool = False
        #: where a stream records the tokens it was given (see LlamaCppProvider.stream), else None
        _generated: list[int] | None = None

        #: the prompt's length in tokens, as the last generation was given it (a stream's usage)
        _prompt_n: int = 0

        def generate(self, tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
            """llama.cpp's tokens, reported to the capture, and never more than the request's limit.

            llama-cpp-python skips its max_tokens check while the text ends inside a character
            (SmolLM2 writes a food emoji in three tokens): the answer ran one to three tokens
            past max_tokens (a HumanEval draft traced at 385 of 384), and where the limit was the
            context's last free slot, past the context, where llama.cpp fails and the answer is lost.
            Here the token after the limit is handed on as end-of-generation instead: the answer
            ends at the limit (the unfinished character dropped) and reads as cut off."""
            self._capped = False
            self._prompt_n = len(tokens)
            limit = self._n_ctx - len(tokens)
            if self._limit is not None and self._limit > 0:
                limit = min(limit, self._limit)
            for n, token in enumerate(super().generate(tokens, *args, **kwargs)):
                if self._stop is not None and self._stop.is_set():
                    return
                if n >= limit:  # n tokens given already
                    self._capped = True
                    yield self.token_eos()
                    return
                cap = self._capture
                if cap is not None:
                    cap.on_token(token)
                if self._generated is not None:
                    self._generated.append(int(token))
                yield token

        def eval(self, tokens: Sequence[int]) -> None:
            """Read a prompt one batch at a time, and stop between batches once its request is cancelled.

            llama.cpp reads a whole prompt in one call, with no way out: a cancelled request with a
            long prompt held the model (and every request queued behind it) until the last token was
            read. The batches are exactly llama.cpp's own (``n_batch`` tokens each, in the same
            order), so the numbers are bit for bit the same: smaller steps would react sooner but
            change the float bits, and with them greedy near-ties, and so the answers traced and
            calibrated on. A prompt of one batch or less (512 tokens by default) is read whole."""
            stop, step = self._stop, self.n_batch
            if stop is None or len(tokens) <= step:
                return super().eval(tokens)  # type: ignore[no-any-return]
            for i in range(0, len(tokens), step):
                if stop.is_set():
                    raise _Abandoned  # the rest of the prompt is left unread: nobody waits for this answer
                super().eval(tokens[i:i + step])
            return None

    return CapturingLlama


#: llama-cpp-python chat formats that leave system messages out of the prompt, raising nothing
#: (Mistral v0.2 and Mixtral's template, recognised as mistral-instruct)
_DROPS_SYSTEM = frozenset({"mistral-instruct"})


def _is_template_error(e: BaseException) -> bool:
    """A chat template that fails to render (jinja2's errors, which llama-cpp-python also raises as
    ValueError for a role it refuses)."""
    said = str(e).lower()
    # llama-cpp-python raises a template's raise_exception() as a plain ValueError: Gemma's "System
    # role not supported", Mistral's "Conversation roles must alternate user/assistant/..."
    return (type(e).__module__.startswith("jinja2") or (isinstance(e, ValueError) and "template" in said)
            or ("role" in said and "support" in said) or "roles must alternate" in said)


def _merged_system(request: Request) -> list[dict[str, str]]:
    """The messages with every system message's text put before the first user turn's."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    out, merged = [], False
    for m in request.messages:
        if m.role == "system":
            continue
        if m.role == "user" and not merged and system:
            out.append({"role": "user", "content": f"{system}\n\n{m.content}"})
            merged = True
        else:
            out.append(m.to_dict())
    return out


class _Abandoned(Exception):
    """A request cancelled before its turn on the model came (nobody waits for its answer)."""


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock
    load_s: float


_MODELS: dict[tuple[Any, ...], _Loaded] = {}
# one worker thread per model file: requests queue here for their turn, rather than each holding one
# of the event loop's few default threads while it waits (which remote tiers' DNS lookups need too)
_EXECUTORS: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
_MODELS_LOCK = threading.Lock()  # guards the two dicts, held only for a lookup
_LOAD_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}


def _load(path: Path, n_ctx: int, n_threads: int | None, n_gpu_layers: int,
          chat_format: str | None) -> tuple[_Loaded, float]:
    """The process-wide loaded model for these settings; returns (model, seconds spent loading now).

    Each model loads under its own lock, so loading the 1.5B model never blocks queries to the
    already loaded 0.5B one.
    """
    # llama.cpp rounds the context up to a multiple of 256, and llama-cpp-python sizes its token array
    # by the n_ctx asked for: a prompt between the two failed with a numpy broadcast error. Asked
    # rounded, both are one size
    n_ctx = -(-n_ctx // 256) * 256
    key = (str(path), n_ctx, n_threads, n_gpu_layers, chat_format)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded, 0.0
        load_lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with load_lock:
        with _MODELS_LOCK:
            loaded = _MODELS.get(key)
        if loaded is not None:  # another thread loaded it while we waited
            return loaded, 0.0
        llama_cpp = _import_llama_cpp()
        if chat_format is not None:  # a name llama-cpp-python does not know had failed at the first request
            from llama_cpp.llama_chat_format import LlamaChatCompletionHandlerRegistry

            known = LlamaChatCompletionHandlerRegistry()._chat_handlers
            if chat_format not in known:
                raise ModelLoadError(f"chat_format {chat_format!r} for {path} is not one llama-cpp-python knows: "
                                     f"use one of {', '.join(sorted(known))}, or leave it out to use the file's "
                                     "own chat template")
        cls = _capturing_llama_class(llama_cpp)
        t0 = time.perf_counter()
        try:
            llama = cls(
                # the prompt is read with the tier's threads too (llama-cpp-python's default is every CPU)
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                n_gpu_layers=n_gpu_layers,
                chat_format=chat_format, logits_all=False, verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelLoadError(_load_failure(path, n_ctx, e)) from None
        except Exception as e:  # noqa: BLE001 - jinja2 compiles the file's chat template while loading
            raise ModelLoadError(f"llama.cpp could not load {path}: {type(e).__name__}: {e}. If that is the file's "
                                 "chat template, the file is damaged or was converted with it broken: pull the model "
                                 "again, or set chat_format (e.g. \"chatml\") in its manifest") from None
        loaded = _Loaded(llama, threading.Lock(), time.perf_counter() - t0)
        with _MODELS_LOCK:
            _MODELS[key] = loaded
        return loaded, loaded.load_s


def _load_failure(path: Path, n_ctx: int, e: BaseException) -> str:
    """What a failed load means: llama-cpp-python raises the same few types for a file it cannot read,
    a context it cannot allocate and a path that is not there."""
    said = str(e)
    if "llama_context" in said or ("context" in said.lower() and "create" in said.lower()):
        return (f"llama.cpp loaded {path} but could not allocate its context of n_ctx={n_ctx} tokens ({said}): "
                "lower n_ctx for this tier, or free memory")
    if path.is_dir():
        return f"llama.cpp could not load {path}: it is a folder: name the .gguf file in it ({said})"
    if not path.is_file():
        return f"llama.cpp could not load {path}: there is no file there ({said})"
    if not os.access(path, os.R_OK):
        return f"llama.cpp could not load {path}: this user may not read it ({said}): check its permissions"
    return (f"llama.cpp could not load {path}: {said}. The file may be corrupt or from a newer GGUF version: a "
            "registry model's file is checked by `edgecascade models verify NAME` and fetched again by "
            "`edgecascade models pull NAME --force`; a file of your own, check it loads in llama.cpp itself")


def unload_all() -> None:
    """Close every loaded model now, each once its generation in progress ends. For the end of the
    process (and scripts between runs): a request already past its model lookup would find it
    closed. At exit no generation runs: each model's worker thread is joined before this is called."""
    with _MODELS_LOCK:  # held for the lookup only, not while a generation ends: lookups must not wait
        models = list(_MODELS.values())
        _MODELS.clear()
    for loaded in models:
        with loaded.lock, contextlib.suppress(Exception):
            loaded.llama.close()


# Free models before the interpreter tears modules down: llama-cpp-python's finalizers otherwise run
# after its C bindings are gone and print "TypeError: 'NoneType' object is not callable" at exit.
atexit.register(unload_all)


def _ends_in_eog(llama: Any, generated: list[int]) -> bool:
    """Whether the last generated token ends generation (an end-of-turn token): llama-cpp-python does not
    count it in an answer's usage, so a stream's count leaves it out too."""
    if not generated:
        return False
    try:
        return bool(_import_llama_cpp().llama_cpp.llama_vocab_is_eog(llama._model.vocab, int(generated[-1])))
    except Exception:  # noqa: BLE001 - another llama-cpp-python: its end-of-sequence token at least
        return int(generated[-1]) == int(llama.token_eos())


class _Spelling:
    """What a stream's generated tokens spell so far: each token's bytes are read once (llama.cpp
    spells a run of tokens as the run of their pieces), the text decoded from all of them (a byte
    that begins no character dropped, and the unfinished character at the end)."""

    def __init__(self, llama: Any, generated: list[int]) -> None:
        self.llama, self.generated, self.bytes, self.read = llama, generated, bytearray(), 0

    def text(self, stops: Sequence[str] | None) -> tuple[str, bool]:
        """The text up to the earliest stop string, and whether one was there."""
        while self.read < len(self.generated):
            self.bytes += bytes(self.llama.detokenize([int(self.generated[self.read])]))
            self.read += 1
        text = self.bytes.decode("utf-8", errors="ignore")
        return before_stop(text, stops) if stops else (text, False)


def _covering(lp: TokenLogprobs, text: str) -> TokenLogprobs:
    """The logprobs of the tokens that make up ``text``: a stop sequence's tokens were generated
    (``usage`` counts them: they cost the time) but are cut from the answer, and features of the
    answer must not see them."""
    # characters of the answer spelled once the first i tokens are joined (leading whitespace aside):
    # the shortest prefix that spells all of them covers the answer; one pass, no string building
    joined = "".join(lp.tokens)
    lead = len(joined) - len(joined.lstrip())
    spelled = np.maximum(np.cumsum([0] + [len(t) for t in lp.tokens]) - lead, 0)
    n = min(int(np.searchsorted(spelled, len(text.lstrip()))), len(lp.tokens))
    return TokenLogprobs(tokens=lp.tokens[:n], logprobs=lp.logprobs[:n], top_tokens=lp.top_tokens[:n],
                         top_logprobs=lp.top_logprobs[:n])


_EDGE = 1 << 20  # bytes read from each end of a model file for its identity


def file_identity(path: Path) -> str:
    """What tells one model file from another without reading it all (a GGUF is gigabytes): its name,
    its size, and a hash of its first and last MiB (the header with its metadata and vocabulary, and
    the last tensors). Name and size alone matched a file re-quantized the same way, or a fine-tune,
    copied over the old one: cached results would have followed the wrong weights."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            h = hashlib.sha256(f.read(_EDGE))
            if size > _EDGE:
                f.seek(max(_EDGE, size - _EDGE))
                h.update(f.read(_EDGE))
    except OSError:  # not there (yet): loading it will say so
        return f"{path.name}:0"
    return f"{path.name}:{size}:{h.hexdigest()[:12]}"


@dataclass
class LlamaCppProvider:
    """A GGUF model run in this process.

    ``n_ctx`` is the context window allocated (capped by the model's own ``context_length``);
    ``top_logprobs`` alternatives are captured per token (0 to skip them).
    """

    path: Path
    model: str = ""
    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int = 0
    top_logprobs: int = 5
    chat_format: str | None = None
    context_length: int | None = None
    #: what identifies the weights (a registry model's sha256), so cached results follow the file
    identity: str = ""
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(logprobs=True, streaming=True, local=True)
    )
    _said_full: bool = field(default=False, init=False, repr=False, compare=False)
    #: the model's chat template refused a system message: it goes into the first user turn instead
    _merge_system: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.model:
            self.model = self.path.stem
        if not self.identity:
            self.identity = file_identity(self.path)
        if self.context_length:
            self.n_ctx = min(self.n_ctx, self.context_length)
        if self.n_threads is None:
            self.n_threads = max(1, min(os.cpu_count() or 1, 8))

    def _loaded(self) -> tuple[_Loaded, float]:
        loaded, load_s = _load(self.path, self.n_ctx, self.n_threads, self.n_gpu_layers, self.chat_format)
        if getattr(loaded.llama, "chat_format", None) in _DROPS_SYSTEM:
            self._merge_system = True  # the formatter would drop the system text without a word
        return loaded, load_s

    def load(self) -> float:
        """Load the model now (otherwise the first request does); returns the seconds it took."""
        return self._loaded()[1]

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with _MODELS_LOCK:
            ex = _EXECUTORS.get(str(self.path))
            if ex is None:
                ex = _EXECUTORS[str(self.path)] = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"llama-{self.model}")
            return ex

    async def complete(self, request: Request) -> Completion:
        """Generate on the model's own worker thread. Cancelled (a deadline, Ctrl-C), the generation
        stops at its next token (a long prompt at the end of the batch being read), or before it
        starts when still queued, and frees the model."""
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), self._complete_blocking, request, stop)
        except asyncio.CancelledError:
            stop.set()
            raise

    def _kwargs(self, request: Request) -> dict[str, Any]:
        seed = request.seed
        if seed is None and request.temperature > 0:
            # llama-cpp-python would seed every process alike: sampling without a seed must differ per call
            seed = random.randrange(2**31)
        return dict(
            messages=_merged_system(request) if self._merge_system else [m.to_dict() for m in request.messages],
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=request.stop or None,
            seed=seed,
        )

    def _refuses_system(self, request: Request, e: BaseException) -> bool:
        """Whether ``e`` is the chat template refusing a system role (Gemma's do, and Mistral's, which
        want roles to alternate from a user turn): the request is then asked again with the system
        text in the first user turn, and if that is answered, from now on for this provider."""
        if self._merge_system or not any(m.role == "system" for m in request.messages):
            return False
        said = str(e).lower()
        if "system" not in said and "roles must alternate" not in said:  # Gemma's; Mistral's alternation rule
            return False
        self._merge_system = True
        return True

    def _complete_blocking(self, request: Request, stop: threading.Event | None = None) -> Completion:
        if stop is not None and stop.is_set():
            raise _Abandoned  # cancelled while queued: nobody waits for this answer
        loaded, load_s = self._loaded()
        if stop is not None and stop.is_set():
            raise _Abandoned  # cancelled while the model loaded: the model stays loaded, the prompt unread
        llama_cpp = _import_llama_cpp()
        cap = LogprobCapture(self.top_logprobs)
        with loaded.lock:
            # timed from here: waiting for another request's turn on this model is not this answer's time
            t_gen = time.perf_counter()
            t0 = t_gen - (load_s if load_s else 0.0)
            llama = loaded.llama
            llama.reset()
            llama._capture, llama._stop, llama._limit = cap, stop, request.max_tokens
            try:
                out = self._answering(request, llama, lambda: llama.create_chat_completion(
                    **self._kwargs(request), logits_processor=llama_cpp.LogitsProcessorList([cap])))
            except Exception as e:
                mapped = self._provider_error(e)
                if mapped is None:
                    raise
                raise mapped from None
            finally:
                llama._capture, llama._stop, llama._limit = None, None, None
            capped = llama._capped
            t_end = time.perf_counter()
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            n_out = int(usage.get("completion_tokens", len(cap.ids)))
            n_ctx = int(llama.n_ctx())  # llama.cpp may round the n_ctx asked for up
            logprobs = self._logprobs(llama, cap, n_out)
        finish = "length" if capped else (choice.get("finish_reason") or "stop")
        text = choice["message"].get("content") or ""
        if request.stop:
            text, cut = before_stop(text, request.stop)
            finish = "stop" if cut else finish
        cancelled = stop is not None and stop.is_set()  # stopped on purpose: short of max_tokens, not full
        if finish == "length" and request.max_tokens and n_out < request.max_tokens and not self._said_full \
                and not cancelled:
            # llama.cpp cuts max_tokens to the room the prompt leaves without a word: the answer reads
            # "cut off" although the limit asked for was not reached
            self._said_full = True  # once per provider: every long prompt would say it again
            log.warning("%s filled its context of %d tokens after %d answer tokens, short of max_tokens=%d: "
                        "raise n_ctx for this tier (now %d) or shorten the prompt", self.model, n_ctx, n_out,
                        request.max_tokens, self.n_ctx)
        if request.stop and finish != "length":
            logprobs = _covering(logprobs, text)
        return Completion(
            text=text,
            model=self.model,
            finish_reason="length" if finish == "length" else "stop",
            usage=Usage(int(usage.get("prompt_tokens", 0)), n_out),
            timings=Timings(
                total_s=t_end - t0,
                first_token_s=(cap.first_token_at - t_gen) if cap.first_token_at else None,
                load_s=load_s,
            ),
            logprobs=logprobs,
        )

    def _answering(self, request: Request, llama: Any, ask: Callable[[], Any]) -> Any:
        """``ask()``, asked once more with the system text in the first user turn when the model's chat
        template refuses a system role (it fails while formatting, before any token is read)."""
        try:
            return ask()
        except Exception as e:
            if not _is_template_error(e) or not self._refuses_system(request, e):
                raise
            refusal = e
        llama.reset()
        try:
            out = ask()
        except BaseException:
            self._merge_system = False  # refused merged too: the system role was not the trouble
            raise
        log.warning("%s's chat template refuses a system message (%s): its text goes into the first user turn",
                    self.model, refusal)
        return out

    def _provider_error(self, e: Exception) -> Exception | None:
        """The ProviderError that ``e``, raised by llama.cpp while answering, stands for (one mapping
        for complete and stream); None for what is not llama.cpp's (a cancel, a bug of ours)."""
        if isinstance(e, ValueError):
            return self._map_value_error(e)
        if isinstance(e, (RuntimeError, KeyError, IndexError, TypeError)):  # decode failures and the like
            return UpstreamError(f"llama.cpp failed on {self.model}: {type(e).__name__}: {e}")
        if _is_template_error(e):
            return UpstreamError(f"{self.model}'s chat template cannot format these messages: {e}")
        return None

    def _map_value_error(self, e: ValueError) -> Exception:
        msg = str(e)
        if "exceed context window" in msg:
            # llama-cpp-python: "Requested tokens (9412) exceed context window of 512": the window it
            # really has (n_ctx rounded up), and the prompt's size
            counts = re.search(r"\((\d+)\) exceed context window of (\d+)", msg)
            return ContextLengthError(
                f"the prompt does not fit {self.model}'s context window ({msg}): shorten it, or raise "
                f"n_ctx for this tier (the model allows up to {self.context_length or 'its trained length'})",
                prompt_tokens=int(counts.group(1)) if counts else None,
                context=int(counts.group(2)) if counts else self.n_ctx,
            )
        if "chat" in msg.lower() or "template" in msg.lower():
            # a ProviderError: another tier (another template) may well format these messages
            return UpstreamError(f"{self.model}'s chat template cannot format these messages: {msg}")
        return UpstreamError(f"llama.cpp failed on {self.model}: {msg}")

    @staticmethod
    def _logprobs(llama: Any, cap: LogprobCapture, n: int) -> TokenLogprobs:
        """Align the capture with the generated tokens (the end-of-turn token is not one of them)."""
        n = min(n, len(cap.ids))

        def text(tok: int) -> str:
            return bytes(llama.detokenize([int(tok)])).decode("utf-8", errors="replace")

        # the generated tokens are decoded as one stream: a character whose bytes are split across
        # two tokens belongs to the token that completes it, so the tokens spell the answer exactly
        # (decoded alone, each half would be a replacement character, and every text span after it
        # would be misplaced); a byte that begins no character is dropped, as llama-cpp-python drops
        # it from the answer; alternatives are decoded alone, as they stand alone
        stream = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        tokens = [stream.decode(bytes(llama.detokenize([int(t)]))) for t in cap.ids[:n]]
        if tokens:
            tokens[-1] += stream.decode(b"", final=True)
        k = cap.top_k
        top = np.vstack(cap.top_lps[:n]) if k and n else np.zeros((n, 0))
        return TokenLogprobs(
            tokens=tokens,
            logprobs=np.asarray(cap.logprobs[:n], dtype=np.float64),
            top_tokens=[[text(t) for t in ids] for ids in cap.top_ids[:n]] if k else [[] for _ in range(n)],
            top_logprobs=top,
        )

    def stream(self, request: Request) -> DeltaStream:
        """Stream text pieces from a worker thread through an asyncio queue. After the last Delta,
        ``usage`` (the prompt's tokens and every token generated, as complete() counts them) and
        ``finish_reason`` are set; a stream carries no logprobs."""
        return DeltaStream(lambda out: self._stream(request, out))

    async def _stream(self, request: Request, out: DeltaStream) -> AsyncGenerator[Delta, None]:
        loop = asyncio.get_running_loop()
        counted: list[int] = []  # the prompt's tokens and the answer's, once generation ends
        queue: asyncio.Queue[Delta | BaseException | None] = asyncio.Queue()
        stop = threading.Event()  # set when the consumer goes away: generation stops, the lock is freed

        def produce() -> None:
            try:
                if stop.is_set():  # abandoned while queued: read no prompt for it
                    return
                loaded, _ = self._loaded()
                with loaded.lock:
                    if stop.is_set():
                        return
                    llama = loaded.llama
                    llama.reset()
                    llama._stop = stop  # a long prompt stops being read, a batch at a time, once abandoned
                    llama._limit = request.max_tokens
                    generated: list[int] = []
                    llama._generated = generated
                    streamed = ""
                    finish: FinishReason | None = None
                    try:
                        chunks = self._answering(
                            request, llama, lambda: llama.create_chat_completion(**self._kwargs(request), stream=True))
                        # the pieces are what the generated tokens spell, not llama-cpp-python's chunk
                        # text: its count of bytes held back for a split character goes stale, and it
                        # dropped a character (mid-answer, or at the end) and missed stop strings. Text
                        # that may be the start of a stop string is held back until it is not
                        spelling = _Spelling(llama, generated)
                        for chunk in chunks:
                            if stop.is_set():
                                break
                            fr = chunk["choices"][0].get("finish_reason")
                            if fr:  # ended at max_tokens here (see generate), not by the model: "length"
                                finish = "length" if fr == "length" or llama._capped else "stop"
                            text, cut = spelling.text(request.stop)
                            safe = text if cut else text[:len(text) - stop_prefix(text, request.stop)]
                            if len(safe) > len(streamed) and safe.startswith(streamed):
                                loop.call_soon_threadsafe(queue.put_nowait, Delta(safe[len(streamed):], None))
                                streamed = safe
                            if cut:  # a stop string llama-cpp-python has not acted on: the answer ends here
                                finish = "stop"
                                break
                        if finish is not None and not stop.is_set():
                            # the answer as complete() gives it: what the tokens spell, cut at its
                            # earliest stop (then it finished at a stop, whatever the token limit said)
                            text, cut = spelling.text(request.stop)
                            finish = "stop" if cut else finish
                            tail = text[len(streamed):] if text.startswith(streamed) else ""
                            loop.call_soon_threadsafe(queue.put_nowait, Delta(tail, finish))
                    finally:
                        counted[:] = [int(llama._prompt_n), len(generated) - _ends_in_eog(llama, generated)]
                        llama._stop, llama._limit, llama._generated = None, None, None
            except _Abandoned:
                return  # abandoned while its prompt was read: nobody is left to tell
            except Exception as e:  # as complete() maps them: a ProviderError where llama.cpp failed
                loop.call_soon_threadsafe(queue.put_nowait, self._provider_error(e) or e)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, not swallowed
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        job = self._executor().submit(produce)
        worker = asyncio.wrap_future(job)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if item.finish_reason is not None:
                    out.finish_reason = item.finish_reason
                yield item
            await asyncio.shield(worker)  # ended: its counts are in
            if counted and out.finish_reason is not None:
                out.usage = Usage(counted[0], counted[1])
        finally:
            stop.set()
            if not job.cancel():  # still queued behind another request: cancelled there, nothing to wait for
                await asyncio.shield(worker)

    async def aclose(self) -> None:
        return None
