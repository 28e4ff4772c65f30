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


def fmt(off: dict, key: str) -> str:
    return " / ".join(f"{off[f][key]:+.3f}" for f, _, _ in FACE_LINES)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="2,8")
    ap.add_argument("--peak", type=float, default=PEAK)
    ap.add_argument("--background", type=float, default=BACKGROUND)
    ap.add_argument("--phases", type=int, default=6, help="pole offsets per axis across one voxel (a multiple of 3: n = 2 for a third of them)")
    ap.add_argument("--run", default="", help="a 0.075 m run: its pole 2's phase, and its field with the outside vertices cleared")
    args = ap.parse_args()
    torch.set_num_threads(2)
    levels = [float(x) for x in args.levels.split(",")]
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
