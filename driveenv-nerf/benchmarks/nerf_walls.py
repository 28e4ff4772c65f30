"""Why the mesh misses the walls: what a trained NeRF puts on the pixels that see a wall.

For the day views of a run (training views with their own appearance embedding, held-out views with
the lighting's mean), pixels are grouped by the surface the real-world renderer's ray hits first
(road/ground, wall, road barrier, beyond the scene box) and for each group it prints: the share of
pixels, the NeRF's PSNR there, its opacity inside the scene box (acc), the share of rays that end on
an opaque face of the box (its floor; its sides too with `opaque_sides`), and the median of (NeRF depth - true depth) in m. Then the sigma profile over
height at each wall's centre, and the mesh's agreement with ground truth (obstacle-map IoU road /
corridor, Chamfer; obstacle map at the default cell, geometry.OBSTACLE_CELL) for marching-cubes levels down to
0.1 / m (is there a level that finds the walls?), and each lamp pole's largest density against free space around it.

    python benchmarks/nerf_walls.py runs/quick-20261125-235501
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.camera import generate_rays  # noqa: E402
from driveenv_nerf.course import campus_course  # noqa: E402
from driveenv_nerf.geometry import mesh_agreement  # noqa: E402
from driveenv_nerf.nerfstudio_data import read_transforms  # noqa: E402
from driveenv_nerf.renderer import BoxSet, cast  # noqa: E402


@torch.no_grad()
def pixel_groups(model, course, c2w, K, images, emb) -> dict:
    """Pixels of views (c2w, images) rendered with appearance vectors emb (one per view), grouped by what
    the real-world renderer's ray hits first; per group: share of pixels, NeRF PSNR, opacity inside the
    box (acc), share of rays ending on an opaque box face, median depth error (m)."""
    boxes = BoxSet(course.boxes)
    kinds = np.array([b.kind for b in course.boxes])
    o, d = generate_rays(c2w, K)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    emb = emb[:, None].expand(-1, K.width * K.height, -1).reshape(-1, emb.shape[-1])
    gt = images.reshape(-1, 3)
    out = {k: [] for k in ("rgb", "acc", "depth", "end")}
    for s in range(0, len(o), 8192):
        r = model.render_rays(o[s:s + 8192], d[s:s + 8192], emb[s:s + 8192])
        end = model.ends_on_box(o[s:s + 8192], d[s:s + 8192])
        out["end"].append(end if end is not None else torch.zeros(len(r["acc"]), dtype=torch.bool))
        for k in ("rgb", "acc", "depth"):
            out[k].append(r[k])
    out = {k: torch.cat(v) for k, v in out.items()}
    t, sid, _, _, _ = cast(boxes, o, d)
    p = o + t.clamp(max=1e3)[:, None] * d
    inside = ((p >= model.lo) & (p <= model.hi)).all(-1) & torch.isfinite(t)
    groups = {"ground": (sid == -1) & inside}
    for kind, name in (("wall", "wall"), ("obstacle", "barrier"), ("pole", "lamp pole")):
        groups[name] = torch.isin(sid, torch.as_tensor(np.nonzero(kinds == kind)[0])) & inside
    groups["beyond box"] = ~inside
    res = {}
    for name, g in groups.items():
        if g.sum() == 0:
            continue
        err = ((out["rgb"][g] - gt[g]) ** 2).mean().item()
        res[name] = {"share": g.float().mean().item(), "psnr": -10 * np.log10(err), "acc": out["acc"][g].mean().item(),
                     "end_on_box": out["end"][g].float().mean().item(),
                     "depth_err": (out["depth"][g] - t[g]).median().item() if name != "beyond box" else float("nan")}
    return res


def column_max_sigma(model, cx: float, cy: float, half: float, step: float = 0.01, n_z: int = 8) -> float:
    """The largest sigma (1/m) of the field in the square column |x - cx|, |y - cy| <= half over the vehicle's height
    band, sampled every `step` m across and at n_z heights."""
    from driveenv_nerf.geometry import HEIGHT_BAND
    g = np.arange(-half, half + 1e-9, step)
    X, Y, Z = np.meshgrid(cx + g, cy + g, np.linspace(*HEIGHT_BAND, n_z), indexing="ij")
    pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel(), Z.ravel()], -1), dtype=torch.float32)
    return model.sigma(model.query(pts)[0]).max().item()


def background_columns(course, cx: float, cy: float, half: float, radii=(0.4, 0.6, 0.8), n_dir: int = 8, clear: float = 0.1):
    """Centres of columns of the same size around (cx, cy), `radii` m away in n_dir directions, that lie inside the
    course's box and at least `clear` m from every box in the height band (free space: the field's background)."""
    from driveenv_nerf.geometry import HEIGHT_BAND
    lo, hi = np.asarray(course.aabb[0]), np.asarray(course.aabb[1])
    out = []
    for r in radii:
        for a in np.arange(n_dir) * 2 * np.pi / n_dir:
            x, y = cx + r * np.cos(a), cy + r * np.sin(a)
            if not (lo[0] + half < x < hi[0] - half and lo[1] + half < y < hi[1] - half):
                continue
            free = True
            for b in course.boxes:
                if b.center[2] + b.half[2] < HEIGHT_BAND[0] or b.center[2] - b.half[2] > HEIGHT_BAND[1]:
                    continue
                c, s = np.cos(b.yaw), np.sin(b.yaw)
                lx, ly = c * (x - b.center[0]) + s * (y - b.center[1]), -s * (x - b.center[0]) + c * (y - b.center[1])
                reach = half * np.sqrt(2) + clear  # the column's corners and the clearance
                if abs(lx) < b.half[0] + reach and abs(ly) < b.half[1] + reach:
                    free = False
                    break
            if free:
                out.append((x, y))
    return out


@torch.no_grad()
def pole_density(model, course, level: float, maps: dict | None = None, pad: float = 0.05) -> list[str]:
    """For each lamp pole: the largest sigma (1/m) the field has within `pad` m of the pole's footprint in the
    vehicle's height band (is the pole in the density at all? the mesh needs sigma > level there), against the same
    column in free space around it (`background_columns`, 0.4-0.8 m away: median and largest of their maxima), and
    the share of the pole's footprint each obstacle map marks occupied (is it in the collision map?)."""
    from driveenv_nerf.geometry import ObstacleMap
    out = []
    for k, b in enumerate(b for b in course.boxes if b.kind == "pole"):
        half = b.half[0] + pad
        sig = column_max_sigma(model, b.center[0], b.center[1], half)
        bg = [column_max_sigma(model, x, y, half) for x, y in background_columns(course, b.center[0], b.center[1], half)]
        bgs = f"background {len(bg)} columns: median {np.median(bg):.2f}, max {np.max(bg):.2f} / m" if bg else "no free background column"
        foot = ObstacleMap.from_boxes([b], course.aabb, 0.01)
        fx, fy = foot.cell_centers()
        fp = np.stack([fx[foot.occ], fy[foot.occ]], -1)
        cov = "".join(f", {name} covers {m.occupied(fp).mean():.2f} of it" for name, m in (maps or {}).items())
        out.append(f"pole {k + 1} ({b.center[0]:.1f}, {b.center[1]:.1f}): max sigma {sig:.2f} / m ({bgs}; level {level:g}){cov}")
    return out


