"""GauGAN through the plug-in interface: the paper's figures, label maps in, BatchNorm re-calibration of
sub-networks, the checkpoint layouts of NVlabs/SPADE and gan-compression, and a whole tiny run."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torch.nn.utils import spectral_norm

import main
from engine.panels import LEGEND_HEIGHT
from engine.arch import Arch
from engine.data.labels import generator_input
from engine.data.layouts import DatasetConfig, open_dataset
from engine.data.transforms import PreprocessOptions
from engine.errors import ConfigError, DatasetError
from engine.export import export_checked
from engine.families import get_family
from engine.models.elastic import calibrate_batchnorm, subnet_of
from engine.models.spade import LabelEncoder
from engine.families.capabilities import dataset_settings, display_input, export_input_names, inputs_from_file, random_inputs
from tests.engine.metrics.segmenter import write_segmenter

FAMILY = get_family("gaugan")
TINY = FAMILY.options({"classes": 6, "instance_edges": False, "ngf": 4, "upsampling": "normal",
                       "calibration_images": 16})
SPACE = FAMILY.search_space(TINY, [[8, 4]] * 5 + [[8, 6, 4]] * 3)
SIZE = (64, 32)


def _labels(batch=4, seed=0, options=TINY, size=SIZE):
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([random_inputs(FAMILY, options, size, generator) for _ in range(batch)])


def test_profile_gives_the_papers_original_and_a_released_config(capsys):
    assert main.main(["profile", "--family", "gaugan", "--image-size", "512x256", "--json"]) == 0
    teacher = json.loads(capsys.readouterr().out)
    # ../shared/paper.md: GauGAN on Cityscapes 281G MACs, 93.0M parameters.
    assert teacher["macs"] == pytest.approx(281e9, rel=0.01) and teacher["params"] == pytest.approx(93.0e6, rel=0.01)
    assert main.main(["profile", "--family", "gaugan", "--image-size", "512x256", "--arch",
                      "32_32_32_48_32_24_24_32", "--json"]) == 0
    student = json.loads(capsys.readouterr().out)
    assert student["macs"] == pytest.approx(31.7e9, rel=0.02)  # the paper's compressed GauGAN: 31.7G
    assert main.main(["profile", "--family", "gaugan", "--image-size", "96"]) == 2
    assert "multiples of 64" in capsys.readouterr().err


def test_the_reference_space_and_options_are_cityscapes():
    options = FAMILY.options({})
    assert options.label_channels == 36 and options.upsampling == "more"
    space = FAMILY.default_search_space(options)
    assert space == [(64, 48, 40, 32)] * 5 + [(64, 48, 40, 32, 24)] * 3  # configs/spade_configs.py channels-64
    assert FAMILY.check_arch("32_32_32_48_32_24_24_32", space)


def test_the_generators_label_encoder_is_the_one_hot_map_with_instance_edges():
    ids = torch.randint(0, 7, (2, 12, 16))
    instances = torch.randint(0, 3, (2, 12, 16)) * 1000 + 26
    encoder = LabelEncoder(7, instance_edges=True)
    got = encoder(torch.stack([ids, instances], 1).float())
    torch.testing.assert_close(got, generator_input(ids, 7, instances), rtol=0, atol=0)


def _trained_statistics_of_another_arch(supernet, labels):
    """The supernet's running statistics as training leaves them: those of the largest sub-network."""
    supernet.train()
    with torch.no_grad():
        for _ in range(3):
            supernet(labels, Arch.largest(SPACE))


def test_calibration_gives_a_sub_network_its_own_statistics_and_extraction_keeps_them():
    torch.manual_seed(0)
    supernet = FAMILY.build_supernet(TINY, SPACE)
    labels = _labels(8, seed=1)
    _trained_statistics_of_another_arch(supernet, labels)
    arch = Arch.smallest(SPACE)
    with torch.no_grad():
        supernet.train()
        own_statistics = supernet(labels, arch)  # what the sub-network makes with its own batch statistics
        supernet.eval()
        uncalibrated = supernet(labels, arch)
        calibrate_batchnorm(supernet, lambda x: supernet(x, arch), [labels])
        supernet.eval()
        calibrated = supernet(labels, arch)
        subnet = subnet_of(supernet, arch).eval()
        extracted = subnet(labels)
    error_before = (uncalibrated - own_statistics).abs().mean().item()
    error_after = (calibrated - own_statistics).abs().mean().item()
    # One batch at momentum 1: its statistics, up to BatchNorm keeping the unbiased variance (n / (n - 1),
    # noticeable on the few pixels of the first blocks here).
    assert error_after < error_before / 5, (error_before, error_after)
    torch.testing.assert_close(extracted, calibrated, rtol=0, atol=1e-5)  # extraction = the calibrated slice


