"""How wide a pole thinner than a voxel comes out of the NeRF's grid: a synthetic pole against the trilinear prediction.

A lamp pole (0.10 x 0.10 m, as the course's) stands in a GridNeRF density grid of 0.075 m voxels, held the cleanest way
a grid can hold it: raw density ln(peak) on every vertex inside the pole, ln(background) on every other vertex. The
project's own code reads it: the field interpolates the raw density trilinearly and sigma = exp(raw) (GridNeRF.query /
.sigma), the mesh is marching cubes of the raw grid at ln(level) (GridNeRF.mesh), the map ObstacleMap.from_mesh (0.05 m
cells whose edges lie on the pole's faces, as in the course); the outward offsets of the field and the map from each
true face are barrier_evidence.py's (outward_offset along the four face-centre lines, the field where it reaches the
level at some height of the vehicle's band).

The prediction. Along a face-centre line (u along it, v across at the pole's centre) the raw density is
    raw = ln b + (ln a - ln b) W_u(u) W_v,
W_u the summed trilinear (hat) weight of the vertex columns inside the pole (1 between them, falling linearly to 0 one
voxel h beyond the last, u_last) and W_v <= 1 the same across at the line. So the field reaches the level L at
    u_last + h (1 - q / W_v),   q = ln(L / b) / ln(a / b)            (interpolation of the raw density, as GridNeRF does)
and marching cubes, which joins its crossings on the cells' edges by straight segments, at u_last + h (W_v - q) (the
same where W_v = 1). The field's width over the rows holding the pole is (n - 1) h + 2 h (1 - q), n in {1, 2} the
vertices inside the pole along that axis (n = 2 for a share (w - h) / h of the pole's offsets in the voxel), so its
mean over offsets is w + h (1 - 2 q). Were sigma itself interpolated linearly, q would be q_lin = (L - b) / (a - b)
~ L / a, and a peak 100x the level would reach ~one voxel beyond the holding vertices on every side (the README's
earlier reading of the 0.075 m map's pole 2). The map's edge then lies within (E - cell / 2, E + cell / 2 + fine cell
* sqrt 2] of the mesh's crossing E (a cell is an obstacle when its centre is; the fine raster marks cells the surface
touches).

    python benchmarks/pole_width.py                       # offsets in the voxel x levels 2, 8, peak 236 / m, bg 0.018 / m
    python benchmarks/pole_width.py --run runs/quick-20261127-072748   # also: the run's pole 2 with its outside vertices cleared
    python benchmarks/pole_width.py --run runs/quick-20261127-072748 --training   # why training put density there
                                                                    # (training_evidence; no retraining)
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driveenv_nerf.course import Box  # noqa: E402
from driveenv_nerf.geometry import HEIGHT_BAND, OBSTACLE_CELL, ObstacleMap  # noqa: E402
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.nerf import GridNeRF, NeRFConfig  # noqa: E402
from barrier_evidence import LINES, band_max_sigma, outward_offset  # noqa: E402
from nerf_world_diagnose import box_world  # noqa: E402

POLE_HALF = 0.05  # the course's lamp poles: 0.10 x 0.10 m, 1.4 m tall (course.campus_course)
POLE_HEIGHT = 1.4
VOXEL = 0.075
FACE_LINES = LINES[:4]  # approach (-along), far (+along), left side (+across), right side (-across); yaw 0: along = x
PEAK = 236.0  # the run's pole-2 vertices: 216-256 / m (README, "why the 0.075 m map's pole 2 is too wide")
BACKGROUND = math.exp(NeRFConfig.density_init)  # 0.018 / m: an untouched vertex


def pole_grid(phase, peak: float = PEAK, background: float = BACKGROUND, voxel: float = VOXEL, n: int = 8):
    """A GridNeRF whose density holds one pole at the origin: ln(peak) on the vertices inside it, ln(background)
    elsewhere. The pole's centre lies phase = (px, py) (m, in [0, voxel)) past a vertex in x and y; the grid spans n
    voxels in x and y, z from -2 voxels to 8 (the band inside). Returns the model and the pole's Box."""
    lo = np.array([-phase[0] - (n // 2) * voxel, -phase[1] - (n // 2) * voxel, -2 * voxel])
    hi = lo + np.array([n, n, 10]) * voxel
    # the grid's resolution is ceil(extent / voxel) + 1 in float32: a hair's larger voxel keeps it at n + 1 vertices
    model = GridNeRF((tuple(lo), tuple(hi)), 1, NeRFConfig(voxel=voxel * (1 + 1e-5)))
    origin, sp = model.grid_coords()
    assert model.resolution == (n + 1, n + 1, 11) and np.allclose(sp, voxel, atol=1e-6), (model.resolution, sp)
    x, y, z = (origin[a] + sp[a] * np.arange(model.resolution[a]) for a in range(3))
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")  # voxel-major: x fastest
    inside = (np.abs(X) <= POLE_HALF) & (np.abs(Y) <= POLE_HALF) & (Z >= 0) & (Z <= POLE_HEIGHT)
    with torch.no_grad():
        model.grid[:, 0] = torch.as_tensor(np.where(inside, math.log(peak), math.log(background)).ravel(), dtype=torch.float32)
    return model, Box((0.0, 0.0, POLE_HEIGHT / 2), (POLE_HALF, POLE_HALF, POLE_HEIGHT / 2), 0.0, "pole")


def map_aabb(box, margin_cells: int = 11, cell: float = OBSTACLE_CELL):
    """A map box whose cell edges lie on the pole's faces (as the course's aabb puts them for its lamp poles)."""
    lo = np.asarray(box.center[:2]) - box.half[0] - margin_cells * cell
    hi = np.asarray(box.center[:2]) + box.half[0] + margin_cells * cell
    return (float(lo[0]), float(lo[1]), -1.0), (float(hi[0]), float(hi[1]), 2.0)


def q_level(level: float, peak: float, background: float, linear: bool = False) -> float:
    """Where between a holding vertex (1) and a background one (0) the interpolated field meets the level, as the
    weight of the holding vertex: raw density (log sigma) interpolated, or sigma itself (linear)."""
    if linear:
        return (level - background) / (peak - background)
    return math.log(level / background) / math.log(peak / background)


def predicted_offsets(model, box, level: float, peak: float, background: float, linear: bool = False, across=None) -> dict:
    """Per face-centre line: the predicted outward offset (m) of the field and of the marching-cubes surface from the
    true face (nan where the line never reaches the level), and the vertices inside the pole along the line (n).
    across: {line name: offset (m) across the line from the pole's centre} moves the lines (default: through it)."""
    origin, sp = model.grid_coords()
    q = q_level(level, peak, background, linear)
    out = {}
    for name, _, d in FACE_LINES:
        ax = int(abs(d[1]) > abs(d[0]))
        sgn, h = float(np.sign(d[ax])), float(sp[ax])
        u = origin[ax] + sp[ax] * np.arange(model.resolution[ax]) - box.center[ax]
        v = origin[1 - ax] + sp[1 - ax] * np.arange(model.resolution[1 - ax]) - box.center[1 - ax]
        u_in = u[np.abs(u) <= box.half[ax]]
        v_line = (across or {}).get(name, 0.0)
        w_v = float(np.clip(1 - np.abs(v[np.abs(v) <= box.half[1 - ax]] - v_line) / sp[1 - ax], 0, None).sum())
        u_last = float((sgn * u_in).max())
        field = u_last + h * (1 - q / w_v) - box.half[ax] if w_v > q else float("nan")
        mesh = u_last + h * (w_v - q) - box.half[ax] if w_v > q else float("nan")
        # over the rows holding the pole (W_v = 1) field and mesh reach u_last + h (1 - q): the mesh's extent
        out[name] = {"field": field, "mesh": mesh, "extent": u_last + h * (1 - q) - box.half[ax], "n": len(u_in), "w_v": w_v}
    return out


@torch.no_grad()
def measured_offsets(model, box, level: float, cell: float = OBSTACLE_CELL, supersample: int = 4, aabb=None) -> dict:
    """Per face-centre line: the outward offsets of the field (reaches the level at some band height) and of the
    obstacle map built from the mesh (barrier_evidence's outward_offset), and the mesh's extent over the band along
    the line's axis, beyond the face; map_across: where across the line (m from the pole's centre) lie the centres of
    the map cells the line reads (a face-centre line runs along cell edges: the map reads the cells on one side).
    aabb: the map's box (default: map_aabb around the pole; a run's course.aabb builds the run's own map)."""
    verts, faces = model.mesh(level)
    omap = ObstacleMap.from_mesh(verts, faces, aabb or map_aabb(box, cell=cell), cell, supersample=supersample)
    band = verts[(verts[:, 2] >= HEIGHT_BAND[0]) & (verts[:, 2] <= HEIGHT_BAND[1])]
    field = lambda xy: band_max_sigma(model, xy) >= level  # noqa: E731
    out = {}
    assert box.yaw == 0.0, "the lines' axes are the world's"
    for name, p, d in FACE_LINES:
        ax = int(abs(d[1]) > abs(d[0]))
        sgn = float(np.sign(d[ax]))
        start = box_world(np.array(p[0]), np.array(p[1]), box)
        out[name] = {"field": outward_offset(field, box, p, d), "map": outward_offset(omap.occupied, box, p, d),
                     "mesh_extent": float((sgn * (band[:, ax] - box.center[ax])).max() - box.half[ax]) if len(band) else float("nan"),
                     "map_across": float(omap.origin[1 - ax] + (omap.index(start)[0][1 - ax] + 0.5) * cell - box.center[1 - ax])}
    return out


def widths(off: dict, key: str, half: float = POLE_HALF) -> tuple[float, float]:
    """Along / across width (m) of a pole from its four face offsets."""
    return (2 * half + off["approach"][key] + off["far"][key], 2 * half + off["left side"][key] + off["right side"][key])


def run_phase(run_dir: Path):
    """Pole 2's offset in a run's grid (its spacing and phase) and its vertex values."""
    from nerf_world_diagnose import box_names, load_run
    R = load_run(run_dir)
    box = R.course.boxes[box_names(R.course).index("lamp pole 2")]
    origin, sp = R.model.grid_coords()
    phase = tuple(float((box.center[a] - origin[a]) % sp[a]) for a in range(2))
    return R, box, phase, float(sp[0])


@torch.no_grad()
def cleared_outside(model, box, rings: int = 2):
    """A copy of the raw grid with every vertex outside the pole but within `rings` voxels of it set to the untouched
    value ln(BACKGROUND): what the offsets would be if the field held the pole only on the vertices inside it."""
    origin, sp = model.grid_coords()
    nx, ny, nz = model.resolution
    x, y = (origin[a] + sp[a] * np.arange(model.resolution[a]) - box.center[a] for a in range(2))
    Y, X = np.meshgrid(y, x, indexing="ij")
    near = (np.abs(X) <= box.half[0] + rings * sp[0]) & (np.abs(Y) <= box.half[1] + rings * sp[1])
    outside = near & ~((np.abs(X) <= box.half[0]) & (np.abs(Y) <= box.half[1]))
    raw = model.grid[:, 0].reshape(nz, ny, nx).clone()
    raw[:, torch.as_tensor(outside)] = math.log(BACKGROUND)
    return raw.reshape(-1)



# ------------------------------------------------------------------ why training puts density on the outside vertices
def slab(o, d, lo, hi):
    """Entry and exit distances of rays o + t d with the axis-aligned box [lo, hi] (slab test over the given axes;
    as GridNeRF.ray_bounds, without its near-plane clamp)."""
    inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    return torch.minimum(t1, t2).max(-1).values, torch.maximum(t1, t2).min(-1).values


def column_rays(o, d, tn, tf, box, margin: float) -> torch.Tensor:
    """Rays (N, 3) whose segment [tn, tf] crosses the vertical column over the box grown by `margin` (xy slab test):
    the only rays whose samples can read the grid vertices within margin - one voxel of the box."""
    assert box.yaw == 0.0
    c, h = torch.tensor(box.center[:2], dtype=o.dtype), torch.tensor(box.half[:2], dtype=o.dtype) + margin
    te, tx = slab(o[:, :2], d[:, :2], c - h, c + h)
    return (tx > te) & (tx > tn) & (te < tf)


def run_train_config(cfg: dict) -> NR.TrainConfig:
    """The loss weights a run's NeRF trained with (its config.json; train.py's TrainConfig, opacity entropy excepted:
    training_evidence does not model it)."""
    return NR.TrainConfig(w_distortion=cfg["w_distortion"], w_tv_density=cfg["w_tv_density"], w_depth=cfg["w_depth"],
                          depth_sigma=cfg.get("depth_sigma", NR.TrainConfig.depth_sigma))  # runs before the option: 0.25


def training_terms(model, o, d, rgb, app, depth, tc, n_samples=None, perturb=True, chunk: int = 4096):
    """Sums over the rays of the NeRF training loss's per-ray terms as train_step computes them on one stratified draw
    (torch's global RNG): squared colour error (mean over channels; F.mse_loss's mean over a batch is its mean), the
    distortion loss and, on the rays with a known depth (finite `depth`), the line-of-sight depth loss. Returns
    (per-ray squared error (R,), distortion sum, depth-loss sum, number of depth rays)."""
    err, dist, dl, nd = [], 0.0, 0.0, 0
    for s in range(0, len(o), chunk):
        sl = slice(s, s + chunk)
        out = model.render_rays(o[sl], d[sl], app[sl], perturb=perturb, n_samples=n_samples)
        err.append(((out["rgb"] - rgb[sl]) ** 2).mean(-1))
        dist = dist + NR.distortion_loss(out["weights"], out["t"], out["delta"]) * len(out["t"])
        k = torch.isfinite(depth[sl])
        if k.any():
            dl = dl + NR.line_of_sight_depth_loss(out["weights"][k], out["t"][k], out["acc"][k], out["tf"][k], depth[sl][k],
                                                  tc.depth_sigma) * int(k.sum())
            nd += int(k.sum())
    return (torch.cat(err) if err else torch.zeros(0)), dist, dl, nd


def pole_samples(model, o, d, box, n_samples: int):
    """For rays through the pole: the chord (m) each cuts through the true pole and the length of the stratified sample
    interval there (NeRFConfig's quadratic spacing, tn + (tf - tn) u^2 over n_samples intervals): one stratified sample
    lands inside the pole with probability ~ min(1, chord / interval)."""
    lo = torch.tensor(np.asarray(box.center) - np.asarray(box.half), dtype=o.dtype)
    hi = torch.tensor(np.asarray(box.center) + np.asarray(box.half), dtype=o.dtype)
    te, tx = slab(o, d, lo, hi)
    tn, tf = model.ray_bounds(o, d)
    u = ((0.5 * (te + tx) - tn) / (tf - tn)).clamp(0, 1).sqrt()
    k = (u * n_samples).floor().clamp(max=n_samples - 1)
    interval = (tf - tn) * (((k + 1) / n_samples) ** 2 - (k / n_samples) ** 2)
    return (tx - te).clamp(min=0), interval


def training_evidence(R, box, data, draws: int = 8, dense: int = 1024, margin: float = 0.3, seed: int = 0):
    """Why the run's training put density on the vertices outside pole 2 (no retraining): on the training rays that
    cross the column around the pole (column_rays; the others never read those vertices), the expected training loss
    (train_step's terms, `draws` paired stratified draws) with the run's field and with the outside vertices cleared
    (cleared_outside, 2 rings), per term and split into rays whose true first hit is the pole and the others; the same
    colour error with `dense` samples per ray (no stratification); the expected gradient of each term, per training step,
    on the raw density of the vertex columns one ring outside the pole over the band's heights."""
    from driveenv_nerf.camera import generate_rays
    from driveenv_nerf.renderer import BoxSet, cast
    cfg, model = R.cfg, R.model
    tc = run_train_config(cfg)
    o, d = generate_rays(torch.as_tensor(data.c2w, dtype=torch.float32), data.K)
    n_pix = data.K.width * data.K.height
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    depth = data.depth.reshape(-1) if data.depth is not None and tc.w_depth > 0 else torch.full((len(o),), float("nan"))
    n_all, n_depth = len(o), int(torch.isfinite(depth).sum())
    tn, tf = model.ray_bounds(o, d)
    sel = column_rays(o, d, tn, tf, box, margin)
    t, sid, ib, _, _ = cast(BoxSet(R.course.boxes), o[sel], d[sel])
    bi = [i for i, b in enumerate(R.course.boxes) if b is box][0]
    on_pole = sid == bi
    o, d, rgb, depth = o[sel], d[sel], data.images.reshape(-1, 3)[sel].float(), depth[sel]
    img = torch.arange(len(data.c2w)).repeat_interleave(n_pix)[sel]
    out = {"rays": int(sel.sum()), "pole_rays": int(on_pole.sum()), "n_all": n_all, "n_depth": n_depth,
           "pole_views": int(len(torch.unique(img[on_pole])))}
    chord, interval = pole_samples(model, o[on_pole], d[on_pole], box, model.cfg.n_samples)
    out["chord_median"], out["interval_median"] = float(chord.median()), float(interval.median())
    out["p_sample_in_pole"] = float((chord / interval).clamp(max=1).mean())
    keep = model.grid[:, 0].detach().clone()
    fields = {"run": keep, "cleared": cleared_outside(model, box)}
    res = {}
    with torch.no_grad():
        app = model.appearance(img)
        for name, raw in fields.items():
            model.grid[:, 0] = raw
            e_pole, e_rest, dist, dl = 0.0, 0.0, 0.0, 0.0
            for k in range(draws):
                torch.manual_seed(seed + k)  # the same stratified draws for both fields
                err, ds, dd, _ = training_terms(model, o, d, rgb, app, depth, tc)
                e_pole, e_rest = e_pole + float(err[on_pole].sum()) / draws, e_rest + float(err[~on_pole].sum()) / draws
                dist, dl = dist + float(ds) / draws, dl + float(dd) / draws
            err_dense = training_terms(model, o, d, rgb, app, depth, tc, n_samples=dense, perturb=False, chunk=256)[0]
            res[name] = {"err_pole": e_pole, "err_rest": e_rest, "dist": dist, "depth": dl,
                         "tv": float(NR.total_variation(model.grid_view(slice(0, 1)))),
                         "dense_pole": float(err_dense[on_pole].sum()), "dense_rest": float(err_dense[~on_pole].sum())}
        model.grid[:, 0] = keep
    out["fields"] = res
    # the expected gradient per training step on the raw density of the ring-1 columns (vertices in the height band)
    origin, sp = model.grid_coords()
    nx, ny, nz = model.resolution
    x, y, z = (origin[a] + sp[a] * np.arange(model.resolution[a]) - (box.center[a] if a < 2 else 0.0) for a in range(3))
    cols = [(i, j) for i in range(nx) if abs(x[i]) <= box.half[0] + sp[0] for j in range(ny) if abs(y[j]) <= box.half[1] + sp[1]]
    zs = [k for k in range(nz) if HEIGHT_BAND[0] <= z[k] <= HEIGHT_BAND[1]]
    grads = {n: torch.zeros(len(model.grid)) for n in ("photometric", "distortion", "depth")}
    app = model.appearance(img).detach()
    for k in range(draws):
        torch.manual_seed(seed + k)
        for s in range(0, len(o), 2048):  # the terms are sums over rays: chunked gradients add up
            sl = slice(s, s + 2048)
            err, ds, dd, _ = training_terms(model, o[sl], d[sl], rgb[sl], app[sl], depth[sl], tc)
            for n, term in (("photometric", err.sum() / n_all), ("distortion", tc.w_distortion * ds / n_all),
                            ("depth", tc.w_depth * dd / max(n_depth, 1))):
                if torch.is_tensor(term) and term.requires_grad:
                    grads[n] += torch.autograd.grad(term, model.grid, retain_graph=True)[0][:, 0] / draws
            del err, ds, dd
    model.grid.grad = None
    tv = tc.w_tv_density * NR.total_variation(model.grid_view(slice(0, 1)))
    tv.backward()
    grads["tv"] = model.grid.grad[:, 0].clone()
    model.grid.grad = None
    sig = torch.exp(keep)
    out["columns"] = []
    for i, j in cols:
        if abs(x[i]) <= box.half[0] and abs(y[j]) <= box.half[1]:
            continue
        idx = [k * ny * nx + j * nx + i for k in zs]
        out["columns"].append({"along": float(x[i]), "across": float(y[j]), "sigma": [float(sig[v]) for v in idx],
                               **{f"descent_{n}": float(-g[idx].sum()) for n, g in grads.items()}})
    out["band_z"] = [float(z[k]) for k in zs]
    return out


def fmt(off: dict, key: str) -> str:
    return " / ".join(f"{off[f][key]:+.3f}" for f, _, _ in FACE_LINES)


def print_training_evidence(run: Path, draws: int):
    from driveenv_nerf.nerfstudio_data import read_transforms
    R, box, _, _ = run_phase(run)
    data = read_transforms(run / "data", aabb=R.course.aabb)
    ev = training_evidence(R, box, data, draws=draws)
    tc = run_train_config(R.cfg)
    print(f"{run}: pole 2; {ev['n_all']} training rays ({ev['n_depth']} with a depth-prior sample); {ev['rays']} cross the column "
          f"0.3 m around the pole, {ev['pole_rays']} of them (in {ev['pole_views']} views) first hit the pole")
    print(f"  pole rays: chord through the pole median {ev['chord_median']:.3f} m; the {R.model.cfg.n_samples}-sample stratified interval there "
          f"median {ev['interval_median']:.3f} m; P(a sample lands in the pole) mean {ev['p_sample_in_pole']:.3f}")
    print(f"  expected training loss per step on these rays ({draws} paired stratified draws; x 1e6), run's field / outside vertices "
          "(2 rings) cleared / cleared - run:")
    F = ev["fields"]
    rows = {"colour error, pole rays": lambda f: f["err_pole"] / ev["n_all"], "colour error, other rays": lambda f: f["err_rest"] / ev["n_all"],
            "distortion (weighted)": lambda f: tc.w_distortion * f["dist"] / ev["n_all"],
            "depth prior (weighted)": lambda f: tc.w_depth * f["depth"] / max(ev["n_depth"], 1),
            "density TV (weighted, whole grid)": lambda f: tc.w_tv_density * f["tv"],
            "colour error, pole rays, dense (no strata)": lambda f: f["dense_pole"] / ev["n_all"],
            "colour error, other rays, dense (no strata)": lambda f: f["dense_rest"] / ev["n_all"]}
    for name, f in rows.items():
        a, b = f(F["run"]) * 1e6, f(F["cleared"]) * 1e6
        print(f"    {name:44s} {a:10.3f} {b:10.3f} {b - a:+10.3f}")
    print(f"  pole rays' mean squared colour error: stratified run {F['run']['err_pole'] / ev['pole_rays']:.4f}, cleared "
          f"{F['cleared']['err_pole'] / ev['pole_rays']:.4f}; dense run {F['run']['dense_pole'] / ev['pole_rays']:.4f}, cleared "
          f"{F['cleared']['dense_pole'] / ev['pole_rays']:.4f}")
    print(f"  ring-1 vertex columns (box frame along, across), band z {', '.join(f'{z:.3f}' for z in ev['band_z'])}: sigma / m there; expected "
          "descent direction per step (-gradient of each term on their raw density, summed over the band; + raises the density; x 1e9):")
    names = ("photometric", "distortion", "depth", "tv")
    print("    " + " " * 16 + "".join(f"{n:>13s}" for n in names))
    tot = {n: 0.0 for n in names}
    for c in ev["columns"]:
        print(f"    ({c['along']:+.3f}, {c['across']:+.3f}) " + "".join(f"{c['descent_' + n] * 1e9:13.3f}" for n in names)
              + "   sigma " + " ".join(f"{s:.2f}" for s in c["sigma"]))
        for n in names:
            tot[n] += c["descent_" + n]
    print("    all ring-1       " + "".join(f"{tot[n] * 1e9:13.3f}" for n in names))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="2,8")
    ap.add_argument("--peak", type=float, default=PEAK)
    ap.add_argument("--background", type=float, default=BACKGROUND)
    ap.add_argument("--phases", type=int, default=6, help="pole offsets per axis across one voxel (a multiple of 3: n = 2 for a third of them)")
    ap.add_argument("--run", default="", help="a 0.075 m run: its pole 2's phase, and its field with the outside vertices cleared")
    ap.add_argument("--training", action="store_true", help="with --run: only training_evidence (why training put density on "
                    "the vertices outside pole 2: the training loss with and without it, and each term's gradient there)")
    ap.add_argument("--draws", type=int, default=8, help="--training: paired stratified draws per expectation")
    args = ap.parse_args()
    torch.set_num_threads(2)
    levels = [float(x) for x in args.levels.split(",")]
    if args.training:
        return print_training_evidence(Path(args.run), args.draws)
    print(f"synthetic pole 0.10 m, voxel {VOXEL} m, peak {args.peak:g} / m, background {args.background:.3g} / m; offsets (m, + outside the true "
          "face) approach / far / left / right; widths along x across (m)")
    for level in levels:
        q, ql = q_level(level, args.peak, args.background), q_level(level, args.peak, args.background, linear=True)
        print(f"\nlevel {level:g} / m: q = {q:.3f} (raw interpolated; mean width over offsets w + h(1 - 2q) = {0.1 + VOXEL * (1 - 2 * q):.3f} m), "
              f"q_lin = {ql:.4f} (sigma interpolated: {0.1 + VOXEL * (1 - 2 * ql):.3f} m)")
        all_w, ext_w = [], []
        for px in (np.arange(args.phases) + 0.5) / args.phases * VOXEL:
            for py in (np.arange(args.phases) + 0.5) / args.phases * VOXEL:
                model, box = pole_grid((px, py), args.peak, args.background)
                meas = measured_offsets(model, box, level)
                pred, lin = (predicted_offsets(model, box, level, args.peak, args.background),
                             predicted_offsets(model, box, level, args.peak, args.background, linear=True))
                pmap = predicted_offsets(model, box, level, args.peak, args.background, across={f: meas[f]["map_across"] for f in meas})
                all_w += list(widths(meas, "field"))
                ext_w += list(widths(meas, "mesh_extent"))
                print(f"  phase ({px:.4f}, {py:.4f}) n {pred['approach']['n']}x{pred['left side']['n']}: field {fmt(meas, 'field')} "
                      f"(pred {fmt(pred, 'field')}; sigma-linear {fmt(lin, 'field')}), map {fmt(meas, 'map')} (mesh on its row, pred {fmt(pmap, 'mesh')}), "
                      f"mesh extent {fmt(meas, 'mesh_extent')} (pred {fmt(pred, 'extent')}), "
                      "widths field %.3f x %.3f, map %.3f x %.3f" % (*widths(meas, "field"), *widths(meas, "map")))
        fin = [w for w in all_w if not np.isnan(w)]
        print(f"  mesh width over the rows holding the pole (its extent): mean {np.mean(ext_w):.3f} m, range {min(ext_w):.3f}..{max(ext_w):.3f} "
              f"over {len(ext_w)}; field width on the face-centre lines: mean {np.mean(fin):.3f} m, range {min(fin):.3f}..{max(fin):.3f} "
              f"over the {len(fin)} of {len(all_w)} whose both lines reach past the pole's centre")
    if args.run:
        R, rbox, phase, sp = run_phase(Path(args.run))
        print(f"\n{args.run}: pole 2 at phase ({phase[0]:.4f}, {phase[1]:.4f}) m of its {sp:.5f} m grid")
        model_syn, box_syn = pole_grid(phase, args.peak, args.background, voxel=sp)
        for level in levels:
            meas = measured_offsets(model_syn, box_syn, level)
            print(f"  level {level:g}: synthetic pole at that phase: field {fmt(meas, 'field')}, map {fmt(meas, 'map')}, "
                  "widths field %.3f x %.3f, map %.3f x %.3f" % (*widths(meas, "field"), *widths(meas, "map")))
        keep = R.model.grid[:, 0].clone()
        for label, raw in (("the run's field", keep), ("outside vertices (2 rings) cleared", cleared_outside(R.model, rbox))):
            with torch.no_grad():
                R.model.grid[:, 0] = raw
            for level in levels:
                meas = measured_offsets(R.model, rbox, level, R.cfg["obstacle_cell"], aabb=R.course.aabb)
                print(f"  level {level:g}: {label}: field {fmt(meas, 'field')}, map {fmt(meas, 'map')}, "
                      "widths field %.3f x %.3f, map %.3f x %.3f" % (*widths(meas, "field"), *widths(meas, "map")))
        with torch.no_grad():
            R.model.grid[:, 0] = keep


if __name__ == "__main__":
    main()
