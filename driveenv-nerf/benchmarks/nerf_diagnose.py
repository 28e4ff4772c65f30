"""What a trained NeRF of a default run learnt: density profiles over the road and beside it (is there
a ground / a wall, or a haze?), whether the stored data are self-consistent (the real-world renderer
re-rendering the stored training poses), and where the held-out error lies (inside the scene box or
beyond it).

    python benchmarks/nerf_diagnose.py runs/quick-20261125-231820
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.camera import generate_rays  # noqa: E402
from driveenv_nerf.course import campus_course  # noqa: E402
from driveenv_nerf.nerfstudio_data import read_transforms  # noqa: E402
from driveenv_nerf.renderer import RealWorldRenderer  # noqa: E402


def main(run: str):
    torch.set_num_threads(2)
    course = campus_course()
    model, _, _, _ = NR.load_checkpoint(f"{run}/nerf.pt")
    model.eval()
    vol = model.density_volume()
    o, sp = model.grid_coords()
    z = o[2] + sp[2] * np.arange(vol.shape[2])
    print("sigma (1/m) at grid heights z (m):", " ".join(f"{v:.2f}" for v in z))
    for x, y, what in [(1, 0, "road"), (3, 0.5, "road"), (4, -0.5, "road"), (2.5, -2.2, "building wall")]:
        i, j = int(round((x - o[0]) / sp[0])), int(round((y - o[1]) / sp[1]))
        print(f"  ({x}, {y}) {what}:", " ".join(f"{v:.2f}" for v in vol[i, j]))
    tr = read_transforms(f"{run}/data", aabb=course.aabb)
    te = read_transforms(f"{run}/data/test", aabb=course.aabb)
    rw = RealWorldRenderer(course, tr.K)
    idx = [i for i, lab in enumerate(tr.lighting) if lab == "day"][:6]
    re = rw.render(tr.c2w[idx], lighting="day")
    print("data consistency: renderer at the stored day poses vs stored images (noise, exposure), dB:",
          [round(NR.psnr(re[k], tr.images[i]), 1) for k, i in enumerate(idx)])
    app = NR.lighting_embeddings(model, tr.lighting)
    lo, hi = torch.tensor(course.aabb[0]), torch.tensor(course.aabb[1])
    for name in ("day", "dusk"):
        idx = [i for i, lab in enumerate(te.lighting) if lab == name]
        r = NR.render_image(model, te.c2w[idx], te.K, app[name])
        dep = rw.depth(te.c2w[idx])
        ro, rd = generate_rays(te.c2w[idx], te.K)
        p = ro + dep[..., None].clamp(max=1e3) * rd
        inside = ((p >= lo) & (p <= hi)).all(-1) & torch.isfinite(dep)
        err = ((r - te.images[idx]) ** 2).mean(-1)
        print(f"held-out {name}: {inside.float().mean():.2f} of pixels see a surface inside the scene box; "
              f"PSNR there {-10 * np.log10(err[inside].mean().item()):.2f} dB, beyond it {-10 * np.log10(err[~inside].mean().item()):.2f} dB")


if __name__ == "__main__":
    main(sys.argv[1])
