"""Which program child runs use: this interpreter with the entry module, or the bundled executable."""

import sys

from workbench.background.children import child_command


def test_child_runs_use_this_interpreter_and_the_entry_module():
    program, arguments = child_command(["compress", "--config", "x.yaml"])
    assert program == sys.executable and arguments == ["-m", "workbench.entry", "compress", "--config", "x.yaml"]


def test_child_runs_of_a_bundled_application_are_the_bundle_itself(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/gcw/gcw")
    assert child_command(["resume", "3"]) == ("/opt/gcw/gcw", ["resume", "3"])


def test_a_run_on_several_processes_starts_under_torchrun_on_this_machine(monkeypatch):
    import pytest

    program, arguments = child_command(["compress", "--config", "x.yaml"], processes=3)
    assert program == sys.executable
    assert arguments == ["-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "3",
                         "-m", "workbench.entry", "compress", "--config", "x.yaml"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(RuntimeError, match="runs one process"):
        child_command(["compress"], processes=2)
