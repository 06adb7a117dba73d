"""Ready-to-submit launches of a run on several processes and machines: the ``torchrun`` command line and a
Slurm batch file, written beside the run's configuration. torchrun (PyTorch's launcher) starts the processes
and their rendezvous; ``engine.distributed`` is what each process does.

For several machines the workspace (run folders, sample datasets, the latency tables) must be on a file
system they all see, and the store should be a server (a PostgreSQL URL) that the workbench on a laptop can
watch while the run goes."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.config import RunConfig
from engine.errors import ConfigError
from engine.files import write_text_atomic
from engine.preflight import process_problems
from engine.settings import Settings

RENDEZVOUS_PORT = 29500


@dataclass(frozen=True)
class Launch:
    """``nodes`` machines with ``processes_per_node`` processes each (one per GPU on GPU machines)."""

    processes_per_node: int
    nodes: int = 1

    def __post_init__(self) -> None:
        if self.processes_per_node < 1 or self.nodes < 1:
            raise ConfigError("a launch needs at least one process on at least one machine")

    @property
    def processes(self) -> int:
        return self.processes_per_node * self.nodes


def program(python: str | None = None) -> list[str]:
    """The run's program as torchrun starts it: this installation's entry module."""
    return ["-m", "workbench.entry"] if python is None else [python, "-m", "workbench.entry"]


def torchrun_command(launch: Launch, arguments: list[str], python: str | None = None,
                     rendezvous: str | None = None) -> list[str]:
    """``python -m torch.distributed.run ... -m workbench.entry ARGUMENTS``: on one machine a standalone
    rendezvous; on several, ``rendezvous`` (host:port of the first machine) and torchrun's c10d backend."""
    command = [python or sys.executable, "-m", "torch.distributed.run"]
    if launch.nodes == 1 and rendezvous is None:
        command += ["--standalone", "--nnodes", "1"]
    else:
        command += ["--nnodes", str(launch.nodes), "--rdzv_backend", "c10d",
                    "--rdzv_endpoint", rendezvous or f"$HEAD:{RENDEZVOUS_PORT}", "--rdzv_id", "$RUN_ID"]
    return [*command, "--nproc_per_node", str(launch.processes_per_node), *program(), *arguments]


def _word(part: str) -> str:
    """A shell word: variables (``$HEAD``) expanded, everything else quoted."""
    return f'"{part}"' if "$" in part else shlex.quote(part)


def _check(config: RunConfig, launch: Launch) -> None:
    # The cluster's machines are not this one: only the rule that does not depend on the machine.
    problems = process_problems(config, launch.processes_per_node, launch.nodes)
    if problems:
        raise ConfigError(problems[0].sentence)


def slurm_script(config: RunConfig, config_path: Path, launch: Launch, settings: Settings,
                 python: str | None = None) -> str:
    """A Slurm batch file: one torchrun per machine (``srun``), the first machine as the rendezvous; GPUs
    asked for when the run's device is a GPU."""
    _check(config, launch)
    gpu = config.device.startswith("cuda")
    store = settings.store_url
    arguments = ["compress", "--config", str(config_path)]
    torchrun = torchrun_command(launch, arguments, python or "python", rendezvous=f"$HEAD:{RENDEZVOUS_PORT}")
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={shlex.quote(config.name)}",
        f"#SBATCH --nodes={launch.nodes}",
        "#SBATCH --ntasks-per-node=1",
        *([f"#SBATCH --gpus-per-node={launch.processes_per_node}"] if gpu else
          [f"##SBATCH --gpus-per-node={launch.processes_per_node}   # device auto: remove one # to run on GPUs"]
          if config.device == "auto" else []),
        f"#SBATCH --cpus-per-task={max(2, 4 * launch.processes_per_node)}",
        "#SBATCH --output=%x-%j.out",
        "#",
        f"# {config.name}: {launch.processes} processes on {launch.nodes} machine(s), a global batch of "
        f"{config.batch_size} ({config.batch_size // launch.processes} per process).",
        "# The workspace must be on a file system every machine sees; the store is where the workbench",
        "# watches the run from (a PostgreSQL URL for runs on several machines).",
        "set -euo pipefail",
        f"export GCW_WORKSPACE={shlex.quote(str(settings.workspace))}",
        *([f"export GCW_STORE_URL={shlex.quote(store)}"] if store else
          ["# export GCW_STORE_URL=postgresql+psycopg://user@server/gcw   # a store every machine can reach"]),
        'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        'RUN_ID="$SLURM_JOB_ID"',
        "srun " + " ".join(_word(part) for part in torchrun),
        "",
    ]
    return "\n".join(lines)


def shell_script(config: RunConfig, config_path: Path, launch: Launch, settings: Settings,
                 python: str | None = None) -> str:
    """A shell script with the torchrun command for one machine (or the same on each machine, with the
    first one's address as HEAD)."""
    _check(config, launch)
    arguments = ["compress", "--config", str(config_path)]
    torchrun = torchrun_command(launch, arguments, python or sys.executable,
                                rendezvous=None if launch.nodes == 1 else f"$HEAD:{RENDEZVOUS_PORT}")
    lines = ["#!/bin/bash", "set -euo pipefail",
             f"# {config.name}: {launch.processes} processes on {launch.nodes} machine(s)",
             f"export GCW_WORKSPACE={shlex.quote(str(settings.workspace))}",
             *([f"export GCW_STORE_URL={shlex.quote(settings.store_url)}"] if settings.store_url else [])]
    if launch.nodes > 1:
        lines += ['HEAD="${HEAD:?set HEAD to the address of the first machine, and run this on every machine}"',
                  'RUN_ID="${RUN_ID:-gcw-run}"']
    lines += [" ".join(_word(part) for part in torchrun), ""]
    return "\n".join(lines)


def write_launch_files(config: RunConfig, folder: Path, launch: Launch, settings: Settings) -> list[Path]:
    """The run's configuration, its torchrun script and its Slurm batch file in ``folder``."""
    import yaml

    _check(config, launch)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = (folder / f"{config.name}.yaml").resolve()
    write_text_atomic(config_path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    shell = folder / f"{config.name}.torchrun.sh"
    write_text_atomic(shell, shell_script(config, config_path, launch, settings))
    shell.chmod(0o755)
    slurm = folder / f"{config.name}.slurm"
    write_text_atomic(slurm, slurm_script(config, config_path, launch, settings))
    return [config_path, shell, slurm]
