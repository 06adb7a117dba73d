"""The new-run form as plain data: a preset in, the run's configuration out, and the form's own checks; no
QApplication."""

from engine.api import load_config
from workbench.session.new_run_form import NewRunForm, unique_name


def test_a_preset_read_into_the_form_and_back_is_the_preset():
    form = NewRunForm.from_preset("gaugan-sample")
    config, problems = form.config()
    assert problems == [] and config == load_config("gaugan-sample")
    assert form.dataset_layout() == "labelmap" and form.budget == "ratio" and form.ratio == 4.0


def test_each_budget_kind_sets_only_its_own_fields():
    form = NewRunForm.from_preset("pix2pix-sample")
    macs = form.with_(budget="macs", macs_millions=250).overrides()["search"]
    assert (macs["macs_budget"], macs["target_ratio"], macs["latency_budget_ms"]) == (250e6, None, None)
    latency = form.with_(budget="latency", latency_ms=12.5, latency_backend="openvino").overrides()["search"]
    assert (latency["latency_budget_ms"], latency["latency_backend"], latency["target_ratio"]) == (12.5, "openvino", None)
    assert form.with_(image_size="512x256").overrides()["image_size"] == "512x256"
    assert form.with_(image_size=" 96 ").overrides()["image_size"] == 96
    assert form.with_(train_crop=0).overrides()["train_crop"] is None  # whole images
    assert form.search_seed == -1 and form.overrides()["search"]["seed"] is None  # the run's own seed
    seeded, _ = form.with_(search_seed=11).config()
    assert seeded.search.seed == 11 and NewRunForm.from_preset("pix2pix-sample").with_(search_seed=11) == \
        form.with_(search_seed=11)


def test_the_forms_own_problems_name_their_field_and_the_fix(tmp_path):
    taken = {"pix2pix-sample", "pix2pix-sample-2"}
    form = NewRunForm.from_preset("pix2pix-sample", taken)
    assert form.name == "pix2pix-sample-3" and form.own_problems(taken) == []
    named = form.with_(name="pix2pix-sample").own_problems(taken)
    assert [(p.field, "pix2pix-sample-3" in p.message) for p in named] == [("name", True)]
    no_folder = form.with_(sample=None, folder="").own_problems(taken)
    assert [(p.field, p.message) for p in no_folder] == [("dataset.path", "choose a dataset folder")]
    missing = form.with_(teacher_checkpoint=str(tmp_path / "latest_net_G.pth")).own_problems(taken)
    assert [p.field for p in missing] == ["teacher.checkpoint"] and "not found" in missing[0].message
    assert form.with_(segmentation="seg.onnx").segmentation_spec() is None  # pix2pix has no mIoU


def test_a_value_the_configuration_refuses_is_a_problem_not_an_exception():
    config, problems = NewRunForm.from_preset("cyclegan-sample").with_(image_size="abc").config()
    assert config is None and len(problems) == 1 and "image_size" in problems[0].message


def test_unique_names():
    assert unique_name("a", set()) == "a" and unique_name("a", {"a", "a-2"}) == "a-3"
