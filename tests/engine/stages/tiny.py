"""A run configuration small enough for a whole pipeline in seconds on a CPU."""

from collections.abc import Iterator

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
        # 51 of the 256 sub-networks within the budget (ratio 2 left 192): every tiny run's exhaustive search scores
        # them all, and the suite runs some twenty of them.
        "search": {"target_ratio": 3},
        "finetune": {"steps": 4},
        # Tiny models never settle to 2% on a shared machine: a short cap keeps every export quick. The OpenVINO
        # variants (a second more per export) are tested where they are the point (test_pipeline, test_export).
        "export": {"latency_time_cap_s": 1, "variants": ["optimized", "int8"]},
        "metric": "psnr" if family == "pix2pix" else "fid",
        "log_every": 1,
    }
    return load_config(overrides=merge(base, overrides))


#: A MUNIT run small enough for seconds (its discriminator needs 64 px; an evolution, as its space is 2^10).
TINY_MUNIT = {
    "name": "tiny-munit", "family": "munit",
    "dataset": {"sample": "gray2tints", "sample_size": 64, "sample_train": 8, "sample_test": 4,
                "search_images": 4, "test_images": 4},
    "image_size": 64, "batch_size": 2,
    "model": {"ngf": 4, "mlp_dim": 8, "student_mlp_dim": 8},
    "recipe": {"ndf": 8},
    "teacher": {"steps": 3}, "supernet": {"steps": 4, "search_space": [[4, 2]] * 10},
    "search": {"method": "evolution", "target_ratio": 1.5, "population": 4, "generations": 2},
    "finetune": {"steps": 2}, "export": {"latency_time_cap_s": 1, "variants": ["optimized", "int8"]}, "log_every": 1, "metric": "rfid"}


def tiny_munit_config(**overrides) -> RunConfig:
    return load_config(overrides=merge(TINY_MUNIT, overrides))


def finished_run(tmp_path_factory, config: RunConfig, workspace: str) -> Iterator[tuple]:
    """For a fixture: ``config`` run to the end in a workspace of its own, as (settings, store, run_id,
    summary); the store is closed when the fixture ends."""
    from engine.pipeline import create_run, execute
    from engine.settings import Settings
    from engine.store import open_store

    settings = Settings(workspace=tmp_path_factory.mktemp(workspace), device="cpu")
    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(config, store, settings)
        yield settings, store, run_id, execute(run_id, settings, store, lambda event: None)
    finally:
        store.close()
