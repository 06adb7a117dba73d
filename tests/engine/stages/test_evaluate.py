"""Generating a split's images in batches sized for the device: the speed changes, the images do not."""

import torch

from engine.models import MobileResnetSupernet
from engine.stages.evaluate import batch_size_for, generate


def test_cpu_batches_shrink_with_the_image_and_gpu_batches_do_not():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert [batch_size_for(torch.zeros(1, 3, s, s), cpu) for s in (16, 32, 64, 128, 256, 512)] == [64, 64, 16, 4, 1, 1]
    assert batch_size_for(torch.zeros(1, 3, 256, 512), cpu) == 1
    assert batch_size_for(torch.zeros(1, 3, 256, 256), gpu) == 64


def test_each_images_output_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    supernet = MobileResnetSupernet(3, 3, max_arch="8_8_8_8_8_8_8_8", n_blocks=3).eval()
    inputs = torch.rand(7, 3, 64, 64) * 2 - 1
    model = lambda x: supernet(x, arch="4_8_4_8_4_8_4_8")  # noqa: E731
    one_by_one = generate(model, inputs, torch.device("cpu"), batch_size=1)
    together = generate(model, inputs, torch.device("cpu"), batch_size=64)
    chosen = generate(model, inputs, torch.device("cpu"))
    assert one_by_one.shape == together.shape == chosen.shape == (7, 3, 64, 64)
    # The same arithmetic per image; only the convolution's blocking may round differently.
    assert (one_by_one - together).abs().max() < 1e-5 and (chosen - together).abs().max() < 1e-5
