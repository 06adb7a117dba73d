"""Teachers shipped with the program (``resources/teachers``) for the sample presets, and what a model card says
of them."""

from __future__ import annotations

from pathlib import Path


def shipped_teacher(name: str) -> str:
    """Path of a teacher shipped with the program (``resources/teachers/NAME.pt``, trained by
    ``packaging/train_sample_teachers.py``), for a sample preset."""
    from importlib import resources

    return str(resources.files("gcw_resources").joinpath("teachers", f"{name}.pt"))


def shipped_teacher_provenance(path: Path) -> dict[str, str] | None:
    """For a teacher shipped with the program, the training config beside it and the command that re-trains
    it (for the model card); None for any other checkpoint."""
    shipped = Path(shipped_teacher(path.stem))
    config = shipped.with_suffix(".yaml")
    if not config.is_file() or not shipped.is_file() or path.resolve() != shipped.resolve():
        return None
    return {"training_config": f"resources/teachers/{config.name}",
            "retrain": f"python packaging/train_sample_teachers.py {path.stem}"}
