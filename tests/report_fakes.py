"""Helpers for the report tests (no tests here): hand-made sweep folders, scenes and a fake data registry."""

import json
from pathlib import Path

METRIC_NAMES = ("psnr", "ssim", "ssim_gauss", "lpips", "psnr_dyn", "ssim_dyn", "lpips_dyn")


def write_run(sweep: Path, variant: str, dataset: str, scene: str, seed: int, values: dict,
              protocol: str = "synthetic", blur_type: str = "motion", per_image: dict | None = None) -> Path:
    """One run directory with a results.json whose aggregate holds ``values`` (others None);
    ``per_image`` (view -> {metric: value}) defaults to one view holding the aggregate."""
    run_id = f"{variant}-{dataset}-{scene}-s{seed}"
    run = sweep / "runs" / run_id
    run.mkdir(parents=True)
    aggregate = {m: values.get(m) for m in METRIC_NAMES}
    doc = {
        "schema": 1, "run_id": run_id, "sweep": sweep.name, "method": variant, "base_method": "dydeblur",
        "dataset": dataset, "scene": scene, "blur_type": blur_type, "seed": seed, "config_hash": "abc",
        "metrics": {"protocol": {"name": protocol, "lpips_input": "scaled"}, "aggregate": aggregate,
                    "per_image": per_image or {"00000": aggregate},
                    "missing": {m: "not computed in this fixture" for m, v in aggregate.items() if v is None}},
        "train": {"steps": 10, "wall_time_s": 12.5, "peak_memory_bytes": 1000, "device": "cpu"},
        "provenance": {"git_commit": "deadbeef", "git_dirty": False,
                       "packages": {"dydeblur-bench": "0.1.0", "torch": "2.14.1", "gsplat": "1.5.3"},
                       "device": "Test CPU", "hostname": "node1", "slurm": {"job_id": "42"},
                       "wall_time_s": 13.0, "peak_memory": {"cpu_rss": 2048, "gpu_allocated": None}},
    }
    (run / "results.json").write_text(json.dumps(doc))
    return run


def make_sweep(root: Path, table: dict, seeds=(0,), dataset="toy", protocol="synthetic") -> Path:
    """table: {variant: {scene: {metric: value}}}; a seed offset of +0.01*seed is added to psnr."""
    sweep = root / "demo"
    for variant, scenes in table.items():
        for scene, values in scenes.items():
            for seed in seeds:
                vals = dict(values)
                if "psnr" in vals:
                    vals["psnr"] += 0.01 * seed
                write_run(sweep, variant, dataset, scene, seed, vals, protocol,
                          blur_type="defocus" if scene.startswith("defocus") else "motion")
    return sweep


def tiny_scene(dataset="toy", name="a", h=16, w=24, n=3):
    """A hand-made Scene: n blurry train views, n sharp test views, motion masks and ground truth."""
    import torch

    from bench.data.scene import Cameras, GroundTruth, LazyImages, Scene, Views

    g = torch.Generator().manual_seed(0)
    sharp = torch.rand(n, h, w, 3, generator=g)
    blurry = (sharp + torch.roll(sharp, 1, dims=2)) / 2
    cams = Cameras(K=torch.eye(3).repeat(n, 1, 1), w2c=torch.eye(4).repeat(n, 1, 1), width=w, height=h)
    mask = torch.zeros(n, h, w)
    mask[:, 4:12, 6:18] = 1
    frames = torch.arange(n)
    time = frames.float() / max(n - 1, 1)
    names = [f"{i:05d}" for i in range(n)]
    train = Views(names, cams, LazyImages.from_tensor(blurry), frames, time, depth=torch.ones(n, h, w))
    test = Views(names, cams, LazyImages.from_tensor(sharp), frames, time, motion_mask=mask)
    disp = torch.zeros(n, 5, h, w, 2)
    disp[..., 0] = torch.linspace(-2, 2, 5)[None, :, None, None] * mask[:, None]  # 4 px horizontal streak
    gt = GroundTruth(LazyImages.from_tensor(sharp), torch.ones(n, h, w), mask, "mixed",
                     coc_radius=torch.full((n, h, w), 1.0), motion_disp=disp)
    return Scene(dataset, name, "mixed", train, test, near=0.1, far=10.0, gt=gt)


