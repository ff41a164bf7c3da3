"""Summarise a py-spy profile (`py-spy record --format raw`: collapsed stacks) as top functions.

    .venv/bin/python bench/pyspy_summary.py reports/profile/drain.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def top_functions(collapsed: Path, count: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Share of samples per function from py-spy's collapsed stacks: as the leaf (own) and anywhere (total)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";")[1:]]  # drop the thread frame
        if not frames:
            continue
        samples += int(n)
        own[frames[-1]] = own.get(frames[-1], 0) + int(n)
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + int(n)

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:count]
        return [(name, round(100 * n / max(1, samples), 1)) for name, n in ranked]

    return {"own_pct": top(own), "total_pct": top(total)}


if __name__ == "__main__":
    print(json.dumps(top_functions(Path(sys.argv[1])), indent=1))
