"""A dataset folder checked as a run would read it: every file of a split decoded, and what a run would refuse or
misread named with its fix (``datasets check`` on the command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.data.layouts import DatasetConfig, detect_layout, open_dataset
from engine.errors import DatasetError


@dataclass(frozen=True)
class DatasetCheck:
    path: Path
    layout: str
    phase: str
    items: int
    #: (file, why a run skips it): replace or remove them.
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: What a run would refuse or misread, in words with the fix.
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"path": str(self.path), "layout": self.layout, "phase": self.phase,
                                   "items": self.items,
                                   "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped]}
        if self.problems:
            data["problems"] = list(self.problems)
        return data


def check_dataset(path: Path, layout: str | None = None, phase: str = "train") -> DatasetCheck:
    """``path`` opened in ``layout`` (default: detected), every file of ``phase`` decoded as a run reads it."""
    layout = layout or detect_layout(path)
    dataset = open_dataset(DatasetConfig(root=path, layout=layout, phase=phase, decode_check=True))
    return DatasetCheck(path, layout, phase, len(dataset), list(dataset.unreadable),
                        _problems(path, layout, dataset, phase))


def _problems(root: Path, layout: str, dataset, phase: str) -> list[str]:
    """The checks a run makes of every split, in words (a run also reads the test split; it holds training images
    out for the search)."""
    problems = []
    if getattr(dataset, "looks_single", None):
        problems.append(dataset.looks_single)
    if phase == "train" and layout != "single":
        if len(dataset) < 3:
            problems.append(f"only {len(dataset)} training image(s): a run holds some out to score the search "
                            "(dataset.search_images, at least 2) and trains on the rest; add images")
        try:
            open_dataset(DatasetConfig(root=root, layout=layout, phase="test"))
        except DatasetError as exc:
            problems.append(f"no usable test split, which a run scores its student on: {exc}")
    return problems
