"""Benchmarks share docs/benchmarks.md: each writes its own section between markers and leaves the others."""

from __future__ import annotations

from pathlib import Path

TITLE = "# Benchmarks\n"


def write_section(path: Path, name: str, text: str) -> None:
    """Replace section ``name`` of the Markdown file at ``path`` with ``text`` (added at the end if new)."""
    start, end = f"<!-- section: {name} -->", f"<!-- end of section: {name} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    current = path.read_text() if path.is_file() else TITLE
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        updated = before + block + after
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(updated)
