"""mIoU with a user's ONNX segmentation network: a network that recovers the label map scores 100 (percent),
errors lower it as per-class intersection over union says, unlisted label ids are not counted, label maps at
another resolution are compared with the class scores resized bilinearly to it (as the reference), and a run
asking for mIoU without a network is told what to set."""

import json

import numpy as np
import pytest
import torch

from engine.config import load_config
from engine.data.labels import colourise
from engine.errors import ConfigError
from engine.metrics.segmentation import SegmentationNetwork, confusion, mean_iou, miou
from tests.engine.metrics.segmenter import write_segmenter


def _labels(classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, (3, 4, 4), generator=generator).repeat_interleave(4, 1).repeat_interleave(4, 2)


def test_a_network_that_recovers_the_label_map_scores_one_and_errors_lower_it(tmp_path):
    network = SegmentationNetwork(write_segmenter(tmp_path / "seg.onnx", 5), None)
    labels = _labels()
    images = colourise(labels[:, None].float(), 5)
    assert miou(network, images, labels, batch_size=2) == pytest.approx(100.0)
    wrong = labels.clone()
    wrong[0, :8] = (wrong[0, :8] + 1) % 5
    score = miou(network, colourise(wrong[:, None].float(), 5), labels)
    matrix = np.zeros((5, 5), np.int64)
    np.add.at(matrix, (labels.flatten().numpy(), wrong.flatten().numpy()), 1)
    iou = np.diag(matrix) / (matrix.sum(0) + matrix.sum(1) - np.diag(matrix))
    assert score == pytest.approx(100 * iou[~np.isnan(iou)].mean()) and score < 100


def test_the_class_list_maps_outputs_to_label_ids_and_unlisted_ids_are_not_counted(tmp_path):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"label_ids": [10, 11, 12, 13, 14]}))
    network = SegmentationNetwork(write_segmenter(tmp_path / "seg.onnx", 5), str(classes))
    outputs = _labels()
    truth = outputs + 10
    truth[1] = 3  # an id the network does not know (an ignore label): those pixels do not count
    assert miou(network, colourise(outputs[:, None].float(), 5), truth) == pytest.approx(100.0)
    with pytest.raises(ConfigError, match="lists 2 label ids, but the network gives 5"):
        SegmentationNetwork(tmp_path / "seg.onnx", [1, 2]).predict(colourise(outputs[:1, None].float(), 5))


def test_label_maps_at_their_own_resolution_are_compared_with_the_scores_resized_bilinearly(tmp_path):
    """The reference's way (``resize_4d_tensor``: each class's scores resized with PIL's bilinear filter to the
    label map's 2048x1024, then the best class): written here with PIL as the oracle, on label maps 4x the
    images' size read from PNG files at their own resolution."""
    from PIL import Image

    from engine.metrics.segmentation import read_label_maps, resolution_words

    network = SegmentationNetwork(write_segmenter(tmp_path / "seg.onnx", 5), None)
    generator = torch.Generator().manual_seed(3)
    outputs = torch.randint(0, 5, (2, 16, 16), generator=generator)  # what the generator drew, per pixel
    images = colourise(outputs[:, None].float(), 5)
    scores = network.scores(images).numpy()
    oracle = np.stack([np.stack([np.array(Image.fromarray(channel).resize((64, 64), Image.BILINEAR))
                                 for channel in image]) for image in scores]).argmax(1)
    paths = []
    for i, labels in enumerate(oracle):
        truth = labels.astype(np.uint8)
        truth[i, :] = 4 - truth[i, :]  # a row each the network gets wrong
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(truth).save(paths[-1])
    truth = read_label_maps(paths)
    assert truth[0].shape == (64, 64) and truth[0].dtype == np.uint8
    expected = confusion(torch.from_numpy(oracle), torch.from_numpy(np.stack(truth)).long(), [0, 1, 2, 3, 4])
    assert miou(network, images, truth) == pytest.approx(100 * mean_iou(expected), rel=1e-12)
    assert 90 < miou(network, images, truth) < 100
    assert resolution_words(truth) == "percent, at 64x64"
    # Shrinking (label maps smaller than the images) follows PIL's filter too, pixel for pixel.
    small = np.stack([np.stack([np.array(Image.fromarray(channel).resize((13, 11), Image.BILINEAR))
                                for channel in image]) for image in scores]).argmax(1)
    assert torch.equal(network.predict(images, (11, 13)), torch.from_numpy(small))


