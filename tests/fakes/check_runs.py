"""Count how often a draft's configured checks run, shared by the engine's and the report's tests.

The checks decide whether a draft is worth cross-checking and then judge it; one run must serve
both, in the engine and in the offline rule `bench report` and `bench replay` judge a config with.
"""

from __future__ import annotations

import pytest


def count_check_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patch ``run_checks`` where the engine, the policy and the offline rule call it; the returned
    list gets the text of each draft the checks ran on, once per run."""
    from edgecascade import engine
    from edgecascade.benchmarks import replay
    from edgecascade.quality import policy

    runs: list[str] = []
    real = policy.run_checks

    def counted(c, names, repetition, prompt):  # type: ignore[no-untyped-def]
        runs.append(c.text)
        return real(c, names, repetition, prompt)

    monkeypatch.setattr(engine, "run_checks", counted)
    monkeypatch.setattr(policy, "run_checks", counted)
    monkeypatch.setattr(replay, "run_checks", counted)
    return runs
