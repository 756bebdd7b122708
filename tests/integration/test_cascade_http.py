"""A cascade from config: in-process SmolLM2 tier -> the real llama.cpp HTTP server, and keys that never leak."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edgecascade import AllTiersFailedError, Cascade
from edgecascade.cli import main
from edgecascade.providers.resilient import reset_breakers
from tests.fakes.openai_faults import FaultServer

SECRET = "sk-live-SECRET-4242"


def http_config(tmp_path: Path, base_url: str, first_rule: str = "min_confidence = 1.0") -> Path:
    p = tmp_path / "http.toml"
    p.write_text(
        "[cascade]\nmax_tokens = 24\n"
        f'[[tiers]]\nname = "local"\nmodel = "smollm2-135m"\nn_ctx = 1024\n[tiers.accept]\n{first_rule}\n'
        f'[[tiers]]\nname = "server"\nprovider = "llamacpp-server"\nmodel = "smollm2"\nbase_url = "{base_url}"\n'
        "[tiers.price]\ninput_per_mtok = 0.5\noutput_per_mtok = 1.5\n"
    )
    return p


async def test_local_tier_escalates_to_the_real_http_server_with_logprobs(tmp_path: Path, smollm2: Path,
                                                                         llamacpp_server: str) -> None:
    reset_breakers()
    cascade = Cascade.from_config(http_config(tmp_path, llamacpp_server))
    r = await cascade.run("Name a colour.")
    assert [a.tier for a in r.attempts] == ["local", "server"]
    assert r.attempts[0].accepted is False and r.tier == "server"
    server = r.attempts[1]
    assert server.completion is not None and server.completion.logprobs is not None  # logprobs over the wire
    assert len(server.completion.logprobs) == server.completion.usage.completion_tokens
    assert server.confidence is not None and 0 < server.confidence <= 1
    u = server.completion.usage
    assert r.cost == pytest.approx((u.prompt_tokens * 0.5 + u.completion_tokens * 1.5) / 1e6)
    assert r.baseline_estimated is False
    # the same tier streams too
    pieces = [d async for d in cascade.tiers[1].provider.stream(cascade.build_request("Name a colour.", None, None,
                                                                                        None, None, None))]
    assert "".join(p.text for p in pieces).strip() and pieces[-1].finish_reason in ("stop", "length")
    await cascade.aclose()


async def test_api_key_never_leaks(tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """The key set in the environment appears in no log line, exception, repr, result, trace or URL."""
    reset_breakers()
    monkeypatch.setenv("EDGECASCADE_TEST_KEY", SECRET)
    fake = FaultServer(["500"]).start()
    try:
        cfg = tmp_path / "leak.toml"
        cfg.write_text(
            "[cascade]\nmax_tokens = 8\non_all_rejected = \"error\"\n"
            f'[[tiers]]\nname = "remote"\nprovider = "openai-compatible"\nmodel = "m"\nbase_url = "{fake.base_url}"\n'
            'api_key_env = "EDGECASCADE_TEST_KEY"\n[tiers.retry]\nattempts = 2\nbackoff_s = 0.01\n'
            f'[[tiers]]\nname = "dead"\nprovider = "vllm"\nmodel = "m"\nbase_url = "http://127.0.0.1:1/v1"\n'
            'api_key_env = "EDGECASCADE_TEST_KEY"\n[tiers.retry]\nattempts = 1\n'
        )
        caplog.set_level(logging.DEBUG)
        cascade = Cascade.from_config(cfg)
        with pytest.raises(AllTiersFailedError) as ei:
            await cascade.run("hello")
        texts = [str(ei.value), repr(ei.value)] + [f"{n}: {e!r} {e}" for n, e in ei.value.failures]
        texts += [repr(t.provider) for t in cascade.tiers] + [repr(cascade.tiers)]
        texts += [rec.getMessage() for rec in caplog.records] + [caplog.text]
        # the CLI's error output and JSON
        import asyncio

        assert await asyncio.to_thread(main, ["run", "--json", "--config", str(cfg), "hello"]) == 1
        out = capsys.readouterr()
        texts += [out.out, out.err]
        for t in texts:
            assert SECRET not in t
        # it was sent, in the header only
        assert fake.headers and all(h.get("Authorization") == f"Bearer {SECRET}" for h in fake.headers)
        assert all(SECRET not in json.dumps(r) for r in fake.requests)  # not in any request body or URL
        await cascade.aclose()
    finally:
        fake.stop()
