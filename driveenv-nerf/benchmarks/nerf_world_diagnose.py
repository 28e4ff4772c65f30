"""Why does a policy that succeeds in the real world fail in the NeRF world?

Loads a finished run (its NeRF, mesh level, policies) and, for each chosen policy, evaluates it exactly as
train.py's validation stage does (same worlds, seeds and starts), plus two hybrid worlds that separate the two
ways the NeRF world differs from the real one:

  real      real-world pixels,  exact boxes (collisions)
  nerf      NeRF pixels,        the NeRF mesh's obstacle map
  nerf-obs  NeRF pixels,        exact boxes        (only the observation differs from `real`)
  nerf-geo  real-world pixels,  the NeRF obstacle map (only the collision geometry differs from `real`)
and, chosen with --worlds, two worlds without the lamp poles (which the NeRF lacks, in its images and its map):
  real-nopole      real-world pixels and exact boxes of the course with its lamp poles removed
  nerf-obs-nopole  NeRF pixels, exact boxes without the lamp poles (does a NeRF-pixel trajectory that passes
                   where pole 2 stands then hit a true box?)

Each episode's end is attributed: success, timeout, off-road (left / right side, arc length), or a
collision with a named box (exact boxes), or, for the NeRF obstacle map, with the occupied cells nearest
box and how far that box really is (<= 0.05 m: the true obstacle; farther: the mesh is fatter than the box;
> 0.3 m: a phantom / floater).

Then one policy is rolled step by step in the NeRF world and in the real world (the same seeded starts);
at every step it logs the vehicle's position, the policy's action on the world's own image and on the other
world's image at the same pose, and the observation difference (mean |NeRF - real| per pixel, 0-255,
and each image's mean brightness) -> <run>/diagnose/steps_<policy>.csv, plus a PNG of both views along
the first failed NeRF episode.

    python benchmarks/nerf_world_diagnose.py runs/quick-20261126-054230 [--policies ppo-sim,dagger-sim] [--samples 32]
    python benchmarks/nerf_world_diagnose.py runs/quick-20261126-054230 --legacy   # the collision map built as before
    python benchmarks/nerf_world_diagnose.py runs/quick-20261126-082044 --worlds real,nerf,real-nopole,nerf-obs-nopole --no-checks --no-steps
    python benchmarks/nerf_world_diagnose.py runs/<finer-grid run> --policies-from runs/<default run> --policies ppo-sim,dagger-sim
                   # another run's (sim-trained) policies in this run's NeRF world

Also printed first: how far each road barrier's NeRF surface and obstacle map reach outside the true box, and
whether NeRF and real images of the same poses line up (a pose / intrinsics convention error would make a
shifted NeRF image fit better).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driveenv_nerf import nerf as NR  # noqa: E402
from driveenv_nerf.agents import PixelPolicy, evaluate  # noqa: E402
from driveenv_nerf.camera import VehicleCamera  # noqa: E402
from driveenv_nerf.course import campus_course  # noqa: E402
from driveenv_nerf.envs import BatchDrive, EnvConfig, NeRFWorld, RealWorld, World  # noqa: E402
from driveenv_nerf.geometry import CAR_LENGTH, CAR_WIDTH, HEIGHT_BAND, GroundTruthCollider, ObstacleMap, footprint_corners, footprint_points, _sat_overlap, box_corners_2d  # noqa: E402
from driveenv_nerf.nerfstudio_data import read_transforms  # noqa: E402


class Hybrid(World):
    """Pixels from one world, collisions from another."""

    def __init__(self, pixels: World, geometry: World, name: str):
        self.pixels, self.geometry, self.name = pixels, geometry, name

    def on_reset(self, idx, rng, n):
        self.pixels.on_reset(idx, rng, n)

    def render(self, states, idx=None):
        return self.pixels.render(states, idx)

    def collides(self, states):
        return self.geometry.collides(states)


def box_names(course):
    names, count = [], {}
    labels = {0: "building", 1: "wall right of 2nd straight", 2: "low wall at the end"}
    for i, b in enumerate(course.boxes):
        if i in labels:
            names.append(labels[i])
            continue
        count[b.kind] = count.get(b.kind, 0) + 1
        names.append({"wall": "curve wall", "obstacle": "barrier", "pole": "lamp pole"}[b.kind] + f" {count[b.kind]}")
    return names


def box_local(pts, b) -> np.ndarray:
    """Points (..., 2) in a box's frame: (along its yaw, across it, + to the left), metres from its centre."""
    c, s = np.cos(b.yaw), np.sin(b.yaw)
    qx, qy = pts[..., 0] - b.center[0], pts[..., 1] - b.center[1]
    return np.stack([c * qx + s * qy, -s * qx + c * qy], -1)


