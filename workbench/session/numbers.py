"""Numbers as the window writes them, Qt-free (the views and the session's words share them)."""

from __future__ import annotations


def format_count(value: float) -> str:
    """3.63G, 345M, 12k: MACs and parameter counts as the views show them."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"
