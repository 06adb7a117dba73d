"""Every registered family through the plug-in interface alone: models, arch strings, MACs, extraction,
one training step of each kind, export parity and the checkpoint layouts users bring."""

import ast
import random
from pathlib import Path

import pytest
import torch

from engine.arch import Arch
from engine.export import export_checked
from engine.families import FAMILIES, DistillState, get_family
from engine.families.capabilities import conditioning_of, export_feed, export_input_names, random_inputs
from engine.losses import GANLoss
from engine.profile import count_macs
from engine.models.elastic import subnet_of
from tests.engine.models.reference_checkpoints import reference_resnet_state

ROOT = Path(__file__).resolve().parents[3]
RESNET_TINY = {"ngf": 8, "n_blocks": 3}
#: Each family's tiny model options and a size its models can make (non-square on purpose).
TINY = {"cyclegan": (RESNET_TINY, (24, 32)), "pix2pix": (RESNET_TINY, (24, 32)),
        "gaugan": ({"classes": 5, "instance_edges": True, "ngf": 4, "upsampling": "normal", "calibration_images": 4},
                   (32, 64)),
        "munit": ({"ngf": 8, "mlp_dim": 16, "student_mlp_dim": 16}, (64, 80))}
RESNET_FAMILIES = [name for name in FAMILIES.names() if TINY.get(name, (None,))[0] is RESNET_TINY]


def _tiny(name):
    family = get_family(name)
    options = family.options(TINY[name][0])
    return family, options, family.search_space(options, [[8, 4]] * len(family.positions))


def _size(name):
    return TINY[name][1]


def _inputs(family, options, size, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([random_inputs(family, options, size, generator) for _ in range(batch)])


def _model_inputs(family, options, size, batch=2, seed=0):
    """Images and their conditioning (a style code per image where the family takes one)."""
    return (_inputs(family, options, size, batch, seed), *conditioning_of(family, options, batch, seed))


def _random_arch(space, seed):
    rng = random.Random(seed)
    return Arch(tuple(rng.choice(c) for c in space))


def _batch(family, options, size, seed=0):
    generator = torch.Generator().manual_seed(seed + 1)
    a = _inputs(family, options, size, seed=seed)
    out_channels = family.build_teacher(options).eval()(a[:1], *conditioning_of(family, options, 1, seed)).shape[1]
    return {"A": a, "B": torch.rand(2, out_channels, *size, generator=generator) * 2 - 1}


def _values(features):
    return list(features.values()) if isinstance(features, dict) else list(features)


@pytest.fixture(params=FAMILIES.names())
def family_name(request):
    return request.param


def test_arch_strings_round_trip_and_are_checked_against_the_space(family_name):
    family, _, space = _tiny(family_name)
    arch = _random_arch(space, 1)
    assert family.parse_arch(str(arch)) == arch
    assert family.check_arch(str(arch), space) == arch
    with pytest.raises(Exception, match=f"{len(family.positions)} widths"):
        family.parse_arch("4_4")
    with pytest.raises(Exception, match="outside the run's search space"):
        family.check_arch("_".join(["16"] * len(family.positions)), space)
    # Narrower than the widest choice but not a choice: a width the supernet never trained.
    between = [c[0] - 1 for c in space]
    with pytest.raises(Exception, match=rf"{family.positions[0]} {between[0]} \(choices"):
        family.check_arch("_".join(map(str, between)), space)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_macs_equal_the_traced_count_of_the_student(family_name, seed):
    family, options, space = _tiny(family_name)
    arch = _random_arch(space, seed)
    student = family.build_student(options, arch)
    traced = count_macs(student, *family.example_inputs(options, _size(family_name)))
    assert family.macs(arch, options, _size(family_name)) == traced
    assert family.params(arch, options) == sum(p.numel() for p in student.parameters())


@pytest.mark.parametrize("seed", [0, 1])
def test_extracted_sub_network_equals_the_supernet_at_that_arch(family_name, seed):
    family, options, space = _tiny(family_name)
    torch.manual_seed(seed)
    supernet = family.build_supernet(options, space).eval()
    with torch.no_grad():
        for p in supernet.parameters():
            p.normal_(0, 0.3)
    arch = _random_arch(space, seed + 10)
    subnet = subnet_of(supernet, arch).eval()
    inputs = _model_inputs(family, options, _size(family_name), seed=seed)
    with torch.no_grad():
        expected, expected_features = supernet.forward_with_features(*inputs, arch=arch)
        got, got_features = subnet.forward_with_features(*inputs)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert len(_values(got_features)) == len(_values(expected_features))
    for a, b in zip(_values(got_features), _values(expected_features)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_one_teacher_training_step_moves_the_generator_and_the_discriminator(family_name):
    family, options, _ = _tiny(family_name)
    recipe = family.default_recipe
    trainer = family.teacher_trainer(options, recipe, seed=0)
    g_params = [p for k, n in trainer.nets.items() if k.startswith("G") for p in n.parameters()]
    d_params = [p for k, n in trainer.nets.items() if k.startswith("D") for p in n.parameters()]
    before_g, before_d = [p.detach().clone() for p in g_params], [p.detach().clone() for p in d_params]
    opt_g, opt_d = torch.optim.Adam(g_params, lr=1e-3), torch.optim.Adam(d_params, lr=1e-3)
    losses = trainer.step(_batch(family, options, _size(family_name)), opt_g, opt_d)
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before_g, g_params))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, d_params))
    trainer.load_state_dict(trainer.state_dict())  # its own state (image pools...) round-trips


