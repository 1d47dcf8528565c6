"""Synthetic NCPR/DND registry files for benchmarks and tests (plain Python, no Django needed).

write_registry_csv() writes `number,preferences` rows shaped like the real national file: unique
10-digit Indian mobile numbers, about 60% fully blocked ('0'), the rest partial blocks listing
the accepted categories. Most numbers are plain national ones; a few use the other accepted
spellings (trunk 0, 91 prefix, +91, spaces, dashes) and preference separators, so the loader's
slow paths are exercised at realistic rates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

# Mobile numbers start with 6-9: [6_000_000_000, 10_000_000_000).
_FIRST = 6_000_000_000
_SPAN = 4_000_000_000
_CHUNK = 100_000


def registry_numbers(rows: int, *, seed: int = 1) -> Iterator[int]:
    """`rows` distinct national numbers in a scrambled order, without holding a set of them.

    i -> (a*i + b) mod SPAN is a bijection on [0, SPAN) when gcd(a, SPAN) == 1, so the numbers
    are unique by construction and the same seed gives the same numbers.
    """
    if rows > _SPAN:
        raise ValueError(f"at most {_SPAN} distinct mobile numbers exist")
    rng = random.Random(seed)
    a = rng.randrange(_SPAN // 3, _SPAN) | 1
    while math.gcd(a, _SPAN) != 1:
        a += 2
    b = rng.randrange(_SPAN)
    for i in range(rows):
        yield _FIRST + (a * i + b) % _SPAN


def _spell(national: str, roll: float) -> str:
    if roll < 0.005:
        return "0" + national
    if roll < 0.010:
        return "91" + national
    if roll < 0.015:
        return "+91" + national
    if roll < 0.018:
        return f"+91 {national[:5]} {national[5:]}"
    return f"{national[:5]}-{national[5:]}"


def _partial(rng: random.Random) -> str:
    cats = sorted(rng.sample(range(1, 9), rng.randint(1, 4)))
    roll = rng.random()
    if roll < 0.9:
        return ";".join(map(str, cats))
    if roll < 0.95:
        return "|".join(map(str, cats))
    return '"' + ",".join(map(str, cats)) + '"'


def registry_rows(rows: int, *, seed: int = 1) -> Iterator[tuple[str, str]]:
    """(number as written, preferences as written) pairs, as write_registry_csv writes them."""
    rng = random.Random(seed + 7919)
    for number in registry_numbers(rows, seed=seed):
        national = str(number)
        roll = rng.random()
        spelled = national if roll >= 0.02 else _spell(national, roll)
        prefs = "0" if rng.random() < 0.6 else _partial(rng)
        yield spelled, prefs


def write_registry_csv(path: Path | str, rows: int, *, seed: int = 1) -> Path:
    """Write a full registry file of `rows` unique numbers; returns the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,preferences\n")
        batch: list[str] = []
        for number, prefs in registry_rows(rows, seed=seed):
            batch.append(f"{number},{prefs}\n")
            if len(batch) >= _CHUNK:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    return path


def write_delta_csv(path: Path | str, *, rows: int, base_rows: int, seed: int = 1) -> Path:
    """A delta file against write_registry_csv(base_rows, seed): about a third each of new
    numbers (A), changed preferences (A) and removals (D), `rows` rows in all."""
    path = Path(path)
    rng = random.Random(seed + 104729)
    existing = list(registry_numbers(min(base_rows, rows * 2), seed=seed))
    rng.shuffle(existing)
    fresh = _FIRST + _SPAN - 1  # counts down from the top; collides only with a full span
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,preferences,action\n")
        for i in range(rows):
            kind = i % 3
            if kind == 0 or not existing:
                number, action = fresh, "A"
                fresh -= 7
            else:
                number, action = existing.pop(), "A" if kind == 1 else "D"
            prefs = "0" if rng.random() < 0.6 else _partial(rng)
            out.write(f"{number},{prefs},{action}\n")
    return path
