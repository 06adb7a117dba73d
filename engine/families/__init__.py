"""Model families (CycleGAN, pix2pix, ...) registered by name; a new family is one new module here."""

from engine.families import cyclegan, pix2pix  # noqa: F401  (registration)
from engine.families.base import Family
from engine.families.registry import FAMILIES


def get_family(name: str) -> Family:
    return FAMILIES.get(name)


__all__ = ["FAMILIES", "Family", "get_family"]
