

def test_calibration_keeps_every_batchs_statistics_or_as_the_reference_the_last_ones():
    import torch
    from torch import nn

    from engine.models.elastic import calibrate_batchnorm

    norm = nn.BatchNorm2d(1, momentum=0.5).eval()
    batches = [torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), 3.0)]
    calibrate_batchnorm(norm, norm, batches)
    assert norm.running_mean.item() == 2.0  # the first replaces (1), the second moves it half way to 3
    calibrate_batchnorm(norm, norm, batches, every_batch_replaces=True)
    assert norm.running_mean.item() == 3.0  # the last batch's, as the reference's calibrate leaves them
    assert norm.momentum == 0.5 and not norm.training  # as they were
