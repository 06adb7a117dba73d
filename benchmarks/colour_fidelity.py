"""Where a finished run's student loses the teacher's colours: the final student, the supernet at the arch the
search chose, and the supernet at its largest arch (each as the search scored it, BatchNorm statistics
calibrated), against the teacher on the first 16 test label maps of the run's dataset.

    python benchmarks/colour_fidelity.py WORKSPACE RUN_ID

Prints, for each: the mean absolute difference of the per-image channel means from the teacher's (colour cast,
in [-1, 1] units), PSNR to the teacher, and the mean chroma (max - min over the three channels) of the teacher's
and the student's pixels. If the largest sub-network is as far from the teacher as the chosen one, the colours
were lost in the supernet's training, not by the search or the fine-tuning."""
import argparse
import glob
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.simplefilter("ignore")
from engine.run_models import RunModels  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.store import open_store  # noqa: E402



def report(label: str, teacher_out: torch.Tensor, out: torch.Tensor) -> None:
    colour = (out.mean((2, 3)) - teacher_out.mean((2, 3))).abs().mean().item()
    psnr = 10 * torch.log10(4.0 / ((out - teacher_out) ** 2).mean()).item()
    chroma_teacher = (teacher_out.max(1).values - teacher_out.min(1).values).mean().item()
    chroma = (out.max(1).values - out.min(1).values).mean().item()
    print(f"| {label} | {colour:.3f} | {psnr:.2f} dB | {chroma_teacher:.3f} / {chroma:.3f} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("run_id", type=int)
    parser.add_argument("--inputs", default="datasets/*/test_label/*",
                        help="input files, a pattern under the workspace (default: a GauGAN sample's test label maps)")
    parser.add_argument("--count", type=int, default=16)
    args = parser.parse_args()
    settings = Settings(workspace=args.workspace, device="cpu")
    models = RunModels.open(open_store(settings.resolved_store_url), settings, args.run_id)
    files = sorted(glob.glob(str(args.workspace / args.inputs)))[:args.count]
    if not files:
        parser.error(f"no files match {args.workspace / args.inputs}")
    inputs = torch.cat([models.open_file(Path(f))[0] for f in files])
    space = models.config.search_space()
    largest, chosen = "_".join(str(max(c)) for c in space), models.best_arch()
    print(f"run {args.run_id} of {args.workspace}, {len(files)} inputs\n")
    print("| student | colour cast | PSNR to the teacher | chroma, teacher / student |\n|---|---|---|---|")
    with torch.no_grad():
        teacher_out = models.teacher()(inputs)
        report(models.weights_of(None), teacher_out, models.student(None)(inputs))
        report(f"supernet at the chosen arch {chosen}", teacher_out, models.student(chosen)(inputs))
        report(f"supernet at the largest arch {largest}", teacher_out, models.student(largest)(inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
