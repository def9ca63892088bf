""""Did you mean" suggestions for misspelt helper names."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional


def distance(a: str, b: str) -> int:
    """Levenshtein edit distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def closest(name: str, candidates: Iterable[str]) -> Optional[str]:
    """The nearest candidate within a third of ``name``'s length (at least 2 edits), if any."""
    best = None
    best_d = max(2, len(name) // 3) + 1
    for c in candidates:
        d = distance(name, c)
        if d < best_d:
            best, best_d = c, d
    return best