def box_world(along, across, b) -> np.ndarray:
    """World points (..., 2) of box-frame coordinates (along, across: arrays of one shape), the inverse of box_local."""
    c, s = np.cos(b.yaw), np.sin(b.yaw)
    return np.stack([b.center[0] + c * along - s * across, b.center[1] + s * along + c * across], -1)


def box_lattice(box, margin: float, step: float):
    """A `step` lattice over the box and `margin` around it, in its frame with +along first (rows) and +across (left)
    first (columns): along A, across C, world points xy (..., 2), and the mask of points inside the box."""
    h0, h1 = box.half[0] + margin, box.half[1] + margin
    A, C = np.meshgrid(np.arange(h0 - step / 2, -h0, -step), np.arange(h1 - step / 2, -h1, -step), indexing="ij")
    return A, C, box_world(A, C, box), (np.abs(A) <= box.half[0]) & (np.abs(C) <= box.half[1])


def distance_to_box(pts, b) -> np.ndarray:
    """2-D distance of points (N, 2) to a box's footprint."""
    loc = np.abs(box_local(pts, b)) - np.asarray(b.half[:2])
    return np.hypot(np.maximum(loc[:, 0], 0), np.maximum(loc[:, 1], 0))


def moving_states(tr: np.ndarray) -> np.ndarray:
    """A recorded trajectory (T, 3) up to and including its last new state (finished vehicles stay put)."""
    moved = np.flatnonzero(np.any(np.abs(np.diff(tr, axis=0)) > 0, axis=1))
    return tr[:moved[-1] + 2] if len(moved) else tr[:1]


def box_pass(trajectories, box, obstacle_map: ObstacleMap) -> list:
    """Where recorded episodes (trajectories (n, T, 3)) overlap `box` (exact footprint test) and what the obstacle
    map holds there. Per episode None when no state overlaps the box, else: the first overlapping `step` and its
    `state`; over all overlapping steps (`overlap_states`), `n_steps`, the footprint samples the map's collision test reads
    (ObstacleMap.footprint_samples) that lie inside the box (`inside`) and how many of them are occupied
    (`inside_occupied`), whether the map flags any of those states (`map_collides`), how deep the deepest sample
    lies inside the box (`depth`, m to the nearest face), the samples' extent in the box frame (`along`, `across`:
    (min, max) m from the centre, across + to the left) and their distance to the nearest occupied map cell centre
    (`nearest_occupied`, m)."""
    cx, cy = obstacle_map.cell_centers()
    occ_xy = np.stack([cx[obstacle_map.occ], cy[obstacle_map.occ]], -1)
    occ_xy = occ_xy[np.hypot(*(occ_xy - np.asarray(box.center[:2])).T) < np.hypot(*box.half[:2]) + 1.0]
    half = np.asarray(box.half[:2])
    out = []
    for tr in trajectories:
        states = moving_states(tr)
        k = np.flatnonzero(_sat_overlap(footprint_corners(states), box_corners_2d(box)))
        if not len(k):
            out.append(None)
            continue
        pts = obstacle_map.footprint_samples(states[k]).reshape(-1, 2)
        loc = box_local(pts, box)
        inside = np.all(np.abs(loc) <= half, -1)
        p, lo = pts[inside], loc[inside]
        rec = {"step": int(k[0]), "state": states[k[0]].tolist(), "n_steps": len(k), "overlap_states": states[k].tolist(), "inside": int(inside.sum()),
               "inside_occupied": int(obstacle_map.occupied(p).sum()), "map_collides": bool(obstacle_map.collides(states[k]).any()),
               "depth": float((half - np.abs(lo)).min(1).max()) if len(p) else 0.0,
               "along": (float(lo[:, 0].min()), float(lo[:, 0].max())) if len(p) else None,
               "across": (float(lo[:, 1].min()), float(lo[:, 1].max())) if len(p) else None,
               "nearest_occupied": float(np.sqrt(((p[:, None] - occ_xy[None]) ** 2).sum(-1)).min()) if len(p) and len(occ_xy) else float("nan")}
        out.append(rec)
    return out


