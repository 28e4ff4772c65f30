"""Is the NeRF's blur a budget problem? Train the grid NeRF of `train.py`'s stage 2 on the same capture with
the default CPU budget and with larger ones (more iterations, bigger ray batches, finer voxels, more samples),
on a GPU, and report held-out PSNR / SSIM per lighting and the mesh's agreement with the ground truth.

    python benchmarks/nerf_budget.py --device cuda                        # default budget vs two larger ones
    python benchmarks/nerf_budget.py --device cpu --budgets default --iters-scale 0.1   # smoke run
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.camera import Intrinsics  # noqa: E402
from driveenv_nerf.capture import capture  # noqa: E402
from driveenv_nerf.course import campus_course  # noqa: E402
from driveenv_nerf.geometry import mesh_agreement  # noqa: E402

# name: (iters, batch rays, voxel m, samples per ray)
BUDGETS = {"default": (1500, 1024, 0.15, 48), "4x-iters-4x-rays": (6000, 4096, 0.15, 48),
           "4x-iters-4x-rays-fine": (6000, 4096, 0.075, 96)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--budgets", default=",".join(BUDGETS), help=f"comma-separated, from {list(BUDGETS)}")
    p.add_argument("--iters-scale", type=float, default=1.0, help="multiply every budget's iterations (smoke runs)")
    p.add_argument("--views", type=int, default=60, help="training views per lighting (train.py default)")
    p.add_argument("--test-views", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--out", default="runs/nerf_budget")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    course = campus_course()
    lightings = ["day", "dusk", "night"]
    K = Intrinsics.from_fov(64, 48, 90.0)
    t = time.time()
    imgs, poses, labels = capture(course, K, lightings, a.views, a.seed)
    timgs, tposes, tlabels = capture(course, K, lightings, a.test_views, a.seed + 1000)
    print(f"capture: {len(imgs)} training + {len(timgs)} held-out views (64x48) in {time.time() - t:.1f} s", flush=True)
    imgs, timgs = torch.stack([torch.as_tensor(i) for i in imgs]), torch.stack([torch.as_tensor(i) for i in timgs])
    c2w, tc2w = torch.as_tensor(np.stack(poses), dtype=torch.float32), torch.as_tensor(np.stack(tposes), dtype=torch.float32)
    res = {}
    for name in a.budgets.split(","):
        iters, rays_b, voxel, samples = BUDGETS[name]
        iters = max(1, int(iters * a.iters_scale))
        tc = NR.TrainConfig(iters=iters, batch_rays=rays_b)
        torch.manual_seed(a.seed)  # the grid's and MLPs' initialisation
        model = NR.GridNeRF(((*course.aabb[0][:2], 0.0), course.aabb[1]), len(imgs), NR.NeRFConfig(voxel=voxel, n_samples=samples))
        opt = NR.make_optimizer(model, tc)
        model.to(a.device)
        rays = NR.RayData(imgs, c2w, K)
        gen = torch.Generator().manual_seed(a.seed)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.time()
        for it in range(iters):
            o, d, rgb, img = rays.sample(tc.batch_rays, gen)
            NR.train_step(model, opt, (o.to(a.device), d.to(a.device), rgb.to(a.device), img.to(a.device)), tc, it)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.time() - t
        model = model.cpu().eval()
        for q in model.parameters():
            q.requires_grad_(False)
        app = NR.lighting_embeddings(model, labels)
        row = {"iters": iters, "batch_rays": rays_b, "voxel": voxel, "samples": samples, "grid": list(model.resolution),
               "train_s": round(wall, 1), "it_per_s": round(iters / wall, 1)}
        quality, _ = NR.heldout_quality(model, tc2w, K, timgs, tlabels, app)
        for li in lightings:
            row[f"psnr_{li}"] = round(quality[li]["psnr"], 2)
            row[f"ssim_{li}"] = round(quality[li]["ssim"], 3)
        origin, spacing = model.grid_coords()
        vol = model.density_volume()
        for lev in (2.0, 8.0):
            if vol.min() < lev < vol.max():
                m = mesh_agreement(*model.mesh(lev), course)
                row[f"mesh@{lev:g}"] = {k: round(float(m[k]), 3) for k in ("iou_road", "iou_corridor", "chamfer_m")}
        res[name] = row
        print(f"BUDGET {name}: {json.dumps(row)}", flush=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "nerf_budget.json").write_text(json.dumps(res, indent=1))
    dev = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    print(f"device: {dev}, torch {torch.__version__}, held-out views: {len(timgs)} (seed {a.seed + 1000})")


if __name__ == "__main__":
    main()