def fake_registry(monkeypatch, scenes: dict, protocol="synthetic"):
    """Point bench.data.registry.get_dataset / load_scene at hand-made scenes {(dataset, scene): Scene}."""
    import types

    import bench.data.registry as reg

    def get_dataset(name):
        specs = {s: types.SimpleNamespace(name=s, blur_type="mixed") for d, s in scenes if d == name}
        return types.SimpleNamespace(name=name, protocol=protocol, blur_type="mixed", scenes=list(specs.values()),
                                     scene=specs.__getitem__)

    monkeypatch.setattr(reg, "get_dataset", get_dataset)
    monkeypatch.setattr(reg, "load_scene", lambda d, s, data_root=None: scenes[(d, s)])


def write_png(path: Path, image) -> None:
    """(H,W,3) float in [0,1] -> 8-bit PNG (RGB order on disk as OpenCV expects BGR)."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.clip(np.round(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), arr[..., ::-1])


def results_frame(table: dict, seeds=(0,), dataset="d2rf", protocol="dydeblur", eval_mode="last", reasons=None):
    """A collected results table (bench.report.collect.COLUMNS plus ``eval_mode``; eval_mode=None leaves
    the column out, as results collected before it existed) from {variant: {scene: {metric: value}}}.

    A value is the same on every seed, or a list with one value per seed (None: missing on that seed,
    with ``reasons[metric]`` or "not computed in this fixture" as its missing_reason).
    """
    import math

    import pandas as pd

    from bench.report.collect import COLUMNS

    rows = []
    for variant, scenes in table.items():
        for scene, values in scenes.items():
            for i, seed in enumerate(seeds):
                for metric, value in values.items():
                    v = value[i] if isinstance(value, (list, tuple)) else value
                    rows.append({"sweep": "hand", "variant": variant, "dataset": dataset, "scene": scene,
                                 "blur_type": "defocus", "seed": seed, "metric": metric,
                                 "value": math.nan if v is None else float(v),
                                 "run_id": f"{variant}-{dataset}-{scene}-s{seed}", "protocol": protocol,
                                 "eval_mode": eval_mode,
                                 "missing_reason": None if v is not None else
                                 (reasons or {}).get(metric, "not computed in this fixture")})
    columns = list(dict.fromkeys(COLUMNS + ["eval_mode"]))
    df = pd.DataFrame(rows).reindex(columns=columns)
    df["seed"] = df["seed"].astype("Int64")
    return df.drop(columns=["eval_mode"]) if eval_mode is None else df


PUBLISHED_HEADER = "table,row,variant,dataset,metric,value,source,protocol,eval_mode,scenes"


def write_published(path: Path, rows: list[dict]) -> Path:
    """A published CSV (results/published/ format) of hand-made rows; each row gives variant, dataset,
    metric, value and scenes (a list), and may override table ("main"), row ("Paper"), source,
    protocol ("dydeblur") and eval_mode ("best_test")."""
    lines = [PUBLISHED_HEADER]
    for r in rows:
        r = {"table": "main", "row": "Paper", "source": "hand-made", "protocol": "dydeblur",
             "eval_mode": "best_test", **r}
        lines.append(",".join([r["table"], r["row"], r["variant"], r["dataset"], r["metric"], str(r["value"]),
                               r["source"], r["protocol"], r["eval_mode"], ";".join(r["scenes"])]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def require_pdflatex() -> str:
    """pdflatex's path; skips the test where it is not installed, but fails it under CI (CI=true or 1):
    .ci/run installs it (.ci/install_latex.sh), so a missing one there is a broken CI, not a skip."""
    import os
    import shutil

    import pytest

    path = shutil.which("pdflatex")
    if path is None:
        if os.environ.get("CI", "").strip().lower() in ("true", "1"):
            pytest.fail("pdflatex not on PATH under CI: .ci/run installs it with .ci/install_latex.sh")
        pytest.skip("pdflatex not installed (.ci/install_latex.sh installs it)")
    return path
