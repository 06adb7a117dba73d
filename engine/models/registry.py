"""Generators and discriminators registered by name; ``build_generator('resnet', ngf=32)``."""

from torch import nn

from engine.registry import Registry

GENERATORS: Registry = Registry("generator")
DISCRIMINATORS: Registry = Registry("discriminator")


def build_generator(name: str, **kwargs) -> nn.Module:
    return GENERATORS.get(name)(**kwargs)


def build_discriminator(name: str, **kwargs) -> nn.Module:
    return DISCRIMINATORS.get(name)(**kwargs)
