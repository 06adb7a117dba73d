"""Generating a split's images in batches sized for the device: the speed changes, the images do not."""

import torch

from engine.models import MobileResnetSupernet
from engine.stages.evaluate import batch_size_for, generate, to_8bit


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


def test_images_are_made_8_bit_as_the_reference_writes_them_and_left_as_they_were():
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1  # some outside [-1, 1]
    images[0, 0, 0, :3] = torch.tensor([-1.0, 1.0, 0.0])
    before = images.clone()
    # tensor2im's float32 arithmetic, clipped, truncated to integers: every value agrees to the last bit.
    levels = ((images.clamp(-1, 1).numpy() + 1) / 2.0 * 255.0).astype("uint8").astype("float32")
    assert torch.equal(to_8bit(images), torch.from_numpy(levels / 255 * 2 - 1))
    assert torch.equal(images, before)
