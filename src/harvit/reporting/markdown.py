"""Small markdown helpers shared by the run report and its verdict: tables, percentages, intervals."""

from __future__ import annotations

from typing import Any

from harvit.evaluation.significance import wilson_interval


def md_table(header: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align``: ``l``/``r`` per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float) -> str:
    """0.9312 -> ``93.1%``."""
    return f"{100 * x:.1f}%"


def p_value(p: float) -> str:
    """``p < 0.001`` or ``p = 0.042``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def with_ci(acc: float, n: int | None) -> str:
    """``95.9% (95% CI 95.1-96.5%)`` for an accuracy over ``n`` windows (just the accuracy without ``n``)."""
    if not n:
        return pct(acc)
    lo, hi = wilson_interval(round(acc * n), n)
    return f"{pct(acc)} (95% CI {100 * lo:.1f}-{pct(hi)})"
