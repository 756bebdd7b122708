"""A llama-cpp-python model whose tokens a test scripts: llama-cpp-python's own completion code (stop
strings, held-back bytes of a split character, chat formatting of the result) runs over it, with no
weights. For behaviour of the in-process provider that a real model cannot be made to show on demand.

Call :func:`install` (with pytest's ``monkeypatch``) before building one: llama-cpp-python asks its C
library whether a token ends generation, and the fake's end token must say so.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest

EOS = 0
_VOCAB = 64


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp.llama as llama_module

    monkeypatch.setattr(llama_module.llama_cpp, "llama_vocab_is_eog", lambda vocab, tok: tok == EOS)


def _fake_class() -> type:
    import llama_cpp
    from llama_cpp import llama_chat_format

    def handler(llama: Any, messages: Any, stream: bool = False, stop: Any = None, max_tokens: Any = None,
                logits_processor: Any = None, temperature: float = 0.0, seed: Any = None, **kw: Any) -> Any:
        out = llama.create_completion(prompt="PROMPT", stream=stream, stop=stop, max_tokens=max_tokens,
                                      logits_processor=logits_processor, temperature=temperature, seed=seed)
        if stream:
            return llama_chat_format._convert_text_completion_chunks_to_chat(out)
        return llama_chat_format._convert_text_completion_to_chat(out)

    class ScriptedLlama(llama_cpp.Llama):  # type: ignore[misc]
        """Generates ``script`` (token ids), each spelling ``pieces[id]`` (bytes)."""

        def __init__(self, pieces: Mapping[int, bytes], script: list[int]) -> None:  # no super(): no weights
            self.pieces = {**pieces, EOS: b""}
            self.script = list(script)
            self.verbose, self.cache, self.model_path, self._logits_all = False, None, "scripted", False
            self._seed, self.spm_infill, self.metadata, self.chat_format = 0, False, {}, None
            self._chat_handlers: dict[str, Any] = {}
            self.chat_handler = handler
            self._model = types.SimpleNamespace(token_cls=lambda: -1, token_sep=lambda: -1, vocab=None,
                                                add_bos_token=lambda: False, add_eos_token=lambda: False)
            self.n_tokens = 0
            self.n_batch = 512
            self._n_ctx = 4096

        def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
            return [100 + i for i in range(8)]

        def detokenize(self, tokens: list[int], prev_tokens: Any = None, special: bool = False) -> bytes:
            return b"".join(self.pieces.get(int(t), b"") for t in tokens)

        def close(self) -> None:
            pass

        def __del__(self) -> None:
            pass

        def token_eos(self) -> int:
            return EOS

        def token_bos(self) -> int:
            return -1

        def n_ctx(self) -> int:
            return 4096

        def reset(self) -> None:
            self.n_tokens = 0

        def eval(self, tokens: list[int]) -> None:
            self.n_tokens += len(tokens)

        def generate(self, tokens: list[int], logits_processor: Any = None, **kw: Any) -> Iterator[int]:
            self.eval(tokens)
            for tok in self.script:
                scores = np.full(_VOCAB, -5.0, dtype=np.float32)
                scores[tok] = 5.0
                for p in logits_processor or ():
                    scores = p(np.zeros(1, dtype=np.intc), scores)
                yield tok
                self.eval([tok])

    return ScriptedLlama


def provider(pieces: Mapping[int, bytes], script: list[int]) -> Any:
    """A LlamaCppProvider answering with ``script`` through llama-cpp-python's completion code."""
    from edgecascade.providers import llamacpp

    capturing = llamacpp._capturing_llama_class(types.SimpleNamespace(Llama=_fake_class()))
    p = llamacpp.LlamaCppProvider(path="/nonexistent/scripted.gguf", model="scripted", top_logprobs=3)
    loaded = llamacpp._Loaded(capturing(pieces, script), threading.Lock(), 0.0)
    p._loaded = lambda: (loaded, 0.0)  # type: ignore[method-assign]
    return p
