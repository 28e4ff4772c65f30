"""What a trained NeRF holds at a road barrier, and what its training views told it there.

For a finished run (its nerf.pt, its data/ with the training views and, when the run wrote them, the sparse depth
images of the depth prior), per road barrier:

  views     how many training views see the barrier (first surface hit by the real-world renderer's ray, per
            lighting), their pixels on each face (approach / far face, left / right side, top; the box frame of
            nerf_world_diagnose: travel along +along, left = +across) and on a named corner patch, and the depth-prior
            samples among those pixels;
  nerf      the NeRF on those pixels (each view's own appearance embedding, as trained): PSNR, opacity inside the
            scene box (acc), median NeRF depth - true depth, share of pixels whose NeRF depth lies within 0.1 m of
            the barrier's surface;
  density   the field's sigma inside the true box over the vehicle's height band (1 cm lattice): share at or above
            the mesh level, largest value, per quarter of the box; and the raw grid vertices nearest the box at the
            band's middle height (the values marching cubes reads);
  picture   a top view around the box in its frame: where the field reaches the level at some band height vs where
            the run's obstacle map is occupied (is a hole in the map a hole in the field, or made by the mesh / map?).

With --levels (e.g. 0.5,1,2,4,8,16) it does none of that and sweeps the mesh level instead: per level, the mesh and
obstacle map rebuilt as train.py builds them (GridNeRF.mesh on the raw density, ObstacleMap.from_mesh), the map's
IoU (road / corridor) and Chamfer distance (geometry.mesh_agreement), and per barrier the outward offset from the
true face of where the field reaches the level (at some band height) and of the map's last occupied cell, along
lines through each face's centre and two lines through the corner patch (LINES), with the patch's covered share.

    python benchmarks/barrier_evidence.py runs/quick-20261127-035940 [runs/quick-20261126-190913 ...] [--barriers "barrier 1,barrier 2"]
    python benchmarks/barrier_evidence.py runs/quick-20261127-035940 runs/quick-20261126-190913 --levels 0.5,1,2,4,8,16
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driveenv_nerf.camera import generate_rays  # noqa: E402
from driveenv_nerf.geometry import HEIGHT_BAND, mesh_agreement  # noqa: E402
from driveenv_nerf.nerfstudio_data import read_transforms  # noqa: E402
from driveenv_nerf.renderer import BoxSet, cast  # noqa: E402
from nerf_world_diagnose import box_lattice, box_local, box_names, box_world, load_run  # noqa: E402

FACES = ("approach", "far", "left side", "right side", "top")
# lines of the level sweep, box frame (along, across): name, a point inside the box, the outward unit direction; the
# two corner lines run through the middle of the default corner patch (along -0.15, across -0.25)
LINES = (("approach", (0.0, 0.0), (-1.0, 0.0)), ("far", (0.0, 0.0), (1.0, 0.0)), ("left side", (0.0, 0.0), (0.0, 1.0)),
         ("right side", (0.0, 0.0), (0.0, -1.0)), ("approach @ across -0.25", (0.0, -0.25), (-1.0, 0.0)),
         ("right side @ along -0.15", (-0.15, 0.0), (0.0, -1.0)))


def face_of(local: np.ndarray, box, tol: float = 1e-3) -> np.ndarray:
    """Index into FACES of surface points on a box, given in its frame ((N, 3): along, across (+ left), z - centre z):
    the face whose plane the point lies on (the top wins over a side at an edge, a side over the approach / far face)."""
    hx, hy, hz = box.half
    face = np.where(local[:, 0] < 0, 0, 1)
    face = np.where(np.abs(np.abs(local[:, 1]) - hy) < tol, np.where(local[:, 1] > 0, 2, 3), face)
    return np.where(np.abs(local[:, 2] - hz) < tol, 4, face)


def in_patch(local: np.ndarray, patch) -> np.ndarray:
    """Points (N, >= 2) of the box frame inside the rectangle patch = ((along lo, along hi), (across lo, across hi))."""
    (a0, a1), (c0, c1) = patch
    return (local[:, 0] >= a0) & (local[:, 0] <= a1) & (local[:, 1] >= c0) & (local[:, 1] <= c1)


def field_map_picture(box, field_occ, map_occ, margin: float = 0.15, step: float = 0.025) -> list:
    """Top view around `box` on a `step` lattice in its frame (+along up, +across / left on the left, as
    nerf_world_diagnose.box_map_picture): field_occ / map_occ (functions of world points (..., 2) -> bool) give, inside
    the box, '#' both / 'F' the field only / 'M' the map only / '.' neither; outside it 'o' / 'f' / 'm' / ' '."""
    _, _, xy, inside = box_lattice(box, margin, step)
    f, m = field_occ(xy), map_occ(xy)
    pic = np.where(f & m, "#", np.where(f, "F", np.where(m, "M", ".")))
    pic = np.where(inside, pic, np.char.translate(pic.astype("<U1"), str.maketrans("#FM.", "ofm ")))
    return ["".join(row) for row in pic]


def outward_offset(occ, box, point, direction, reach: float = 1.0, step: float = 0.005) -> float:
    """How far outside the face it leaves (m; < 0: inside) the last point where occ (world points (..., 2) -> bool)
    holds, walking from `point` (box frame) along the unit box-frame `direction`; nan when it holds nowhere."""
    r = np.arange(0.0, reach, step)
    loc = np.asarray(point) + r[:, None] * np.asarray(direction)
    on = np.flatnonzero(occ(box_world(loc[:, 0], loc[:, 1], box)))
    ax = int(abs(direction[1]) > abs(direction[0]))
    return float(r[on[-1]] - (box.half[ax] - np.sign(direction[ax]) * point[ax])) if len(on) else float("nan")


def patch_share(occ, box, patch, step: float = 0.01) -> float:
    """Share of a 1 cm lattice over the box-frame rectangle patch where occ holds."""
    (a0, a1), (c0, c1) = patch
    A, C = np.meshgrid(np.arange(a0 + step / 2, a1, step), np.arange(c0 + step / 2, c1, step), indexing="ij")
    return float(occ(box_world(A, C, box)).mean())


def band_sigma(model, xy: np.ndarray, n_z: int = 8) -> np.ndarray:
    """The field's sigma (n_z, ...) at n_z heights of the vehicle's band above world points xy (..., 2)."""
    pts = np.concatenate([np.c_[xy.reshape(-1, 2), np.full(xy.size // 2, z)] for z in np.linspace(*HEIGHT_BAND, n_z)])
    with torch.no_grad():
        sig = model.sigma(model.query(torch.as_tensor(pts, dtype=torch.float32))[0]).numpy()
    return sig.reshape(n_z, *xy.shape[:-1])


def band_max_sigma(model, xy: np.ndarray, n_z: int = 8) -> np.ndarray:
    """The field's largest sigma over n_z heights of the vehicle's band above world points xy (..., 2)."""
    return band_sigma(model, xy, n_z).max(0)


@torch.no_grad()
def view_evidence(model, course, data, bi: int, patch, batch: int = 8192) -> dict:
    """Training views' pixels whose first hit is box bi, by face and in `patch`; depth-prior samples there; the NeRF's
    rendering of those pixels."""
    box = course.boxes[bi]
    o, d = generate_rays(torch.as_tensor(data.c2w, dtype=torch.float32), data.K)
    n_pix = data.K.width * data.K.height
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    t, sid, _, _, _ = cast(BoxSet(course.boxes), o, d)
    hit = (sid == bi).numpy()
    view = np.repeat(np.arange(len(data.c2w)), n_pix)[hit]
    p = (o + t.clamp(max=1e3)[:, None] * d)[hit].numpy()
    loc = np.c_[box_local(p[:, :2], box), p[:, 2] - box.center[2]]
    face, corner = face_of(loc, box), in_patch(loc, patch)
    depth = data.depth.reshape(-1)[torch.as_tensor(hit)].numpy() if data.depth is not None else np.full(hit.sum(), np.nan)
    prior = np.isfinite(depth)
    light = np.array(data.lighting)[view]
    oh, dh, th = o[torch.as_tensor(hit)], d[torch.as_tensor(hit)], t[torch.as_tensor(hit)]
    emb = model.appearance.weight[torch.as_tensor(view)]
    rgb, acc, dep = [], [], []
    for s in range(0, len(oh), batch):
        r = model.render_rays(oh[s:s + batch], dh[s:s + batch], emb[s:s + batch])
        rgb.append(r["rgb"]), acc.append(r["acc"]), dep.append(r["depth"])
    gt = data.images.reshape(-1, 3)[torch.as_tensor(hit)]
    out = {"views": {lg: int(len(np.unique(view[light == lg]))) for lg in sorted(set(data.lighting))},
           "pixels": int(hit.sum()), "faces": {f: int((face == k).sum()) for k, f in enumerate(FACES)},
           "patch_pixels": int(corner.sum()), "patch_views": int(len(np.unique(view[corner]))),
           "prior_samples": int(prior.sum()), "prior_faces": {f: int((prior & (face == k)).sum()) for k, f in enumerate(FACES)},
           "prior_patch": int((prior & corner).sum())}
    if len(oh):
        rgb, acc, err = torch.cat(rgb), torch.cat(acc).numpy(), (torch.cat(dep) - th).numpy()
        for name, m in (("all", np.ones(len(acc), bool)), ("patch", corner)):
            if m.any():
                mse = float(((rgb[torch.as_tensor(m)] - gt[torch.as_tensor(m)]) ** 2).mean())
                out[f"nerf_{name}"] = {"psnr": -10 * np.log10(mse), "acc": float(acc[m].mean()), "depth_err_median": float(np.median(err[m])),
                                       "within_0.1m": float((np.abs(err[m]) <= 0.1).mean())}
    return out


@torch.no_grad()
def density_evidence(model, box, level: float, step: float = 0.01) -> dict:
    """sigma inside the true box over the height band: share >= level and largest, whole box and per quarter (box
    frame); the raw grid vertices within 0.1 m of the box at the band's middle height: (along, across, sigma)."""
    A, C = np.meshgrid(np.arange(-box.half[0], box.half[0] + 1e-9, step), np.arange(-box.half[1], box.half[1] + 1e-9, step), indexing="ij")
    sig = band_sigma(model, box_world(A, C, box))
    out = {"share_ge_level": float((sig >= level).mean()), "max": float(sig.max()),
           "columns_ge_level": float((sig.max(0) >= level).mean())}
    for qa, ma in (("near", A < 0), ("far", A >= 0)):
        for qc, mc in (("left", C > 0), ("right", C <= 0)):
            q = sig[:, ma & mc]
            out[f"{qa} {qc}"] = {"share_ge_level": float((q >= level).mean()), "max": float(q.max()),
                                 "columns_ge_level": float((q.max(0) >= level).mean())}
    o, sp = model.grid_coords()
    vol = model.density_volume()
    k = int(round((np.mean(HEIGHT_BAND) - o[2]) / sp[2]))
    gx, gy = o[0] + sp[0] * np.arange(vol.shape[0]), o[1] + sp[1] * np.arange(vol.shape[1])
    GX, GY = np.meshgrid(gx, gy, indexing="ij")
    loc = box_local(np.stack([GX, GY], -1), box)
    near = np.all(np.abs(loc) <= np.asarray(box.half[:2]) + 0.1, -1)
    out["grid_z"] = float(o[2] + sp[2] * k)
    out["grid_vertices"] = sorted(((float(a), float(b), float(v)) for (a, b), v in zip(loc[near], vol[..., k][near])), key=lambda r: (-r[0], -r[1]))
    return out


