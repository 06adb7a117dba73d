"""A store that cannot be used: damaged, read-only, full, or a URL without its driver. Each is a clear
error naming the store and what to fix (exit code 2, no traceback), and nothing already in it is lost."""

import sqlite3

import pytest
import yaml

from engine import cli
from engine.errors import UserError
from engine.store import open_store
from tests.engine.stages.tiny import tiny_config


def _runs(capsys, *args):
    code = cli.main([*args, "runs"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_a_damaged_store_file(settings, capsys):
    settings.workspace.mkdir(parents=True)
    (settings.workspace / "store.sqlite").write_bytes(b"\x13garbage, not a database" * 200)
    code, err = _runs(capsys)
    assert code == 2
    assert f"the store {settings.workspace / 'store.sqlite'} is not an SQLite database" in err
    assert "move it aside" in err


@pytest.mark.parametrize("url, expected", [
    ("notadb://somewhere/x", "SQLAlchemy knows no database 'notadb'"),
    ("mysql://user@localhost/runs", "needs the mysql driver"),
    ("not a url at all", "is not a SQLAlchemy URL"),
])
def test_a_store_url_that_cannot_work(capsys, url, expected):
    code, err = _runs(capsys, "--store-url", url)
    assert code == 2 and expected in err


def test_a_postgresql_url_without_its_driver_names_the_package(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_psycopg(name, *args, **kwargs):
        if name.split(".")[0] in ("psycopg", "psycopg2"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_psycopg)
    code, err = _runs(capsys, "--store-url", "postgresql://user:secret@localhost/runs")
    assert code == 2 and "pip install psycopg[binary]" in err and "secret" not in err


def test_a_store_folder_that_cannot_be_made(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    code, err = _runs(capsys, "--store-url", f"sqlite:///{blocker}/store.sqlite")
    assert code == 2 and str(blocker) in err


def test_a_read_only_store_refuses_a_new_run_and_keeps_its_runs(settings, tmp_path, capsys):
    path = settings.workspace / "store.sqlite"
    store = open_store(f"sqlite:///{path}")
    run_id = store.create_run(name="kept", family="pix2pix", dataset="x", config={}, stages=["teacher"])
    store.close()
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    # SQLite's read-only mode stands for a read-only file system (root ignores file permissions).
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert cli.main(["--store-url", url, "compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "is read-only" in err and "Traceback" not in err
    with sqlite3.connect(path) as connection:
        assert connection.execute("select name from runs where id = ?", (run_id,)).fetchone() == ("kept",)


def test_a_full_disk_under_the_store_is_named(monkeypatch):
    from sqlalchemy.exc import OperationalError

    from engine.store.store import store_error

    error = store_error(OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")),
                        "sqlite:////data/ws/store.sqlite")
    assert isinstance(error, UserError)
    assert "the disk holding the store sqlite:////data/ws/store.sqlite is full" in str(error)
