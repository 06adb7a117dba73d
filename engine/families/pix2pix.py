from engine.families.base import Family
from engine.families.registry import FAMILIES

PIX2PIX_CHOICES = (64, 56, 48, 40, 32, 24, 16)

FAMILIES.register("pix2pix")(Family(
    name="pix2pix",
    description="pix2pix: paired translation (aligned A|B images); ResNet teacher, 9 blocks, ngf 64",
    paired=True,
    dataset_layout="aligned",
    teacher_generator="resnet",
    teacher_kwargs={"ngf": 64, "n_blocks": 9, "norm": "instance", "use_dropout": False},
    search_space=(PIX2PIX_CHOICES,) * 8,
    lambda_recon=100.0,
    loss_names=("G_gan", "G_recon", "G_distill", "D_real", "D_fake"),
))
