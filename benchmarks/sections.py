"""Benchmarks share docs/benchmarks.md: each writes its own section between markers and leaves the others."""

from __future__ import annotations

from pathlib import Path

TITLE = "# Benchmarks\n"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def parse_timing_args(parser):
    """The options every timing benchmark takes (``--threads``, ``--output``), parsed, the threads set."""
    import torch

    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=DOCS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


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


def publish(path: Path, name: str, text: str) -> None:
    """Print a benchmark's section and write it into the Markdown file at ``path``."""
    print(text)
    write_section(path, name, text)
    print(f"wrote {path}")
