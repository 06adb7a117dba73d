"""Model families (CycleGAN, pix2pix, ...) registered by name; a new family is one new module here
(and its models under ``engine.models``), imported below so that it registers itself."""

from engine.families import cyclegan, gaugan, munit, pix2pix  # noqa: F401  (registration)
from engine.families.base import DistillState, Family, FamilyOptions, Recipe, TeacherTrainer
from engine.families.registry import FAMILIES


def get_family(name: str) -> Family:
    return FAMILIES.get(name)


__all__ = ["FAMILIES", "DistillState", "Family", "FamilyOptions", "Recipe", "TeacherTrainer", "get_family"]
