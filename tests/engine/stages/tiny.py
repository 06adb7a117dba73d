"""A run configuration small enough for a whole pipeline in seconds on a CPU."""

from engine.config import RunConfig, load_config, merge

SPACE = [[8, 4]] * 8


def tiny_config(family: str = "pix2pix", **overrides) -> RunConfig:
    sample = "edges2photos" if family == "pix2pix" else "grass2gravel"
    base = {
        "name": f"tiny-{family}", "family": family,
        "dataset": {"sample": sample, "sample_size": 32, "sample_train": 12, "sample_test": 4,
                    "search_images": 4, "test_images": 4},
        "image_size": 32, "batch_size": 2,
        "model": {"ngf": 8, "n_blocks": 3}, "teacher": {"steps": 6},
        "supernet": {"steps": 8, "search_space": SPACE},
        "search": {"target_ratio": 2},
        "finetune": {"steps": 4},
        "metric": "psnr" if family == "pix2pix" else "fid",
        "log_every": 1,
    }
    return load_config(overrides=merge(base, overrides))
