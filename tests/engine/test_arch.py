"""Named sub-networks of a search space."""

from engine.arch import Arch


def test_middle_takes_each_positions_median_width_whatever_the_order_of_its_choices():
    space = [(8, 4), (16, 4, 8), (32, 8, 24, 16), (6,)]
    assert Arch.middle(space) == Arch((4, 8, 16, 6))  # an even count: the lower of the two middle widths
    assert Arch.smallest(space).fits_in(Arch.middle(space)) and Arch.middle(space).fits_in(Arch.largest(space))
