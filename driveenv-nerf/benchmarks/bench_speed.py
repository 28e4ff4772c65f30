"""Speed figures the README quotes: NeRF training iterations/s and rendering frames/s at the
default resolution, and environment steps/s for each world (batched and single vehicle).

    python benchmarks/bench_speed.py [--threads 2] [--iters 20]
"""
import argparse
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
from driveenv_nerf.envs import BatchDrive, EnvConfig, NeRFWorld, RealWorld, SimWorld  # noqa: E402
from driveenv_nerf.geometry import ObstacleMap  # noqa: E402


def timeit(fn, n):
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    course = campus_course()
    K = Intrinsics.from_fov(64, 48, 90)  # the default capture resolution
    imgs, poses, labels = capture(course, K, ["day", "night"], 4, seed=0)
    model = NR.GridNeRF(course.aabb, len(imgs), NR.NeRFConfig())  # default field (voxel 0.15 m, 48 samples)
    tc = NR.TrainConfig(iters=1000)
    opt = NR.make_optimizer(model, tc)
    rays = NR.RayData(imgs, torch.as_tensor(poses, dtype=torch.float32), K)
    gen = torch.Generator().manual_seed(0)
    it_s = timeit(lambda: NR.train_step(model, opt, rays.sample(tc.batch_rays, gen), tc, 0), a.iters)
    c2w = torch.as_tensor(poses[:1], dtype=torch.float32)
    app = model.appearance.weight[0].detach()
    with torch.no_grad():
        fps = timeit(lambda: NR.render_image(model, c2w, K, app), max(3, a.iters // 4))
    print(f"torch threads: {a.threads}")
    print(f"NeRF training: {it_s:.2f} it/s (batch {tc.batch_rays} rays x {model.cfg.n_samples} samples, grid {model.resolution})")
    print(f"NeRF rendering: {fps:.2f} frames/s at 64x48 ({model.cfg.n_samples} samples/ray)")
    cfg = EnvConfig()
    worlds = {"sim": SimWorld(course, cfg), "real": RealWorld(course, cfg, "night"),
              "nerf": NeRFWorld(model, ObstacleMap.from_boxes(course.boxes, course.aabb), cfg, app, n_samples=32)}
    for n in (1, 16):
        for name, w in worlds.items():
            env = BatchDrive(course, w, cfg, n)
            env.reset()
            sps = timeit(lambda: env.step(np.zeros(n)) and None, max(3, a.iters // 2)) * n
            env.reset()
            print(f"env {name:4s} ({n:2d} vehicles, {cfg.obs_width}x{cfg.obs_height} RGB): {sps:8.1f} vehicle-steps/s")


if __name__ == "__main__":
    main()
