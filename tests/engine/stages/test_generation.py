"""Where a search generates its candidates' images: OpenVINO only where it gives PyTorch's images (and score) on
the probe, and, asked for ``auto``, only where it is faster for the split as timed on the probe; a candidate
it cannot convert is still generated, in PyTorch."""

from __future__ import annotations

import pytest
import torch

from engine import openvino_runtime
from engine.arch import Arch
from engine.families import get_family
from engine.families.capabilities import conditioning_of
from engine.stages.generation import (IMAGE_TOLERANCE, TRACE_SIDE, CandidateGenerator, GenerationChoice,
                                      OpenVINOGenerator, choose_generation, relative_difference, trace_examples)

needs_openvino = pytest.mark.skipif(not openvino_runtime.available(), reason=openvino_runtime.MISSING)
CPU = torch.device("cpu")
SPACE = [[8, 4]] * 8


def _supernet(family_name: str = "cyclegan", model: dict | None = None, space=SPACE):
    torch.manual_seed(0)
    family = get_family(family_name)
    options = family.options(model or {"ngf": 8, "n_blocks": 3})
    return family, options, family.build_supernet(options, family.search_space(options, space)).eval()


def _images(count: int, size: int = 32, channels: int = 3) -> torch.Tensor:
    return torch.rand(count, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def _mean_score(images: torch.Tensor) -> float:
    return float(images.double().mean()) + 2.0


@needs_openvino
@pytest.mark.parametrize("family_name", ["cyclegan", "munit"])
def test_openvino_generates_the_candidates_images_pytorch_does(family_name):
    if family_name == "munit":  # a family whose generator takes conditioning (style codes) beside the images
        family, options, supernet = _supernet("munit", {"ngf": 4, "mlp_dim": 8, "student_mlp_dim": 8}, [[4, 2]] * 10)
        images, size = _images(5, 64), 64
        conditioning = conditioning_of(family, options, 5, 3)
    else:  # 64 px: traced at 32 (trace_examples), compiled for 64
        family, options, supernet = _supernet()
        images, conditioning = _images(5, 64), ()
    arch = Arch.smallest(family.search_space(options, [[4, 2]] * 10 if family_name == "munit" else SPACE))
    choice = choose_generation(supernet, arch, images[:3], tuple(c[:3] for c in conditioning), "openvino", CPU,
                               _mean_score, 5)
    assert choice.backend == "openvino" and choice.image_difference <= IMAGE_TOLERANCE, choice.note
    assert "checked against PyTorch on 3 images" in choice.note and "\n" not in choice.note
    generator = CandidateGenerator(supernet, CPU, choice)
    for candidate in (arch, Arch.largest(family.search_space(options, [[4, 2]] * 10 if family_name == "munit"
                                                              else SPACE))):
        fast = generator(candidate, images, conditioning)
        exact = generator.eager(candidate, images, conditioning)
        assert fast.shape == exact.shape and relative_difference(fast, exact) <= IMAGE_TOLERANCE
    assert generator.fallbacks == 0


class Clock:
    """Time that passes only where the test says: a set-up, an image in OpenVINO, an image in PyTorch."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _timed(clock: Clock, supernet, set_up: float, per_image: float, eager_per_image: float, drift: float = 0.0):
    supernet.register_forward_pre_hook(lambda _module, args: setattr(clock, "now", clock.now + eager_per_image
                                                                      * len(args[0])))

    def compile_generator(network, example, threads):
        clock.now += set_up

        def run(inputs, conditioning=()):
            clock.now += per_image * len(inputs)
            with torch.no_grad():
                return network(inputs, *conditioning) * (1 + drift)
        return run
    return compile_generator


def test_a_candidate_is_traced_at_a_reduced_size_its_other_inputs_as_they_are():
    images, style = torch.rand(4, 3, 256, 128), torch.rand(4, 8, 1, 1)
    (traced, traced_style), spatial = trace_examples((images, style))
    assert traced.shape == (1, 3, 2 * TRACE_SIDE, TRACE_SIDE) and traced_style.shape == (1, 8, 1, 1)
    assert spatial == [True, False]
    assert torch.equal(traced[0, :, 1, 1], images[0, :, 4, 4])  # subsampled: a label map keeps its values
    labels = torch.rand(2, 2, 96, 96)  # a side that does not halve down to TRACE_SIDE evenly: halved while it does
    assert trace_examples((labels, torch.rand(2, 2, 96, 96)))[0][1].shape == (1, 2, 48, 48)
    for small in (torch.rand(2, 3, 32, 32), torch.rand(2, 3, 33, 64), torch.rand(2, 16)):  # nothing to gain or to halve
        (traced,), spatial = trace_examples((small,))
        assert torch.equal(traced, small[:1]) and spatial == [False]


@needs_openvino
def test_auto_takes_openvino_only_where_its_set_up_is_paid_back_on_the_split():
    family, options, supernet = _supernet()
    arch, clock = Arch.smallest(family.search_space(options, SPACE)), Clock()
    fast = _timed(clock, supernet, set_up=1.0, per_image=0.06, eager_per_image=0.14)  # 256 px as measured here
    choice = choose_generation(supernet, arch, _images(4), (), "auto", CPU, _mean_score, 50,
                               compile_generator=fast, clock=clock)
    assert choice.backend == "openvino"
    assert "set-up 1.00 s + 60 ms an image against 140 ms an image eagerly" in choice.note
    # 64 px: PyTorch takes 10 ms an image, the set-up alone is worth 100 of them.
    family, options, supernet = _supernet()
    clock = Clock()
    slow = _timed(clock, supernet, set_up=1.0, per_image=0.004, eager_per_image=0.01)
    choice = choose_generation(supernet, arch, _images(4), (), "auto", CPU, _mean_score, 50,
                               compile_generator=slow, clock=clock)
    assert choice.backend == "pytorch" and "exact here" in choice.note and "not faster for 50 images" in choice.note
    # Asked for by name, OpenVINO is used wherever it is exact, faster or not.
    choice = choose_generation(supernet, arch, _images(4), (), "openvino", CPU, _mean_score, 50,
                               compile_generator=slow, clock=clock)
    assert choice.backend == "openvino"


@needs_openvino
def test_auto_converts_nothing_where_the_split_is_generated_faster_than_any_set_up():
    def never(*_):
        raise AssertionError("converted although no set-up could be paid back")

    family, options, supernet = _supernet()
    clock = Clock()
    _timed(clock, supernet, set_up=0.0, per_image=0.0, eager_per_image=0.002)  # 50 images in 0.1 s
    choice = choose_generation(supernet, Arch.smallest(family.search_space(options, SPACE)), _images(4), (), "auto",
                               CPU, _mean_score, 50, compile_generator=never, clock=clock)
    assert choice.backend == "pytorch" and "0.10 s for the split's 50 images, less than an OpenVINO set-up" in choice.note
    # A busy machine's stall in one of the two eager readings does not make OpenVINO look worth converting for.
    calls = []
    supernet.register_forward_pre_hook(lambda _module, args: calls.append(1) or (
        setattr(clock, "now", clock.now + 5.0) if len(calls) == 2 else None))
    choice = choose_generation(supernet, Arch.smallest(family.search_space(options, SPACE)), _images(4), (), "auto",
                               CPU, _mean_score, 50, compile_generator=never, clock=clock)
    assert choice.backend == "pytorch" and "0.10 s for the split's 50 images" in choice.note


@needs_openvino
def test_a_backend_that_drifts_or_cannot_convert_is_said_in_one_line_and_pytorch_used():
    family, options, supernet = _supernet()
    arch, clock = Arch.smallest(family.search_space(options, SPACE)), Clock()
    drifting = _timed(clock, supernet, set_up=0.0, per_image=0.0, eager_per_image=1.0, drift=1e-3)
    choice = choose_generation(supernet, arch, _images(4), (), "openvino", CPU, _mean_score, 50,
                               compile_generator=drifting, clock=clock)
    assert choice.backend == "pytorch" and "differs from it on 4 images" in choice.note and "\n" not in choice.note
    assert choice.image_difference == pytest.approx(1e-3, rel=1e-3)

    def broken(network, example, threads):
        raise RuntimeError("unsupported operation aten::frobnicate")

    choice = choose_generation(supernet, arch, _images(4), (), "openvino", CPU, _mean_score, 50,
                               compile_generator=broken)
    assert choice.backend == "pytorch"
    assert "could not convert the sub-network (RuntimeError: unsupported operation aten::frobnicate)" in choice.note


def test_pytorch_forced_or_off_the_cpu_never_converts():
    def never(*_):
        raise AssertionError("converted although PyTorch was asked for")

    family, options, supernet = _supernet()
    arch = Arch.smallest(family.search_space(options, SPACE))
    for requested, device, words in (("pytorch", CPU, "scoring_backend: pytorch"),
                                     ("auto", torch.device("cuda:0"), "on cuda:0")):
        choice = choose_generation(supernet, arch, _images(2), (), requested, device, _mean_score, 50,
                                   compile_generator=never)
        assert choice.backend == "pytorch" and words in choice.note


def test_a_candidate_openvino_cannot_convert_is_generated_in_pytorch():
    def broken(network, example, threads):
        raise RuntimeError("no converter for this one")

    family, options, supernet = _supernet()
    arch = Arch.largest(family.search_space(options, SPACE))
    generator = CandidateGenerator(supernet, CPU, GenerationChoice("openvino", "chosen"), compile_generator=broken)
    images = _images(3)
    assert torch.equal(generator(arch, images), generator.eager(arch, images))
    assert generator.fallbacks == 1


@needs_openvino
def test_the_compiled_sub_network_runs_any_number_of_images():
    family, options, supernet = _supernet()
    from engine.models.elastic import subnet_of

    subnet = subnet_of(supernet, Arch.largest(family.search_space(options, SPACE)))
    network = OpenVINOGenerator(subnet, (_images(1),))
    for count in (1, 4):
        images = _images(count)
        with torch.no_grad():
            assert relative_difference(network(images), subnet(images)) <= IMAGE_TOLERANCE


def _recording_compiler(log):
    """A stand-in for OpenVINO that runs the plain sub-network, noting which thread set each one up."""
    import threading

    def compile_generator(network, example, threads):
        log.append(("set up", tuple(example[0].shape), threading.current_thread().name))
        return lambda inputs, conditioning=(): network(inputs, *conditioning)

    return compile_generator


def test_the_next_candidates_set_up_runs_ahead_on_its_own_thread_and_its_calibration_where_it_is_asked():
    family, options, supernet = _supernet()
    space = family.search_space(options, SPACE)
    first, second, third = Arch.smallest(space), Arch.largest(space), Arch((8, 4) * 4)
    events: list = []
    generator = CandidateGenerator(supernet, CPU, GenerationChoice("openvino", "chosen"),
                                   compile_generator=_recording_compiler(events))
    images = _images(3)
    calibrated = lambda arch: lambda: events.append(("calibrated", arch))  # noqa: E731
    with torch.no_grad():
        made = generator(first, images, before=calibrated(first))
        generator.prepare(second, (images,), before=calibrated(second))
        assert events[2] == ("calibrated", second)  # now, on this thread, before the set-up is started
        ahead = generator(second, images, before=calibrated(second))
        generator.prepare(third, (images,), before=calibrated(third))
        other = generator(first, images, before=calibrated(first))  # not the one prepared: set up now
    generator.close()
    assert [e[:2] for e in events] == [("calibrated", first), ("set up", (3, 3, 32, 32)), ("calibrated", second),
                                       ("set up", (1, 3, 32, 32)), ("calibrated", third), ("set up", (1, 3, 32, 32)),
                                       ("calibrated", first), ("set up", (3, 3, 32, 32))]
    threads = [e[2] for e in events if e[0] == "set up"]
    assert threads[1].startswith("candidate-set-up") and threads[2].startswith("candidate-set-up")
    assert not threads[0].startswith("candidate-set-up") and not threads[3].startswith("candidate-set-up")
    assert generator.ahead == 1 and generator.fallbacks == 0
    for arch, fast in ((first, made), (second, ahead), (first, other)):
        assert torch.equal(fast, generator.eager(arch, images))


def test_nothing_is_set_up_ahead_for_pytorch_and_a_failed_set_up_ahead_is_generated_eagerly():
    family, options, supernet = _supernet()
    space = family.search_space(options, SPACE)
    arch = Arch.largest(space)
    calls: list = []
    eager = CandidateGenerator(supernet, CPU, GenerationChoice("pytorch", "asked"),
                               compile_generator=lambda *_: calls.append("converted"))
    eager.prepare(arch, (_images(2),), before=lambda: calls.append("calibrated ahead"))
    eager(arch, _images(2), before=lambda: calls.append("calibrated"))
    assert calls == ["calibrated"]  # PyTorch's candidates: calibrated and generated when asked, as ever

    def broken(network, example, threads):
        raise RuntimeError("no converter for this one")

    generator = CandidateGenerator(supernet, CPU, GenerationChoice("openvino", "chosen"), compile_generator=broken)
    generator.prepare(arch, (_images(2),))
    images = _images(2)
    assert torch.equal(generator(arch, images), generator.eager(arch, images))
    assert generator.fallbacks == 1 and generator.ahead == 1
    generator.close()