def test_recalibrated_sub_networks_score_better_as_the_search_scores_them(tmp_path):
    """The family's ``recalibrate`` on training batches, as the search calls it before scoring: the score
    (here PSNR to the sub-network's batch-statistics outputs on held-out label maps) with and without it."""
    torch.manual_seed(0)
    supernet = FAMILY.build_supernet(TINY, SPACE)
    train = [{"A": t, "B": torch.zeros(3, *SIZE)} for t in _labels(16, seed=2)]
    _trained_statistics_of_another_arch(supernet, _labels(8, seed=3))
    held_out = _labels(8, seed=4)
    arch = Arch(tuple(c[-1] for c in SPACE))

    def psnr_to_own_statistics() -> float:
        with torch.no_grad():
            supernet.eval()
            out = supernet(held_out, arch)
            supernet.train()
            reference = supernet(held_out, arch)
        mse = ((out - reference) ** 2).mean().item()
        return 10 * np.log10(4 / mse)

    without = psnr_to_own_statistics()
    FAMILY.recalibrate(supernet, arch, SimpleNamespace(train=train), TINY)
    assert not supernet.training
    with_calibration = psnr_to_own_statistics()
    assert with_calibration > without + 6, (without, with_calibration)


def test_spectral_norm_checkpoints_of_nvlabs_and_gan_compression_load_strictly(tmp_path):
    """NVlabs/SPADE trains its generator with spectral norms on the residual blocks' convolutions
    (``spectralspadesyncbatch3x3``) and saves ``weight_orig/u/v``, without ``num_batches_tracked`` in its
    synchronised BatchNorms; gan-compression nests it in a full-model dict. Both load as the network that
    ran in eval mode."""
    options = FAMILY.options({"classes": 6, "instance_edges": True, "ngf": 4, "upsampling": "normal"})
    torch.manual_seed(0)
    trained = FAMILY.build_teacher(options)
    for name, module in list(trained.named_modules()):
        if name.endswith(("conv_0", "conv_1", "conv_s")):
            spectral_norm(module)
    labels = _labels(2, seed=5, options=options)
    with torch.no_grad():
        trained.train()(labels)  # moves the power iteration and the running statistics
        expected = trained.eval()(labels)
    state = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert any(k.endswith("conv_0.weight_orig") for k in state)
    for raw in (state, {"netG": state, "optimizer": {}}):
        teacher = FAMILY.build_teacher(options)
        teacher.load_state_dict(FAMILY.teacher_state(raw, tmp_path / "latest_net_G.pth", options), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(teacher.eval()(labels), expected, rtol=0, atol=1e-5)


def _label_folder(root: Path, ids: np.ndarray) -> Path:
    (root / "test_label").mkdir(parents=True)
    (root / "test_img").mkdir()
    Image.fromarray(ids.astype(np.uint8)).save(root / "test_label" / "a.png")
    Image.fromarray(np.full((*ids.shape, 3), 200, np.uint8)).save(root / "test_img" / "a.jpg")
    return root / "test_label" / "a.png"


def test_a_label_map_opened_in_the_compare_view_is_class_ids_with_its_photograph(tmp_path):
    ids = np.zeros((40, 40), np.uint8)
    ids[:, 20:] = 5
    path = _label_folder(tmp_path, ids)
    inputs, target = inputs_from_file(FAMILY, path, TINY, SIZE)
    assert inputs.shape == (1, 1, *SIZE) and set(inputs.unique().tolist()) == {0.0, 5.0}
    assert target is not None and target.shape == (1, 3, *SIZE)
    shown = display_input(FAMILY, inputs, TINY)
    assert shown.shape == (1, 3, *SIZE) and not torch.equal(shown[0, :, 0, 0], shown[0, :, 0, -1])
    with pytest.raises(DatasetError, match=r"a\.png holds class ids \[5\] outside 0\.\.3"):
        inputs_from_file(FAMILY, path, FAMILY.options({"classes": 4, "instance_edges": False}), SIZE)


def test_the_exported_student_takes_label_maps_in_onnx_runtime(tmp_path):
    options = FAMILY.options({"classes": 6, "instance_edges": True, "ngf": 4, "upsampling": "normal"})
    student = FAMILY.build_student(options, Arch.smallest(FAMILY.search_space(options, [[8, 4]] * 8))).eval()
    labels = _labels(2, seed=6, options=options)
    path, parity = export_checked(student, tmp_path / "student.onnx", (labels,), None, export_input_names(FAMILY, TINY),
                                  FAMILY.output_names)
    assert parity.ok
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["label"] and session.get_inputs()[0].shape[1] == 2
    out = session.run(None, {"label": labels[:1].numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, student(labels[:1]).numpy(), atol=1e-4)


def test_the_labelmap_dataset_feeds_the_generator(tmp_path):
    ids = np.zeros((40, 40), np.uint8)
    ids[10:] = 3
    _label_folder(tmp_path, ids)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="labelmap", phase="test",
                                         preprocess=PreprocessOptions.for_testing(SIZE),
                                         **dataset_settings(FAMILY, TINY)))
    batch = dataset[0]["A"][None]
    with torch.no_grad():
        assert FAMILY.build_teacher(TINY).eval()(batch).shape == (1, 3, *SIZE)