def _distill_state(family, options, space, recipe):
    teacher = family.build_teacher(options).eval().requires_grad_(False)
    supernet = family.build_supernet(options, space)
    mappings = family.build_mappings(options, Arch.largest(space), recipe.init)
    netD = family.build_discriminator(options, recipe.ndf)
    opt_g = torch.optim.Adam(list(supernet.parameters()) + list(mappings.parameters()), lr=1e-3)
    opt_d = torch.optim.Adam(netD.parameters(), lr=1e-3)
    state = DistillState(teacher=teacher, mappings=mappings, netD=netD,
                         forward=lambda x, arch, *c: supernet.forward_with_features(x, *c, arch=arch),
                         opt_g=opt_g, opt_d=opt_d, criterion=GANLoss(recipe.gan_mode), recipe=recipe,
                         extras=family.distill_extras(options))
    return state, supernet


def test_one_distillation_step_trains_the_sampled_sub_network_and_the_discriminator(family_name):
    family, options, space = _tiny(family_name)
    state, supernet = _distill_state(family, options, space, family.default_recipe)
    netD = state.netD
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    d_before = [p.detach().clone() for p in netD.parameters()]
    losses = family.distill_step(state, _batch(family, options, _size(family_name)), Arch.smallest(space))
    assert "G_distill" in losses and set(losses) <= set(family.loss_names)  # only the losses it declares
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    changed = [k for k, v in supernet.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    assert any(not torch.equal(a, b) for a, b in zip(d_before, netD.parameters()))
    # Only the smallest sub-network ran: the widest filter of the first layer got no update.
    stem = next(k for k in changed if k.endswith("weight"))
    assert torch.equal(supernet.state_dict()[stem][-1], before[stem][-1])


def test_without_adversarial_losses_a_distillation_step_neither_runs_nor_trains_the_discriminator(family_name):
    family, options, space = _tiny(family_name)
    # Every loss that reads the discriminator at 0 (GauGAN's feature matching reads it too).
    recipe = family.default_recipe.model_copy(update={"lambda_gan": 0.0, "lambda_feat": 0.0})
    state, supernet = _distill_state(family, options, space, recipe)
    calls = []
    state.netD.register_forward_hook(lambda *_: calls.append(1))
    d_before = [p.detach().clone() for p in state.netD.parameters()]
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    losses = family.distill_step(state, _batch(family, options, _size(family_name)), Arch.largest(space))
    assert not calls and all(torch.equal(a, b) for a, b in zip(d_before, state.netD.parameters()))
    assert not any(name.startswith("D_") or name in ("G_gan", "G_feat") for name in losses)
    assert "G_distill" in losses and any(not torch.equal(v, before[k]) for k, v in supernet.state_dict().items())
    assert family.default_recipe.uses_discriminator and not recipe.uses_discriminator


@pytest.mark.parametrize("discriminator_real", ["real", "teacher"])
def test_the_discriminator_sees_as_real_what_the_recipe_says(family_name, discriminator_real):
    family, options, space = _tiny(family_name)
    recipe = family.default_recipe.model_copy(update={"discriminator_real": discriminator_real})
    state, _ = _distill_state(family, options, space, recipe)
    batch = _batch(family, options, _size(family_name))
    seen, teacher_outputs = [], []
    state.netD.register_forward_hook(lambda module, args, output: seen.append(args[0].detach().clone()))
    teacher_forward = state.teacher.forward_with_features

    def recording_teacher(*args, **kwargs):
        out, features = teacher_forward(*args, **kwargs)
        teacher_outputs.append(out.detach().clone())
        return out, features

    state.teacher.forward_with_features = recording_teacher
    family.distill_step(state, batch, Arch.largest(space))
    # The image is the input's last channels (a conditional discriminator sees the condition first).
    images = [x[:, -batch["B"].shape[1]:] for x in seen]
    shows = [any(torch.equal(image, target) for image in images) for target in (batch["B"], teacher_outputs[0])]
    assert shows == ([True, False] if discriminator_real == "real" else [False, True])


def test_exported_student_matches_pytorch_in_onnx_runtime(family_name, tmp_path):
    family, options, space = _tiny(family_name)
    student = family.build_student(options, _random_arch(space, 3)).eval()
    size = _size(family_name)
    images = _inputs(family, options, size)
    # As the export stage feeds it: the images with their conditioning, or the reference images it takes.
    inputs = export_feed(family, options, images, conditioning_of(family, options, 2, 0), _inputs(family, options, size, seed=5))
    names = export_input_names(family, options)
    assert len(names) == len(inputs) == len(family.example_inputs(options, size))
    path, parity = export_checked(student, tmp_path / "student.onnx", inputs, None, names, family.output_names)
    assert path.is_file() and parity.ok and parity.images == 2


@pytest.mark.parametrize("resnet_family", RESNET_FAMILIES)
@pytest.mark.parametrize("dropout_layout", [False, True])
def test_teacher_checkpoints_of_both_public_projects_load_strictly(resnet_family, dropout_layout, tmp_path):
    """pytorch-CycleGAN-and-pix2pix saves blocks without a Dropout (or with one, ``use_dropout``);
    gan-compression's blocks always hold one, so its weights sit at ``conv_block.6``: both load. (GauGAN's
    layouts: tests/engine/families/test_gaugan.py.)"""
    family, options, _ = _tiny(resnet_family)
    state = reference_resnet_state(ngf=8, n_blocks=3, dropout=dropout_layout)
    assert any(".conv_block.6." in k for k in state) == dropout_layout
    teacher = family.build_teacher(options)
    loaded = family.teacher_state({"G": state} if dropout_layout else state, tmp_path / "x.pth", options)
    teacher.load_state_dict(loaded, strict=True)
    torch.testing.assert_close(teacher.model[10].conv_block[5].weight, state["model.10.conv_block.{}.weight".format(
        6 if dropout_layout else 5)])


# --- the boundary: generic code never names a family ---------------------------------------------------

GENERIC = [*sorted((ROOT / "engine" / "stages").glob("*.py")),
           *(ROOT / "engine" / f for f in ("search.py", "profile.py", "run_models.py", "export.py", "pipeline.py",
                                           "api.py", "preflight.py", "model_card.py", "cli.py", "config.py",
                                           "losses.py")),
           *sorted((ROOT / "workbench").glob("*.py"))]
FAMILY_WORDS = ("cyclegan", "pix2pix", "gaugan", "spade", "munit")
FAMILY_SPECIFIC_NAMES = ("paired", "MobileResnetGenerator", "MobileResnetSupernet", "mobile_resnet_macs",
                         "ResnetGenerator", "POSITIONS")


def _code_strings_and_names(path):
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield "string", node.value, node.lineno
        elif isinstance(node, ast.Name):
            yield "name", node.id, node.lineno
        elif isinstance(node, ast.Attribute):
            yield "name", node.attr, node.lineno
        elif isinstance(node, ast.alias):
            yield "name", node.name.split(".")[-1], getattr(node, "lineno", 0)


def test_generic_modules_name_no_family():
    offenders = []
    for path in GENERIC:
        for kind, value, line in _code_strings_and_names(path):
            if kind == "string" and any(word in value.lower() for word in FAMILY_WORDS) \
                    and "pytorch-cyclegan-and-pix2pix" not in value.lower():
                offenders.append(f"{path.relative_to(ROOT)}:{line} string {value!r}")
            if kind == "name" and (value in FAMILY_SPECIFIC_NAMES or value.lower() in FAMILY_WORDS):
                offenders.append(f"{path.relative_to(ROOT)}:{line} name {value}")
    assert offenders == []


def test_the_boundary_check_sees_a_family_name(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text('"""Docstrings may say CycleGAN."""\nif config.family == "pix2pix" or data.paired:\n    pass\n')
    found = list(_code_strings_and_names(module))
    assert ("string", "pix2pix", 2) in found and ("name", "paired", 2) in found
    assert not any(value == "Docstrings may say CycleGAN." for _, value, _ in found)
