"""Label maps into GauGAN's input channels."""

import pytest
import torch

from engine.data.labels import generator_input, instance_edges, one_hot


def test_class_ids_become_one_channel_each():
    labels = torch.tensor([[[0, 1], [2, 1]]])
    semantics = one_hot(labels, 3)
    assert semantics.shape == (1, 3, 2, 2) and semantics.sum(1).eq(1).all()
    assert semantics[0, 1].tolist() == [[0, 1], [0, 1]] and semantics[0, 2].tolist() == [[0, 0], [1, 0]]


def test_ids_outside_the_classes_are_named_with_the_fix():
    with pytest.raises(ValueError, match=r"class ids \[5\] outside 0..2; set the number of classes to at least 6"):
        one_hot(torch.tensor([[[0, 5]]]), 3)
    with pytest.raises(ValueError, match="integer class ids"):
        one_hot(torch.zeros(1, 2, 2), 3)


def test_instance_edges_mark_both_sides_of_a_boundary_and_add_one_channel():
    instances = torch.tensor([[[1, 1, 2], [1, 1, 2], [3, 3, 3]]])
    assert instance_edges(instances)[0, 0].tolist() == [[0, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert instance_edges(torch.ones(1, 3, 3, dtype=torch.long)).sum() == 0
    assert generator_input(torch.zeros(2, 4, 4, dtype=torch.long), 35, torch.zeros(2, 4, 4, dtype=torch.long)).shape \
        == (2, 36, 4, 4)  # Cityscapes: 35 classes + the edge channel