@pytest.mark.slow
def test_a_tiny_gaugan_run_end_to_end(settings, store, tmp_path, capsys):
    import yaml

    config = {
        "name": "tiny-gaugan", "family": "gaugan",
        "dataset": {"sample": "labels2photos", "sample_size": 64, "sample_train": 12, "sample_test": 4,
                    "search_images": 4, "test_images": 4},
        "image_size": 64, "batch_size": 2,
        "model": {"classes": 8, "instance_edges": False, "ngf": 4, "upsampling": "normal", "calibration_images": 4},
        "teacher": {"steps": 4}, "supernet": {"steps": 4, "search_space": [[8, 4]] * 8},
        # A short evolution and a quick export: the wiring is tested here, not the search's reach or the variants.
        "search": {"macs_budget": 0.03e9, "method": "evolution", "population": 6, "generations": 1},
        "export": {"latency_time_cap_s": 1, "variants": []}, "finetune": {"steps": 2}, "log_every": 1,
        # Scored by mIoU, with a segmentation network the user brings as ONNX.
        "metric": "miou", "segmentation": {"onnx": str(write_segmenter(tmp_path / "seg.onnx", 8, size=64))}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main.main(["compress", "--config", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["student"]["macs"] <= 0.03e9 < summary["teacher"]["macs"]
    assert summary["onnx_max_abs_diff"] <= 1e-3
    for side in ("teacher", "student"):  # percent, counted at the label maps' own resolution (the reference's)
        assert 0 <= summary[side]["metrics"]["miou"] <= 100
    assert summary["metric_notes"] == {"miou": "percent, at 64x64"}
    assert "segmenter in " in summary["search"]["scoring_backend"]  # where it runs, and why, in the summary
    candidates = store.candidates(summary["run_id"])
    assert candidates and all(0 <= c.metrics["miou"] <= 100 for c in candidates)
    card = json.loads(Path(summary["model_card_path"]).read_text())
    assert card["inputs"] == ["label"] and card["model"]["classes"] == 8
    grid = Image.open(Path(summary["onnx_path"]).parent / "grid.png")
    assert grid.size == (5 * 64, 4 * 64 + LEGEND_HEIGHT)  # label map | ground truth | teacher | student | difference
    run = store.get_run(summary["run_id"])
    assert store.metric_series(run.id, "supernet", "G_feat") and store.metric_series(run.id, "supernet", "G_distill")


def test_with_vgg_weights_on_disk_the_distillation_adds_the_perceptual_loss(tmp_path, monkeypatch):
    from engine import perceptual
    from engine.families import DistillState
    from engine.losses import GANLoss

    torch.manual_seed(0)
    path = tmp_path / "vgg19-test.pth"
    torch.save(perceptual.VGG19Features().state_dict(), path)
    monkeypatch.setenv("GCW_VGG_WEIGHTS", str(path))
    recipe = FAMILY.default_recipe
    teacher = FAMILY.build_teacher(TINY).eval().requires_grad_(False)
    supernet = FAMILY.build_supernet(TINY, SPACE)
    mappings = FAMILY.build_mappings(TINY, Arch.largest(SPACE), recipe.init)
    netD = FAMILY.build_discriminator(TINY, 8)
    state = DistillState(teacher=teacher, forward=supernet.forward_with_features, mappings=mappings, netD=netD,
                         opt_g=torch.optim.Adam(list(supernet.parameters()) + list(mappings.parameters())),
                         opt_d=torch.optim.Adam(netD.parameters()), criterion=GANLoss("hinge"), recipe=recipe,
                         extras=FAMILY.distill_extras(TINY))
    batch = {"A": _labels(2, seed=7), "B": torch.rand(2, 3, *SIZE) * 2 - 1}
    losses = FAMILY.distill_step(state, batch, Arch.smallest(SPACE))
    assert losses["G_vgg"] > 0 and set(losses) == set(FAMILY.loss_names)


def test_a_teacher_recipe_without_any_generator_loss_is_refused_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv("GCW_VGG_WEIGHTS", str(tmp_path / "absent.pth"))  # no perceptual loss either
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    recipe = FAMILY.default_recipe.model_copy(update={"lambda_gan": 0.0, "lambda_feat": 0.0})
    trainer = FAMILY.teacher_trainer(TINY, recipe, seed=0)
    params = lambda prefix: [p for k, n in trainer.nets.items() if k.startswith(prefix) for p in n.parameters()]
    batch = {"A": _labels(2, seed=3), "B": torch.rand(2, 3, *SIZE) * 2 - 1}
    with pytest.raises(ConfigError, match="lambda_gan or lambda_feat"):
        trainer.step(batch, torch.optim.Adam(params("G")), torch.optim.Adam(params("D")))


def test_a_teacher_trained_here_has_spectral_norms_and_is_saved_as_the_plain_network_it_runs_as():
    """scripts/gaugan/cityscapes/train_full.sh trains NVlabs' generator with spectral norms on its residual blocks'
    convolutions; the teacher stage folds them, so the saved teacher loads strictly and gives the same images."""
    from engine.checkpoints import fold_spectral_norm

    recipe = FAMILY.default_recipe
    assert recipe.teacher_spectral_norm
    torch.manual_seed(0)
    trainer = FAMILY.teacher_trainer(TINY, recipe.with_overrides({"lambda_vgg": 0}), seed=0)
    netG = trainer.nets["G"]
    assert hasattr(netG.head_0.conv_0, "weight_orig") and hasattr(netG.up_0.conv_s, "weight_orig")
    labels = _labels(2, seed=5)
    batch = {"A": labels, "B": torch.rand(2, 3, *SIZE) * 2 - 1}
    opt_g = torch.optim.Adam(netG.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(trainer.nets["D"].parameters(), lr=1e-3)
    trainer.step(batch, opt_g, opt_d)
    plain = FAMILY.build_teacher(TINY)
    plain.load_state_dict(fold_spectral_norm(netG.state_dict()))  # strict: every key fits
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(labels), netG.eval()(labels), rtol=0, atol=1e-5)
    unnormed = FAMILY.teacher_trainer(TINY, recipe.with_overrides({"teacher_spectral_norm": False}), seed=0)
    assert not hasattr(unnormed.nets["G"].head_0.conv_0, "weight_orig")


def test_calibration_draws_random_images_and_per_candidate_orders_and_flips():
    """The reference's calibration loader: 512 training images, shuffled and flipped for every sub-network. Here
    the images are a random subset of the whole training set (not its first files: on a sorted list those could
    be one scene), and each arch's draw is seeded by the arch, so that its score is reproducible."""
    train = [{"A": torch.full((1, 4, 4), float(i)) + torch.arange(4.0)} for i in range(40)]
    data = SimpleNamespace(train=train)
    options = FAMILY.options({**TINY.model_dump(), "calibration_images": 20})
    first = FAMILY._calibration_batches(data, options, "8_8_8_8_8_8_8_8")
    maps = torch.cat(first)
    assert [len(b) for b in first] == [16, 4]
    ids = sorted({int(m[0, 0].min().item()) for m in maps})
    assert len(ids) == 20 and max(ids) >= 20  # a random subset of all 40, not the first 20
    again = torch.cat(FAMILY._calibration_batches(data, options, "8_8_8_8_8_8_8_8"))
    other = torch.cat(FAMILY._calibration_batches(data, options, "4_4_4_4_4_4_4_4"))
    assert torch.equal(maps, again) and not torch.equal(maps, other)  # reproducible per arch, drawn per arch
    assert sorted(int(m[0, 0].min()) for m in other) == sorted(int(m[0, 0].min()) for m in maps)  # same images
    flipped = [bool(m[0, 0, 0] > m[0, 0, -1]) for m in maps]
    assert 0 < sum(flipped) < len(flipped)  # some flipped, some not
    fixed = FAMILY.options({**options.model_dump(), "calibration_draw": "fixed"})
    assert torch.equal(torch.cat(FAMILY._calibration_batches(data, fixed, "8_8_8_8_8_8_8_8")),
                       torch.cat(FAMILY._calibration_batches(data, fixed, "4_4_4_4_4_4_4_4")))
