"""Bad input a user can give: a clear error naming what to fix, exit code 2, no traceback."""

import pytest

from engine import cli


@pytest.mark.parametrize("text, expected", [
    ("preset: [a, b]\n", "preset must be one name, not ['a', 'b']"),
    ("preset: pix2pix-sample\nteacher: {checkpoint: 5}\n", "teacher.checkpoint must be a path (text), not 5"),
])
def test_config_values_of_the_wrong_kind(tmp_path, capsys, text, expected):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_text_file_given_as_the_teacher_checkpoint(tmp_path, capsys):
    teacher = tmp_path / "latest_net_G.pth"
    teacher.write_text("not weights\n")
    config = tmp_path / "run.yaml"
    config.write_text(f"preset: pix2pix-sample\nteacher: {{checkpoint: {teacher}}}\n")
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{teacher} is not a PyTorch checkpoint" in err and "Traceback" not in err