def test_mean_iou_counts_only_classes_that_occur():
    matrix = confusion(torch.tensor([[0, 0, 1]]), torch.tensor([[0, 1, 1]]), [0, 1, 2])
    assert mean_iou(matrix) == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_a_run_asking_for_miou_is_told_what_it_needs(tmp_path):
    base = {"family": "gaugan", "dataset": {"sample": "labels2photos"}, "image_size": 64,
            "model": {"classes": 8, "instance_edges": False, "upsampling": "normal", "ngf": 8},
            "search": {"target_ratio": 2}}
    with pytest.raises(ConfigError, match="metric miou needs a segmentation network: set segmentation.onnx"):
        load_config(overrides={**base, "metric": "miou"})
    config = load_config(overrides={**base, "metric": "miou", "segmentation": {"onnx": str(tmp_path / "x.onnx")}})
    assert config.segmentation.onnx.endswith("x.onnx")
    with pytest.raises(ConfigError, match="metric miou is not available for pix2pix"):
        load_config(overrides={"family": "pix2pix", "dataset": {"sample": "edges2photos"}, "metric": "miou"})
    with pytest.raises(ConfigError, match="segmentation model not found"):
        SegmentationNetwork(tmp_path / "x.onnx", None)


def test_the_segmenter_runs_in_openvino_only_where_it_gives_onnx_runtimes_scores_faster(tmp_path, monkeypatch):
    """Checked on real images before it is used: the same classes and scores within 1e-4 (then the same mIoU),
    and faster here (timed by the run; a fixed ratio in the test); a backend that drifts or is slower, or a run
    that asks for the reference's runtime, keeps ONNX Runtime, said in words."""
    from engine import openvino_runtime

    path = write_segmenter(tmp_path / "seg.onnx", 5)
    labels = _labels()
    images = colourise(labels[:, None].float(), 5)
    exact = miou(SegmentationNetwork(path, None), images, labels)
    network = SegmentationNetwork(path, None)
    said = network.choose_backend("auto", images, timed=lambda slow, fast: 1.6)
    assert said.startswith("segmenter in OpenVINO") and "checked against ONNX Runtime on 3 real images" in said
    assert "1.60x its speed here" in said
    assert network.openvino is not None and miou(network, images, labels) == pytest.approx(exact, rel=1e-12)
    slower = SegmentationNetwork(path, None)
    said = slower.choose_backend("auto", images, timed=lambda slow, fast: 0.9)
    assert slower.openvino is None and "matched it" in said and "was not faster on this machine (0.90x" in said

    kept = SegmentationNetwork(path, None)
    assert kept.choose_backend("pytorch", images) == "segmenter in ONNX Runtime (search.scoring_backend: pytorch)"
    assert kept.openvino is None

    real_compile = openvino_runtime.compile_model

    def drifting(*args, **kwargs):
        compiled = real_compile(*args, **kwargs)

        class Drifting:
            def output(self, index):
                return compiled.output(index)

            def __call__(self, feed):
                return {compiled.output(0): np.asarray(compiled(feed)[compiled.output(0)]) * 1.01}
        return Drifting()

    monkeypatch.setattr(openvino_runtime, "compile_model", drifting)
    drifted = SegmentationNetwork(path, None)
    said = drifted.choose_backend("auto", images, timed=lambda slow, fast: 1.6)
    assert said.startswith("segmenter in ONNX Runtime: OpenVINO") and "differs from it on 3 real images" in said
    assert drifted.openvino is None and miou(drifted, images, labels) == exact