def box_map_picture(box, obstacle_map: ObstacleMap, footprints=np.zeros((0, 3)), margin: float = 0.15, step: float = 0.025) -> list:
    """Top view of the obstacle map around `box` on a `step` lattice in the box's frame, its +along axis up and its
    +across (left) axis on the left: '#' occupied / '.' free inside the box, 'o' occupied / ' ' free outside it;
    inside the box, a point under one of the vehicle `footprints` (states (m, 3)) is '@' when occupied, 'x' when free."""
    A, C, xy, inside = box_lattice(box, margin, step)
    occ = obstacle_map.occupied(xy)
    under = np.zeros(A.shape, dtype=bool)
    for st in np.atleast_2d(footprints):
        cs, sn = np.cos(st[2]), np.sin(st[2])
        qx, qy = xy[..., 0] - st[0], xy[..., 1] - st[1]
        under |= (np.abs(cs * qx + sn * qy) <= CAR_LENGTH / 2) & (np.abs(-sn * qx + cs * qy) <= CAR_WIDTH / 2)
    pic = np.where(inside, np.where(occ, "#", "."), np.where(occ, "o", " "))
    pic[inside & under] = np.where(occ[inside & under], "@", "x")
    return ["".join(row) for row in pic]


def collision_cause(state, course, names, obstacle_map: ObstacleMap | None) -> str:
    """What a colliding vehicle hit: a named box (exact geometry), or the occupied map cells' nearest box."""
    boxes = [(i, b) for i, b in enumerate(course.boxes) if not (b.center[2] + b.half[2] < HEIGHT_BAND[0] or b.center[2] - b.half[2] > HEIGHT_BAND[1])]
    if obstacle_map is None:
        A = footprint_corners(state[None])
        hit = [names[i] for i, b in boxes if _sat_overlap(A, box_corners_2d(b))[0]]
        return "collision: " + (", ".join(hit) or "?")
    pts = obstacle_map.footprint_samples(state[None])[0]  # as ObstacleMap.collides samples it (a 5 x 3 grid misses a pole's cells)
    occ = pts[obstacle_map.occupied(pts)]
    if not len(occ):
        return "map collision: ? (no occupied cell under the footprint)"
    d = np.stack([distance_to_box(occ, b) for _, b in boxes])  # (n_boxes, n_points)
    k = d.min(1).argmin()
    dist = d[k].min()
    kind = "true obstacle" if dist <= 0.05 else ("mesh fatter than the box" if dist <= 0.3 else "phantom (no box within 0.3 m)")
    return f"map collision: {names[boxes[k][0]]} ({kind}, box {dist:.2f} m away)"


def episode_causes(res, course, names, obstacle_map):
    out = []
    for tr, oc in zip(res["trajectories"], res["outcome"]):
        # the last state before the vehicle stopped moving (finished vehicles stay put)
        last = moving_states(tr)[-1]
        s, d = course.frenet(last[:1], last[1:2])
        if oc == "collision":
            out.append(collision_cause(last, course, names, obstacle_map) + f" at s={s[0]:.2f} m")
        elif oc == "offroad":
            out.append(f"off-road ({'left' if d[0] > 0 else 'right'}) at s={s[0]:.2f} m")
        else:
            out.append(oc)
    return out


@torch.no_grad()
def stepwise(course, drive: World, other: World, pol, env_cfg, n, seed, rows, tag, frames=None):
    """Roll `pol` on `drive`'s images from evaluate()'s seeded starts; at every step also render `other` at
    the same poses. Appends per-step rows; returns the per-episode outcome."""
    env = BatchDrive(course, drive, env_cfg, n)
    env.rng = np.random.default_rng(seed)
    starts = env.sample_starts(n)
    env.rng = np.random.default_rng(seed + 1)
    obs = env.reset(states=starts)
    other.on_reset(np.arange(n), np.random.default_rng(seed + 2), n)
    active = np.ones(n, dtype=bool)
    outcome = np.full(n, "timeout", dtype=object)
    for t in range(env_cfg.max_steps):
        on = np.flatnonzero(active)
        o_other = other.render(env.states[on], on)
        a, a_other = pol.act(obs[on]), pol.act(o_other)
        diff = np.abs(obs[on].astype(np.float32) - o_other.astype(np.float32)).mean((1, 2, 3))
        bright = obs[on].reshape(len(on), -1).mean(1)
        s, d = course.frenet(env.states[on, 0], env.states[on, 1])
        if frames is not None:
            frames.append((on, obs[on].copy(), o_other.copy()))
        prev = env.states.copy()
        act = np.zeros(n)
        act[on] = a
        obs, _, term, trunc, info = env.step(act, active)
        env.states[~active] = prev[~active]
        for key in ("collision", "offroad", "success"):
            outcome[active & info[key]] = key
        for j, i in enumerate(on):
            end = outcome[i] if (term[i] or trunc[i]) else ""
            rows.append({"drive_world": tag, "episode": int(i), "t": t, "x": prev[i, 0], "y": prev[i, 1], "yaw": prev[i, 2],
                         "s": s[j], "d": d[j], "action_own": float(a[j]), "action_other": float(a_other[j]),
                         "obs_mean_abs_diff": float(diff[j]), "brightness_own": float(bright[j]), "brightness_other": float(o_other[j].mean()),
                         "end": end})
        active &= ~(term | trunc)
        if not active.any():
            break
    return outcome


