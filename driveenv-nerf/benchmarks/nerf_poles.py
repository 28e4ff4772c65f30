"""Are the lamp poles (0.1 m x 0.1 m, under the default 0.15 m voxel) in the NeRF's density at all, and does a finer
grid put them there? For a finished run (`runs/<dir>`: its nerf.pt) or for short trainings of the default field
with other `NeRFConfig` fields (the default capture and training of `train.py`: sparse depth prior, seed 0; the
variant JSON as in `nerf_variants.py`), per pole: the largest sigma in the column within 5 cm of the pole over the
vehicle's height band, against the same column in free space 0.4-0.8 m around it (`nerf_walls.pole_density`), and
what the day training views' pole pixels get: PSNR and opacity inside the box (`nerf_walls.pixel_groups`).

    python benchmarks/nerf_poles.py runs/quick-20261126-110343
    python benchmarks/nerf_poles.py --iters 300 --max-seconds 120 '{}' '{"n": {"voxel": 0.075}}'
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.camera import Intrinsics  # noqa: E402
from driveenv_nerf.course import campus_course  # noqa: E402
from driveenv_nerf.nerfstudio_data import read_transforms  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nerf_variants import train_variant  # noqa: E402
from nerf_walls import pixel_groups, pole_density  # noqa: E402

DEFAULT = {"depth_frac": 0.05, "t": {"w_depth": 0.05}}  # train.py's default training (sparse depth prior)


@torch.no_grad()
def report(model, course, c2w, K, images, emb, level: float = 2.0):
    g = pixel_groups(model, course, c2w, K, images, emb).get("lamp pole")
    pix = f"pole pixels ({g['share'] * 100:.1f}% of {len(c2w)} day training views): PSNR {g['psnr']:.2f} dB, acc {g['acc']:.2f}" if g else "no pole pixels"
    lines = pole_density(model, course, level)
    print(f"  grid {model.resolution}, {model.cfg.n_samples} samples/ray, sigma max {model.density_volume().max():.1f} / m; {pix}")
    for line in lines:
        print("   ", line, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", help="a run directory, or variant JSONs merged over the default training")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--max-seconds", type=float, default=float("inf"), help="stop a variant's training after this long")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    course = campus_course()
    if a.variants and Path(a.variants[0]).is_dir():
        run = a.variants[0]
        model = NR.load_checkpoint(f"{run}/nerf.pt")[0].eval()
        ds = read_transforms(f"{run}/data", aabb=course.aabb)
        idx = [i for i, lab in enumerate(ds.lighting) if lab == "day"][:20]
        print(run)
        report(model, course, ds.c2w[idx], ds.K, ds.images[idx], model.appearance.weight[idx])
        return
    K = Intrinsics.from_fov(64, 48, 90)
    data = {}
    for text in a.variants or ["{}"]:
        v = json.loads(text)
        v = {**DEFAULT, **v, "t": {**DEFAULT["t"], **v.get("t", {})}}
        model, tc, dt, done, ((imgs, poses, labels), _) = train_variant(course, K, ["day", "dusk", "night"], v, a.iters, data, a.max_seconds)
        model.eval()
        idx = [i for i, lab in enumerate(labels) if lab == "day"][:20]
        print(f"{json.dumps(v)}: {done} of {tc.iters} iterations in {dt:.0f} s ({done / dt:.2f} it/s)")
        t0 = time.time()
        report(model, course, torch.as_tensor(poses[idx], dtype=torch.float32), K, imgs[idx], model.appearance.weight[idx].detach())
        print(f"  (report {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
