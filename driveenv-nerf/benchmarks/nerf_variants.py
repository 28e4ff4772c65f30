"""Short NeRF runs that compare field / training variants on the default capture (64x48, 60 views
x 3 lightings): held-out and training-view PSNR per lighting and the largest density reached.

    python benchmarks/nerf_variants.py 500 '{}' '{"n": {"density_activation": "softplus"}}' '{"n": {"voxel": 0.1}}'
    python benchmarks/nerf_variants.py          # the default field only, 500 iterations

Each variant is a JSON object: "n" overrides NeRFConfig, "t" overrides TrainConfig, "floor_z" moves the
floor of the NeRF's scene box (default 0.0, the road surface, as `train.py --nerf-box-floor`; the course box's is -0.2 m), "seed" (default 0) seeds the capture
(training views from `seed`, held-out views from `seed + 1000`, as `train.py --seed`), the field's
initialisation and the ray sampling; "depth_frac" gives that fraction of each training view's pixels a known
depth (capture.sparse_depth, the stand-in for COLMAP's sparse points; used with "t": {"w_depth": ...}). Each line ends with what the field puts on the pixels that see a wall
(day; `benchmarks/nerf_walls.py`): PSNR, opacity inside the box, share ending on an opaque box face, depth error;
then the same for the pixels that see a lamp pole, and each pole's largest density and its share in the obstacle map
(`nerf_walls.pole_density`: is the thin pole in the field at all?).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.camera import Intrinsics  # noqa: E402
from driveenv_nerf.capture import capture, sparse_depth  # noqa: E402
from driveenv_nerf.course import campus_course  # noqa: E402
from driveenv_nerf.geometry import mesh_agreement  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nerf_walls import pixel_groups, pole_density  # noqa: E402


def train_variant(course, K, L, v: dict, iters: int, data: dict, max_seconds: float = float("inf")):
    """Train the NeRF of one variant on the default capture (cached per seed in `data`) for `iters` iterations, or
    until `max_seconds` of training have passed; returns the model, its TrainConfig, the training seconds, the
    iterations done and the capture ((imgs, poses, labels), (held-out imgs, poses, labels))."""
    seed = v.get("seed", 0)
    if seed not in data:
        data[seed] = capture(course, K, L, 60, seed), capture(course, K, L, 5, seed + 1000)
    (imgs, poses, labels), _ = data[seed]
    c2w = torch.as_tensor(poses, dtype=torch.float32)
    torch.manual_seed(seed)
    tc = NR.TrainConfig(**{"iters": iters, **v.get("t", {})})
    aabb = ((*course.aabb[0][:2], v.get("floor_z", 0.0)), course.aabb[1])  # the NeRF's scene box, floor at floor_z
    model = NR.GridNeRF(aabb, len(imgs), NR.NeRFConfig(**v.get("n", {})))
    opt = NR.make_optimizer(model, tc)
    depth = sparse_depth(course, c2w, K, v["depth_frac"], seed, aabb) if v.get("depth_frac") else None
    rays = NR.RayData(imgs, c2w, K, depth)
    gen = torch.Generator().manual_seed(seed)
    t0, done = time.time(), 0
    for it in range(tc.iters):
        NR.train_step(model, opt, rays.sample(tc.batch_rays, gen), tc, it)
        done = it + 1
        if time.time() - t0 > max_seconds:
            break
    return model, tc, time.time() - t0, done, data[seed]


def main(iters: int, variants: list[dict]):
    torch.set_num_threads(2)
    course = campus_course()
    K = Intrinsics.from_fov(64, 48, 90)
    L = ["day", "dusk", "night"]
    data = {}
    for v in variants:
        model, tc, dt, _, ((imgs, poses, labels), (timgs, tposes, tlabels)) = train_variant(course, K, L, v, iters, data)
        c2w, tc2w = torch.as_tensor(poses, dtype=torch.float32), torch.as_tensor(tposes, dtype=torch.float32)
        model.eval()
        app = NR.lighting_embeddings(model, labels)
        t1 = time.time()
        out = []
        for name in L:
            idx = [i for i, l in enumerate(tlabels) if l == name]
            r = NR.render_image(model, tc2w[idx], K, app[name])
            tri = [i for i, l in enumerate(labels) if l == name][:5]  # training views, their own embedding
            r2 = NR.render_image(model, c2w[tri], K, model.appearance.weight[tri].detach())
            out.append(f"{name} {np.mean([NR.psnr(r[k], timgs[i]) for k, i in enumerate(idx)]):.2f}/"
                       f"{np.mean([NR.psnr(r2[k], imgs[i]) for k, i in enumerate(tri)]):.2f}")
        t_eval = time.time() - t1  # 15 held-out + 15 training views at 64x48
        walls, poles = [], []  # what the NeRF puts on wall pixels (benchmarks/nerf_walls.py), held-out / 20 training day views
        for split, (P, G, emb) in {"held-out": (tc2w, timgs, None), "train": (c2w, imgs, "own")}.items():
            ix = [i for i, l in enumerate(tlabels if emb is None else labels) if l == "day"][:20]
            e = app["day"][None].expand(len(ix), -1) if emb is None else model.appearance.weight[ix].detach()
            with torch.no_grad():
                groups = pixel_groups(model, course, P[ix], K, G[ix], e)
            w = groups["wall"]
            walls.append(f"{split} PSNR {w['psnr']:.2f} dB, acc {w['acc']:.2f}, end on box {w['end_on_box']:.2f}, "
                         f"depth err {w['depth_err']:+.2f} m")
            if "lamp pole" in groups:
                q = groups["lamp pole"]
                poles.append(f"{split} ({q['share'] * 100:.2f}% of pixels) PSNR {q['psnr']:.2f} dB, acc {q['acc']:.2f}, depth err {q['depth_err']:+.2f} m")
        vol = model.density_volume()
        origin, spacing = model.grid_coords()
        mesh = []
        for lev in (0.5, 1.0, 2.0, 4.0):
            for up in (1,):
                if vol.min() < lev < vol.max():
                    m = mesh_agreement(*model.mesh(lev, up), course)
                    mesh.append(f"{lev:g}/m x{up}: {m['iou_road']:.2f}/{m['iou_corridor']:.2f}/{m['chamfer_m']:.2f}")
        m2 = mesh_agreement(*model.mesh(2.0), course) if vol.min() < 2.0 < vol.max() else None
        poles += pole_density(model, course, 2.0, {"map @2/m": m2["mesh_map"]} if m2 else None)
        print(f"{json.dumps(v)}: {dt:.0f}s ({tc.iters} it, {tc.iters / dt:.1f} it/s); held-out/training PSNR {', '.join(out)}; "
              f"eval {30 / t_eval:.1f} frames/s; sigma max {vol.max():.1f} / m, 99.5% quantile {np.quantile(vol, 0.995):.2f} / m; "
              f"mesh IoU road/corridor/Chamfer (m) at level x upsampling: {'; '.join(mesh)}; wall pixels, day: {'; '.join(walls)}; "
              f"lamp poles (pixels that see one, day; density and obstacle map at the pole): {'; '.join(poles)}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500, [json.loads(a) for a in sys.argv[2:]] or [{}])