def file_tag(policy: str) -> str:
    """A policy name as a file-name part: `seed-1/dagger-nerf-day-bc` -> `seed-1_dagger-nerf-day-bc`."""
    return policy.replace("/", "_")


def legacy_map(model, level, upsample, aabb, cell, band=HEIGHT_BAND):
    """The collision map as built before this round, for before/after comparisons: marching cubes on sigma
    (not on the raw density the field interpolates) and every cell holding a mesh vertex or triangle centroid
    that spans >= 2 height layers of 0.1 m, closed once and hole-filled (no supersampling)."""
    from scipy import ndimage
    from driveenv_nerf.geometry import extract_mesh
    origin, spacing = model.grid_coords()
    verts, faces = extract_mesh(model.density_volume(), origin, spacing, level, upsample)
    m = ObstacleMap.empty(aabb, cell)
    pts = np.concatenate([verts, verts[faces].mean(1)])
    pts = pts[(pts[:, 2] >= band[0]) & (pts[:, 2] <= band[1])]
    ij, inside = m.index(pts[:, :2])
    ij, z = ij[inside], pts[inside, 2]
    k = np.minimum(((z - band[0]) / 0.1).astype(int), 3)
    layers = np.zeros(m.occ.shape + (4,), dtype=bool)
    layers[ij[:, 0], ij[:, 1], k] = True
    m.occ = ndimage.binary_fill_holes(ndimage.binary_closing(layers.sum(-1) >= 2, iterations=1))
    return verts, faces, m