@torch.no_grad()
def level_sweep(run: Path, levels, barriers, patch):
    """Per mesh level: the rebuilt map's IoU / Chamfer, and per barrier the field's and the map's outward offsets."""
    R = load_run(run)
    model, course, cfg, names = R.model, R.course, R.cfg, box_names(R.course)
    vol = model.density_volume()
    print(f"\n{run}: grid {model.resolution}, density range {vol.min():.3g}..{vol.max():.3g} / m; run's level {cfg['mesh_level']:g}; "
          "outward offset (m; +: outside the true face) of field (reaches the level at some band height) / map")
    for level in levels:
        if not vol.min() < level < vol.max():
            print(f"  level {level:g}: outside the density range, skipped")
            continue
        verts, faces = model.mesh(level, cfg["mesh_upsample"])
        agree = mesh_agreement(verts, faces, course, cfg["obstacle_cell"])  # its map: ObstacleMap.from_mesh, as train.py's
        print(f"  level {level:g} / m: {len(verts)} vertices, IoU road {agree['iou_road']:.3f}, corridor {agree['iou_corridor']:.3f}, "
              f"Chamfer {agree['chamfer_m']:.2f} m")
        occ = {"field": lambda xy, lv=level: band_max_sigma(model, xy) >= lv, "map": agree["mesh_map"].occupied}
        for bname in barriers:
            box = course.boxes[names.index(bname)]
            cells = [f"{ln} " + " / ".join(f"{outward_offset(o, box, p, d):+.3f}" for o in occ.values()) for ln, p, d in LINES]
            print(f"    {bname}: " + "; ".join(cells) + "; corner patch covered " + " / ".join(f"{patch_share(o, box, patch):.2f}" for o in occ.values()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--barriers", default="barrier 1,barrier 2")
    ap.add_argument("--patch", default="-0.2,-0.1,-0.3,-0.2", help="along lo, along hi, across lo, across hi (m, box frame): "
                    "the near right corner where barrier 2's map is open in the no-depth-prior run")
    ap.add_argument("--levels", default="", help="comma-separated mesh levels (1/m): sweep the level (see above) instead")
    args = ap.parse_args()
    torch.set_num_threads(2)
    v = [float(x) for x in args.patch.split(",")]
    patch = ((v[0], v[1]), (v[2], v[3]))
    if args.levels:
        for run in map(Path, args.runs):
            level_sweep(run, [float(x) for x in args.levels.split(",")], [b.strip() for b in args.barriers.split(",")], patch)
        return
    for run in map(Path, args.runs):
        res = run / "results.json"  # the level train.py used (its fallback for an under-trained field), else the config's
        R = load_run(run, mesh_level=json.loads(res.read_text())["mesh"]["level"] if res.exists() else 0.0)
        model, course, level = R.model, R.course, R.level
        data = read_transforms(run / "data", aabb=course.aabb)
        names = box_names(course)
        print(f"\n{run}: grid {model.resolution}, level {level:g} / m, {len(data.c2w)} training views "
              f"({'with' if data.depth is not None else 'no'} depth-prior images)")
        for bname in args.barriers.split(","):
            bi = names.index(bname.strip())
            box = course.boxes[bi]
            ev = view_evidence(model, course, data, bi, patch)
            print(f"  {bname}: seen by " + ", ".join(f"{n} {lg}" for lg, n in ev["views"].items()) + f" training views, {ev['pixels']} pixels "
                  "(" + ", ".join(f"{f} {n}" for f, n in ev["faces"].items()) + f"); patch {patch}: {ev['patch_pixels']} pixels in "
                  f"{ev['patch_views']} views; depth-prior samples {ev['prior_samples']} (" + ", ".join(f"{f} {n}" for f, n in ev["prior_faces"].items())
                  + f"; patch {ev['prior_patch']})")
            for name in ("all", "patch"):
                if f"nerf_{name}" in ev:
                    e = ev[f"nerf_{name}"]
                    print(f"    NeRF on those pixels ({name}): PSNR {e['psnr']:.2f} dB, acc {e['acc']:.2f}, median depth error {e['depth_err_median']:+.2f} m, "
                          f"{e['within_0.1m']:.2f} within 0.1 m of the surface")
            de = density_evidence(model, box, level)
            print(f"    sigma inside the true box, band {HEIGHT_BAND}: {de['share_ge_level']:.2f} of points >= {level:g}, "
                  f"{de['columns_ge_level']:.2f} of columns reach it, max {de['max']:.2f} / m; quarters: "
                  + "; ".join(f"{q} {de[q]['columns_ge_level']:.2f} (max {de[q]['max']:.1f})" for q in ("near left", "near right", "far left", "far right")))
            print(f"    raw grid vertices within 0.1 m of the box at z = {de['grid_z']:.3f} m (box frame along, across: sigma / m):")
            rows = {}
            for a, c, s in de["grid_vertices"]:
                rows.setdefault(round(a, 3), []).append(f"({c:+.2f}) {s:7.2f}")
            for a, cells in rows.items():
                print(f"      along {a:+.2f}: " + "  ".join(cells))
            print("    top view, box frame, travel up, left on the left, 0.025 m per character (field reaches the level at some band "
                  "height / obstacle map: '#' both, 'F' field only, 'M' map only, '.' neither inside the box; 'o' / 'f' / 'm' / ' ' outside):")
            for line in field_map_picture(box, lambda xy: band_max_sigma(model, xy) >= level, R.mesh_map.occupied):
                print("      |" + line + "|")


if __name__ == "__main__":
    main()
