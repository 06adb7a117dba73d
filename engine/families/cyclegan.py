from engine.families.base import Family
from engine.families.registry import FAMILIES

CYCLEGAN_CHOICES = (64, 48, 32, 24, 16)

FAMILIES.register("cyclegan")(Family(
    name="cyclegan",
    description="CycleGAN: unpaired translation (trainA/trainB); ResNet teacher, 9 blocks, ngf 64",
    paired=False,
    dataset_layout="unaligned",
    teacher_generator="resnet",
    teacher_kwargs={"ngf": 64, "n_blocks": 9, "norm": "instance", "use_dropout": False},
    search_space=(CYCLEGAN_CHOICES,) * 8,
    lambda_recon=10.0,
    loss_names=("G_gan", "G_recon", "G_distill", "D_real", "D_fake"),
))
