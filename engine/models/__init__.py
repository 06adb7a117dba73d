"""Generator and discriminator families, registered by name (see ``engine.models.registry``)."""

from engine.models import discriminators, mobile_resnet, munit, resnet, spade, unet  # noqa: F401  (registration)
from engine.models.elastic import extract_subnet
from engine.models.init import init_weights
from engine.models.mobile_resnet import MobileResnetGenerator, MobileResnetSupernet
from engine.models.registry import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from engine.models.resnet import ResnetGenerator
from engine.models.unet import UnetGenerator

__all__ = ["DISCRIMINATORS", "GENERATORS", "MobileResnetGenerator", "MobileResnetSupernet", "ResnetGenerator",
           "UnetGenerator", "build_discriminator", "build_generator", "extract_subnet", "init_weights"]
