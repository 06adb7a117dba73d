"""The one architecture type: a sub-network of a family's supernet, written as its per-position widths
joined by ``_`` (``16_16_24_16_32_64_16_24``), the config string of gan-compression. What each position
means, and how many there are, is the family's business (``Family.positions``)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True, order=True)
class Arch:
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        values = tuple(int(v) for v in self.values)
        object.__setattr__(self, "values", values)
        if not values:
            raise ConfigError("an arch needs at least one width")
        if any(v < 1 for v in values):
            raise ConfigError(f"arch widths must be positive, got {self}")

    @classmethod
    def parse(cls, text: str | Arch | tuple[int, ...] | list[int], positions: int | None = None) -> Arch:
        """An arch from its string (or values); with ``positions``, the number of widths is checked."""
        if isinstance(text, Arch):
            arch = text
        elif isinstance(text, (tuple, list)):
            arch = cls(tuple(text))
        else:
            try:
                arch = cls(tuple(int(part) for part in str(text).strip().split("_")))
            except ValueError:
                raise ConfigError(f"an arch is whole numbers joined by '_', e.g. 16_16_24_16_32_64_16_24, "
                                  f"not {text!r}") from None
        if positions is not None and len(arch.values) != positions:
            raise ConfigError(f"this family's arch has {positions} widths, got {len(arch.values)}: {arch}")
        return arch

    @classmethod
    def largest(cls, space: list[tuple[int, ...]]) -> Arch:
        return cls(tuple(max(choices) for choices in space))

    @classmethod
    def smallest(cls, space: list[tuple[int, ...]]) -> Arch:
        return cls(tuple(min(choices) for choices in space))

    @classmethod
    def middle(cls, space: list[tuple[int, ...]]) -> Arch:
        """Each position's median width (the lower of the middle two): a typical sub-network of the space."""
        return cls(tuple(sorted(choices)[(len(choices) - 1) // 2] for choices in space))

    def fits_in(self, other: Arch) -> bool:
        return len(self.values) == len(other.values) and all(a <= b for a, b in zip(self.values, other.values))

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        return iter(self.values)

    def __getitem__(self, index: int) -> int:
        return self.values[index]

    def __str__(self) -> str:
        return "_".join(str(v) for v in self.values)