@torch.no_grad()
def main(run: str, n_train: int = 20):
    torch.set_num_threads(2)
    course = campus_course()
    model, _, _, _ = NR.load_checkpoint(f"{run}/nerf.pt")
    model.eval()
    app = NR.lighting_embeddings(model, read_transforms(f"{run}/data", aabb=course.aabb).lighting)
    for split in ("data", "data/test"):
        ds = read_transforms(f"{run}/{split}", aabb=course.aabb)
        idx = [i for i, lab in enumerate(ds.lighting) if lab == "day"][:n_train]
        emb = model.appearance.weight[idx] if split == "data" else app["day"][None].expand(len(idx), -1)
        print(f"{run} {split} ({len(idx)} day views):")
        for name, r in pixel_groups(model, course, ds.c2w[idx], ds.K, ds.images[idx], emb).items():
            print(f"  {name:10s} {r['share']:.3f} of pixels; PSNR {r['psnr']:.2f} dB; acc {r['acc']:.2f}; "
                  f"end on the box {r['end_on_box']:.2f}; median depth error {r['depth_err']:+.2f} m")
    vol = model.density_volume()
    org, sp = model.grid_coords()
    print("sigma (1/m) at heights z (m):", " ".join(f"{z:.2f}" for z in org[2] + sp[2] * np.arange(vol.shape[2])))
    for b in course.boxes:
        if b.kind == "wall":
            i, j = int(round((b.center[0] - org[0]) / sp[0])), int(round((b.center[1] - org[1]) / sp[1]))
            print(f"  wall centre ({b.center[0]:.1f}, {b.center[1]:.1f}):", " ".join(f"{v:.2f}" for v in vol[i, j]))
    for lev in (0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0):
        if vol.min() < lev < vol.max():
            m = mesh_agreement(*model.mesh(lev), course)
            print(f"level {lev:g} / m: IoU road {m['iou_road']:.3f}, corridor {m['iou_corridor']:.3f}; Chamfer {m['chamfer_m']:.2f} m")
    for line in pole_density(model, course, 2.0):
        print(" ", line)


if __name__ == "__main__":
    main(sys.argv[1])
