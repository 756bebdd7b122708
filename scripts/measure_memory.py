#!/usr/bin/env python3
"""Memory (RSS) of a cascade in this process: at start, after a drafted answer, after an escalated one.

    .venv/bin/python scripts/measure_memory.py [--config default] [--json]

The drafted answer uses the config as it is. The escalated answer uses the same config with the
first tier's threshold raised to 1.0, which forces escalation while sharing the already loaded
models, so the second number is the memory with every tier loaded. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecascade import Cascade, load_config


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="config path or shipped name (default: configs/default.toml)")
    ap.add_argument("--question", default="What is the capital of France? Answer in one sentence.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    cfg = load_config(args.config)
    report: dict[str, object] = {"config": args.config or "default", "rss_mb_start": rss_mb()}
    cascade = Cascade.from_config(cfg)
    r = cascade.run_sync(args.question)
    report.update(drafted_by=r.tier, drafted_attempts=len(r.attempts), rss_mb_after_drafted=rss_mb())

    # an unreachable threshold (and no quality_target, which would take precedence) forces escalation
    never = cfg.tiers[0].accept.model_copy(update={"min_confidence": 1.0, "quality_target": None})
    first = cfg.tiers[0].model_copy(update={"accept": never})
    forced = cfg.model_copy(update={"tiers": (first, *cfg.tiers[1:])})
    r = Cascade.from_config(forced).run_sync(args.question)
    report.update(escalated_to=r.tier, escalated_attempts=len(r.attempts), rss_mb_after_escalated=rss_mb())
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:>24}: {v:.0f}" if isinstance(v, float) else f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
