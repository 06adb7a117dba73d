from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.settings import Settings


def test_environment_sets_workspace_and_store(monkeypatch, tmp_path):
    monkeypatch.setenv("GCW_WORKSPACE", str(tmp_path / "ws"))
    settings = Settings.from_env()
    assert settings.workspace == tmp_path / "ws"
    assert settings.resolved_store_url == f"sqlite:///{(tmp_path / 'ws' / 'store.sqlite').as_posix()}"
    monkeypatch.setenv("GCW_STORE_URL", "sqlite:////elsewhere/runs.db")
    assert Settings.from_env().resolved_store_url == "sqlite:////elsewhere/runs.db"


def test_explicit_values_override_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GCW_WORKSPACE", str(tmp_path / "env"))
    assert Settings.from_env(workspace=tmp_path / "arg").workspace == tmp_path / "arg"


def test_default_workspace_is_the_user_data_folder(monkeypatch):
    monkeypatch.delenv("GCW_WORKSPACE")
    assert "gan-compression-workbench" in str(Settings.from_env().workspace)


@pytest.mark.parametrize("env, value, message", [("GCW_DEVICE", "tpu", "device must be"),
                                                 ("GCW_THREADS", "many", "GCW_THREADS"),
                                                 ("GCW_THREADS", "0", "threads must be")])
def test_bad_values_say_what_to_fix(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env()


def test_settings_pass_to_a_child_process_through_the_environment(tmp_path):
    settings = Settings(workspace=tmp_path, store_url="sqlite:///x.db", inception_weights=Path("/w.pth"),
                        device="cpu", threads=2)
    env = settings.as_env()
    assert env == {"GCW_WORKSPACE": str(tmp_path), "GCW_DEVICE": "cpu", "GCW_STORE_URL": "sqlite:///x.db",
                   "GCW_INCEPTION_WEIGHTS": "/w.pth", "GCW_THREADS": "2"}