def model_density(model, pts: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.sigma(model.query(torch.as_tensor(pts, dtype=torch.float32))[0]).numpy()


def barrier_extents(model, course, names, maps: dict, level: float, z: float = 0.3):
    """For each road barrier and each of its four faces: how far outside the true face (m) the NeRF density's
    level crossing lies (the marching-cubes surface) and how far each obstacle map's occupied cells reach,
    along the line from the box centre through the face centre at height z."""
    r = np.arange(0.0, 1.0, 0.005)
    for i, b in enumerate(course.boxes):
        if b.kind != "obstacle":
            continue
        c, s = np.cos(b.yaw), np.sin(b.yaw)
        out = []
        for ax, sgn, face in ((0, 1, "+along"), (0, -1, "-along"), (1, 1, "+side"), (1, -1, "-side")):
            u = np.array([c, s]) if ax == 0 else np.array([-s, c])
            xy = np.array(b.center[:2]) + sgn * r[:, None] * u
            half = b.half[ax]
            row = {"face": face}
            for zname, zz in (("iso", [z]), ("iso band", np.linspace(HEIGHT_BAND[0], HEIGHT_BAND[1], 8))):
                dens = np.max([model_density(model, np.c_[xy, np.full(len(r), q)]) for q in zz], 0)
                above = np.flatnonzero(dens > level)
                row[zname] = (r[above[-1]] - half) if len(above) else float("nan")
            for mname, m in maps.items():
                occ = np.flatnonzero(m.occupied(xy))
                row[mname] = (r[occ[-1]] - half) if len(occ) else float("nan")
            out.append(row)
        print(f"  {names[i]}: outward offset (m) of the level-{level:g} surface at z = {z} m / its widest in the height band / "
              + " / ".join(maps) + ": " + "; ".join(f"{o['face']} {o['iso']:+.2f} / {o['iso band']:+.2f} / " + " / ".join(f"{o[k]:+.2f}" for k in maps) for o in out))


@torch.no_grad()
def alignment(model, course, env_cfg, cam, app, samples=(32, 48, 64), shift=2, n=30, seed=0):
    """Real-world (day, exposure 1, no noise) vs NeRF images at the same vehicle poses along the road: mean
    |difference| (0-255) with the NeRF image shifted by up to `shift` pixels (a pose / intrinsics convention
    error would make a non-zero shift fit better), for several samples per ray."""
    from driveenv_nerf.renderer import RealWorldRenderer
    rng = np.random.default_rng(seed)
    st = course.world_from_frenet(np.linspace(0.2, course.length - 0.6, n), rng.uniform(-0.4, 0.4, n))
    st[:, 2] += rng.uniform(-0.15, 0.15, n)
    c2w = torch.as_tensor(cam.c2w(st), dtype=torch.float32)
    K = env_cfg.intrinsics()
    real = (RealWorldRenderer(course, K).render(c2w, lighting="day").clamp(0, 1) * 255).numpy()
    for ns in samples:
        nerf = (NR.render_image(model, c2w, K, app, n_samples=ns).clamp(0, 1) * 255).numpy()
        H, W = real.shape[1:3]
        errs = {}
        for dy in range(-shift, shift + 1):
            for dx in range(-shift, shift + 1):
                a = real[:, shift:H - shift, shift:W - shift]
                b = nerf[:, shift + dy:H - shift + dy, shift + dx:W - shift + dx]
                errs[(dx, dy)] = float(np.abs(a - b).mean())
        best = min(errs, key=errs.get)
        print(f"  {ns} samples/ray: mean |NeRF - real| {errs[(0, 0)]:.2f} / 255 unshifted; best shift (dx, dy) = {best}: {errs[best]:.2f}")


def replay(res, course, colliders: dict) -> dict:
    """Episodes of a recorded rollout that each collider would have ended with a collision (same states)."""
    out = {}
    for name, col in colliders.items():
        hit = 0
        for tr, oc in zip(res["trajectories"], res["outcome"]):
            states = moving_states(tr)
            hit += bool(col.collides(states[1:]).any()) if len(states) > 1 else 0
        out[name] = hit
    return out


def footprint_replay(path: Path, mesh_map: ObstacleMap, verts=None, faces=None, course=None, cells=(0.1, 0.05, 0.025)):
    """The per-step states of a logged rollout (steps_<policy>.csv) replayed through the obstacle map with the
    footprint sampled on the fixed 5 x 3 grid used before (0.125 x 0.15 m) and at half a cell (ObstacleMap.collides
    now): the first step each flags, for the episodes where they differ. Only the states before each step are
    logged (not the final, colliding one), so a collision the old test found at the last step is not re-checked."""
    rows = list(csv.DictReader(open(path)))
    for w in ("nerf", "real"):
        eps = {}
        for r in rows:
            if r["drive_world"] == w:
                eps.setdefault(int(r["episode"]), []).append(r)
        ends, differ = {}, 0
        for e, rs in eps.items():
            st = np.array([[float(r["x"]), float(r["y"]), float(r["yaw"])] for r in rs])
            old = np.flatnonzero(mesh_map.occupied(footprint_points(st)).any(-1))
            new = np.flatnonzero(mesh_map.collides(st))
            a, b = (int(old[0]) if len(old) else None), (int(new[0]) if len(new) else None)
            end = rs[-1]["end"] or "timeout"
            ends[end] = ends.get(end, 0) + 1
            if a != b:
                differ += 1
                s_at = float(rs[b]["s"]) if b is not None else float("nan")
                print(f"  driving on {w} pixels, episode {e} (ended: {end}): first step on an occupied cell, 5 x 3 grid {a}, "
                      f"half-cell sampling {b} (s = {s_at:.2f} m) of {len(rs)} steps")
        print(f"  driving on {w} pixels: {len(eps)} episodes ({ends}); {differ} flagged differently")
    if verts is None:
        return
    print("the same states, half-cell footprint test, per map cell: episodes touching the NeRF map / the true boxes on that grid / the exact boxes")
    exact = GroundTruthCollider(course.boxes)
    for cell in cells:
        nerf_m = ObstacleMap.from_mesh(verts, faces, course.aabb, cell)
        box_m = ObstacleMap.from_boxes(course.boxes, course.aabb, cell)
        for w in ("nerf", "real"):
            eps = {}
            for r in rows:
                if r["drive_world"] == w:
                    eps.setdefault(int(r["episode"]), []).append([float(r["x"]), float(r["y"]), float(r["yaw"])])
            n = [sum(bool(c.collides(np.array(st)).any()) for st in eps.values()) for c in (nerf_m, box_m, exact)]
            print(f"  cell {cell:g} m, driving on {w} pixels: {n[0]} / {n[1]} / {n[2]} of {len(eps)}")


def box_pass_report(recs: dict, course, names, box_name: str, obstacle_map: ObstacleMap) -> dict:
    """--box-pass: for each policy's recorded episodes (recs[(policy, world)]: evaluate()'s result), where they
    overlap the true box `box_name` and what the NeRF map holds there; the trajectories with NeRF pixels on the
    NeRF map (`nerf`) and on the exact boxes (`nerf-obs`) compared step by step; a picture of the map around the box
    with the footprints of the `nerf` episodes the map lets through it."""
    box = course.boxes[names.index(box_name)]
    print(f"\n{box_name} (true box, centre {box.center[0]:.2f}, {box.center[1]:.2f} m, half {box.half[0]:.2f} along, {box.half[1]:.2f} across): "
          "episodes whose footprint overlaps it (exact test) and the NeRF map under the footprint samples inside it")
    out = {}
    for (p, w), res in recs.items():
        passes = box_pass(res["trajectories"], box, obstacle_map)
        out[f"{p} | {w}"] = passes
        touch = [e for e, r in enumerate(passes) if r is not None]
        free = [e for e in touch if not passes[e]["map_collides"]]
        print(f"  {p} in {w}: {len(touch)} of {len(passes)} episodes overlap it; the NeRF map flags {len(touch) - len(free)} of them "
              f"at an overlapping step, {len(free)} pass it with no occupied cell under the footprint")
        if w != "nerf":
            continue
        s, d = course.frenet(np.array([passes[e]["state"][0] for e in touch]), np.array([passes[e]["state"][1] for e in touch]))
        for j, e in enumerate(touch):
            r = passes[e]
            print(f"    episode {e:2d} ({res['outcome'][e]}): first overlap at step {r['step']} (s = {s[j]:.2f} m, d = {d[j]:+.2f} m), "
                  f"{r['n_steps']} overlapping step(s); {r['inside']} footprint samples inside the box, {r['inside_occupied']} on occupied cells; "
                  f"up to {r['depth']:.3f} m deep; box frame along {r['along'][0]:+.2f}..{r['along'][1]:+.2f}, across {r['across'][0]:+.2f}..{r['across'][1]:+.2f} m; "
                  f"nearest occupied cell centre {r['nearest_occupied']:.3f} m (nan: none within 1 m of the box)" if r["inside"] else
                  f"    episode {e:2d} ({res['outcome'][e]}): first overlap at step {r['step']} (s = {s[j]:.2f} m), no footprint sample inside the box")
        if (p, "nerf-obs") in recs:
            a = [moving_states(tr) for tr in res["trajectories"]]
            b = [moving_states(tr) for tr in recs[(p, "nerf-obs")]["trajectories"]]
            dev = max(float(np.abs(x[:min(len(x), len(y))] - y[:min(len(x), len(y))]).max()) for x, y in zip(a, b))
            longer = sum(len(x) > len(y) for x, y in zip(a, b))
            print(f"    the same starts with NeRF pixels on the exact boxes (nerf-obs), step by step while both drive: max |state difference| "
                  f"{dev:.2e}; {longer} of {len(a)} NeRF-world episodes drive on after their nerf-obs twin has ended")
        feet = np.array([st for e in free for st in passes[e]["overlap_states"]]).reshape(-1, 3)
        print(f"    the NeRF map around {box_name}, box frame, travel direction up, left on the left, {0.025:g} m per character "
              f"('#' / '.': occupied / free inside the box, 'o': occupied outside; 'x' / '@': free / occupied under the "
              f"{len(free)} episodes' footprints at their overlapping steps):")
        for line in box_map_picture(box, obstacle_map, feet):
            print("      |" + line + "|")
    return out


def load_run(run: Path, samples: int = 0, mesh_level: float = 0.0, supersample: int = 4, legacy: bool = False):
    """A finished run's course, env config, camera, NeRF, lighting embeddings, mesh and obstacle map, as train.py's
    validation stage builds them (samples / mesh_level 0: the run's own)."""
    from types import SimpleNamespace
    cfg = json.loads((run / "config.json").read_text())
    course = campus_course()
    env_cfg = EnvConfig(obs_width=cfg["obs_width"], obs_height=cfg["obs_height"], hfov_deg=cfg["hfov_deg"], max_steps=cfg["max_steps"])
    model, _, _, _ = NR.load_checkpoint(run / "nerf.pt")
    model.eval()
    app = NR.lighting_embeddings(model, read_transforms(run / "data", aabb=course.aabb).lighting)
    level = mesh_level or cfg["mesh_level"]
    if legacy:
        verts, faces, mesh_map = legacy_map(model, level, cfg["mesh_upsample"], course.aabb, cfg["obstacle_cell"])
    else:
        verts, faces = model.mesh(level, cfg["mesh_upsample"])
        mesh_map = ObstacleMap.from_mesh(verts, faces, course.aabb, cfg["obstacle_cell"], supersample=supersample)
    return SimpleNamespace(cfg=cfg, course=course, env_cfg=env_cfg, cam=VehicleCamera(), model=model, app=app, level=level,
                           verts=verts, faces=faces, mesh_map=mesh_map, n_samples=samples or cfg["env_nerf_samples"],
                           seed=cfg["seed"], n_episodes=cfg["eval_episodes"])


def load_policy(run: Path, name: str, env_cfg: EnvConfig) -> PixelPolicy:
    """policies/<name>.pt of a run (`seed-1/dagger-nerf-day-bc`: agent seed 1's)."""
    pol = PixelPolicy((env_cfg.obs_height, env_cfg.obs_width))
    pol.load_state_dict(torch.load(run / "policies" / f"{name}.pt")["policy"])
    return pol.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--policies", default="ppo-sim,ppo-sim-half,dagger-sim,dagger-nerf-day")
    ap.add_argument("--step-policy", default="ppo-sim")
    ap.add_argument("--policies-from", default="", help="another run whose policies to load (its sim-trained agents do "
                    "not depend on the NeRF): the same policies in this run's NeRF world; default: the run's own")
    ap.add_argument("--samples", type=int, default=0, help="NeRF samples per ray in the env (0: the run's env_nerf_samples)")
    ap.add_argument("--mesh-level", type=float, default=0.0, help="0: the run's")
    ap.add_argument("--supersample", type=int, default=4, help="the NeRF map's rasterisation (ObstacleMap.from_mesh); 1: at the map's own cells")
    ap.add_argument("--legacy", action="store_true", help="the NeRF world's collision map as built before this round (legacy_map)")
    ap.add_argument("--checks-only", action="store_true", help="geometry and image-alignment checks only (no rollouts)")
    ap.add_argument("--no-checks", action="store_true", help="skip the geometry and image-alignment checks")
    ap.add_argument("--footprint-replay", action="store_true",
                    help="only replay <run>/diagnose/steps_<step-policy>.csv through the NeRF map with the old and the new footprint test")
    ap.add_argument("--no-steps", action="store_true", help="skip the step-by-step rollout")
    ap.add_argument("--worlds", default="real,nerf,nerf-obs,nerf-geo", help="of real, nerf, nerf-obs, nerf-geo, real-nopole, nerf-obs-nopole")
    ap.add_argument("--box-pass", default="", help="a box's name (e.g. 'barrier 2'): where each world's episodes overlap the true box "
                    "and whether the NeRF map is occupied there (box_pass_report)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    run = Path(args.run)
    R = load_run(run, args.samples, args.mesh_level, args.supersample, args.legacy)
    cfg, course, env_cfg, cam, model, app, level = R.cfg, R.course, R.env_cfg, R.cam, R.model, R.app, R.level
    verts, faces, mesh_map, n_samp, seed, n = R.verts, R.faces, R.mesh_map, R.n_samples, R.seed, R.n_episodes
    names = box_names(course)

    no_poles = dataclasses.replace(course, boxes=[b for b in course.boxes if b.kind != "pole"])
    world_names = args.worlds.split(",")

    def worlds():  # fresh per evaluation, seeded as train.py's validation stage
        nerf = lambda: NeRFWorld(model, mesh_map, env_cfg, app["day"], cam, n_samp)  # noqa: E731
        make = {"real": lambda: RealWorld(course, env_cfg, "day", cam, seed=seed + 7), "nerf": nerf,
                "nerf-obs": lambda: Hybrid(nerf(), GroundTruthCollider(course.boxes), "nerf-obs"),
                "nerf-geo": lambda: Hybrid(RealWorld(course, env_cfg, "day", cam, seed=seed + 7), nerf(), "nerf-geo"),
                "real-nopole": lambda: RealWorld(no_poles, env_cfg, "day", cam, seed=seed + 7),
                "nerf-obs-nopole": lambda: Hybrid(nerf(), GroundTruthCollider(no_poles.boxes), "nerf-obs-nopole")}
        return {w: make[w]() for w in world_names}

    gt_cells = ObstacleMap.from_boxes(course.boxes, course.aabb, cfg["obstacle_cell"])
    if args.footprint_replay:
        path = run / ("diagnose-legacy" if args.legacy else "diagnose") / f"steps_{file_tag(args.step_policy)}.csv"
        print(f"{path} replayed through the NeRF map{' (legacy)' if args.legacy else ''}:")
        footprint_replay(path, mesh_map, verts, faces, course)
        return
    if not args.no_checks:
        print("geometry of the road barriers (outward offset from the true face; +: the NeRF's is bigger):")
        barrier_extents(model, course, names, {"NeRF map (legacy)" if args.legacy else "NeRF map": mesh_map, "true boxes on the same grid": gt_cells}, level)
        print("the lamp poles in the NeRF's density and in the obstacle maps:")
        from nerf_walls import pole_density
        for line in pole_density(model, course, level, {"the NeRF map": mesh_map, "the true boxes on the map grid": gt_cells}):
            print("  " + line)
        print("image alignment, NeRF vs real world at 30 poses along the road (day):")
        alignment(model, course, env_cfg, cam, app["day"])
    if args.checks_only:
        return
    pols = {}
    for p in args.policies.split(","):
        pols[p] = load_policy(Path(args.policies_from or run), p, env_cfg)
    out = run / ("diagnose-legacy" if args.legacy else "diagnose")
    out.mkdir(exist_ok=True)
    summary = {"samples": n_samp, "mesh_level": level, "legacy_map": args.legacy, "policies_from": args.policies_from or str(run)}
    print(f"{run}: NeRF env samples/ray {n_samp}, mesh level {level}{' (legacy map)' if args.legacy else ''}; success rate over {n} episodes (day)")
    print("| policy | " + " | ".join(world_names) + " |")
    print("|---" * (len(world_names) + 1) + "|")
    causes, recs = {}, {}
    for p, pol in pols.items():
        row = {}
        for wname, w in worlds().items():
            res = evaluate(BatchDrive(course, w, env_cfg, n), lambda o, s, pol=pol: pol.act(o), n, seed=seed + 123, record=True)
            row[wname] = res["success"]
            geo = mesh_map if wname in ("nerf", "nerf-geo") else None
            course_w = no_poles if wname.endswith("nopole") else course
            causes[(p, wname)] = episode_causes(res, course_w, names if course_w is course else box_names(course_w), geo)
            if args.box_pass and not wname.endswith("nopole"):
                recs[(p, wname)] = res
            if wname == "real":
                row["replay"] = replay(res, course, {"exact boxes": GroundTruthCollider(course.boxes), "boxes on the map grid": gt_cells, "NeRF map": mesh_map})
        summary[p] = row
        print(f"| {p} | " + " | ".join(f"{row[w]:.3f}" for w in world_names) + " |")
    if "real" in world_names:
        print("\nthe real-world trajectories replayed through each collision rule (episodes that would end in a collision):")
        for p in pols:
            print(f"  {p}: " + ", ".join(f"{k} {v}" for k, v in summary[p]["replay"].items()))
    print("\nepisode ends (count x cause):")
    for (p, w), cs in causes.items():
        u, c = np.unique(cs, return_counts=True)
        print(f"  {p} in {w}: " + "; ".join(f"{k} x{v}" for k, v in sorted(zip(u, c), key=lambda z: -z[1])))
    summary["causes"] = {f"{p} | {w}": cs for (p, w), cs in causes.items()}
    if args.box_pass:
        summary["box_pass"] = {args.box_pass: box_pass_report(recs, course, names, args.box_pass, mesh_map)}
    if args.no_steps:
        (out / "summary_worlds.json").write_text(json.dumps(summary, indent=1, default=str))
        return

    # step by step: the same policy in the NeRF world and in the real world, each also seeing the other's image
    pol = pols[args.step_policy]
    rows, frames = [], []
    w = worlds()
    stepwise(course, w["nerf"], w["real"], pol, env_cfg, n, seed + 123, rows, "nerf", frames)
    w = worlds()
    stepwise(course, w["real"], w["nerf"], pol, env_cfg, n, seed + 123, rows, "real")
    path = out / f"steps_{file_tag(args.step_policy)}.csv"
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    print(f"\nper-step log -> {path}")
    R = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for tag in ("nerf", "real"):
        m = R["drive_world"] == tag
        gap = np.abs(R["action_own"][m] - R["action_other"][m])
        print(f"  driving on {tag} pixels: {m.sum()} steps; mean |NeRF - real| pixel difference {R['obs_mean_abs_diff'][m].mean():.1f} / 255; "
              f"mean |action(NeRF image) - action(real image)| {gap.mean():.3f} (max {gap.max():.3f})")
        for lo, hi in ((0, 3), (3, 6), (6, 9), (9, 12), (12, 15)):
            k = m & (R["s"] >= lo) & (R["s"] < hi)
            if k.any():
                print(f"    s in [{lo}, {hi}) m: {k.sum():4d} steps, pixel diff {R['obs_mean_abs_diff'][k].mean():5.1f}, "
                      f"action own {R['action_own'][k].mean():+.3f} vs other {R['action_other'][k].mean():+.3f}, "
                      f"|diff| {np.abs(R['action_own'][k] - R['action_other'][k]).mean():.3f}, lateral d {R['d'][k].mean():+.2f} m")
    (out / f"summary_{file_tag(args.step_policy)}.json").write_text(json.dumps(summary, indent=1, default=str))
    # both views along the first failed NeRF episode
    from driveenv_nerf import plots
    ends = [r for r in rows if r["drive_world"] == "nerf" and r["end"] and r["end"] != "success"]
    if ends:
        ep = ends[0]["episode"]
        top, bottom = [], []
        for on, own, oth in frames:
            k = np.flatnonzero(on == ep)
            if len(k):
                top.append(own[k[0]] / 255.0), bottom.append(oth[k[0]] / 255.0)
        step = max(1, len(top) // 10)
        plots.plot_image_grid(out / f"views_{file_tag(args.step_policy)}.png", [top[::step], bottom[::step]], ["NeRF", "real"],
                              f"{args.step_policy}, NeRF episode {ep} ({ends[0]['end']}), every {step} steps")


if __name__ == "__main__":
    main()
