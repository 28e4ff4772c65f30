"""benchmarks/pole_width.py: a 0.10 m pole held by the vertices inside it in a 0.075 m grid, against the trilinear
prediction (GridNeRF's field, GridNeRF.mesh, ObstacleMap.from_mesh, barrier_evidence's outward offsets)."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from pole_width import (BACKGROUND, FACE_LINES, PEAK, POLE_HALF, VOXEL, measured_offsets, pole_grid,  # noqa: E402
                        predicted_offsets, q_level)
from driveenv_nerf.geometry import OBSTACLE_CELL  # noqa: E402

STEP = 0.005  # outward_offset's walk: it returns the last sample where the body holds, up to one step short of the edge
FINE = OBSTACLE_CELL / 4  # from_mesh's raster (supersample 4): a fine cell the surface touches is marked
PHASES = [(px, py) for px in (0.011, 0.031, 0.049, 0.068) for py in (0.004, 0.026, 0.057)]


@pytest.mark.parametrize("level", [2.0, 8.0])
def test_pole_width_is_the_trilinear_prediction_of_the_raw_density(level):
    """At 12 offsets of the pole in the voxel (both vertex counts, 1 and 2, on each axis) and the README's levels:
    - the field's offset from each true face along the face-centre lines is u_last + h (1 - q / W_v) - w / 2 with
      q = ln(L / b) / ln(a / b), to within the walk's step (nan where the line's part of the level set ends before
      the pole's centre);
    - the mesh's extent over the band is u_last + h (1 - q) - w / 2 (marching cubes is exact on the grid's edges),
      so its width is (n - 1) h + 2 h (1 - q): n vertices inside the pole along the axis;
    - the map's offset lies within (E - cell / 2 - step, E + cell / 2 + fine * sqrt 2] of the marching-cubes segment's
      crossing E on the row of cells the line reads (nothing beyond the pole's centre only where E falls short of
      the first cell centre there);
    - a sigma-linear field (q_lin ~ L / a) would reach h (q - q_lin) further than measured wherever W_v = 1, more than
      the walk's step: the measured field is not that one."""
    q, q_lin = q_level(level, PEAK, BACKGROUND), q_level(level, PEAK, BACKGROUND, linear=True)
    seen_n, beyond_lin = set(), 0
    for phase in PHASES:
        model, box = pole_grid(phase)
        meas = measured_offsets(model, box, level)
        pred = predicted_offsets(model, box, level, PEAK, BACKGROUND)
        lin = predicted_offsets(model, box, level, PEAK, BACKGROUND, linear=True)
        on_row = predicted_offsets(model, box, level, PEAK, BACKGROUND, across={f: meas[f]["map_across"] for f in meas})
        for name, _, _ in FACE_LINES:
            m, p = meas[name], pred[name]
            seen_n.add(p["n"])
            what = f"{name} phase {phase} level {level}"
            if math.isnan(p["field"]) or p["field"] < -POLE_HALF - 1e-9:
                assert math.isnan(m["field"]) or m["field"] <= -POLE_HALF + STEP, what  # nothing beyond the centre
            else:
                assert p["field"] - STEP - 1e-6 <= m["field"] <= p["field"] + 1e-6, (what, m["field"], p["field"])
            assert m["mesh_extent"] == pytest.approx(p["extent"], abs=1e-4), what
            e = on_row[name]["mesh"]
            first_centre = -POLE_HALF + OBSTACLE_CELL / 2  # offset of the first cell centre beyond the pole's centre
            if math.isnan(e) or e + FINE * math.sqrt(2) < first_centre:
                # nothing beyond the centre (a line along a cell edge reads, at its start, the cell behind it)
                assert math.isnan(m["map"]) or m["map"] <= -POLE_HALF + 1e-6, (what, m["map"], e)
            elif e >= first_centre:
                assert e - OBSTACLE_CELL / 2 - STEP - 1e-6 <= m["map"] <= e + OBSTACLE_CELL / 2 + FINE * math.sqrt(2) + 1e-6, (what, m["map"], e)
            if p["w_v"] >= 1 - 1e-9 and not math.isnan(m["field"]):
                assert lin[name]["field"] - m["field"] >= VOXEL * (q - q_lin) - 1e-6 > STEP, what
                beyond_lin += 1
        ext = [meas[f]["mesh_extent"] for f, _, _ in FACE_LINES]
        for a in (0, 2):
            n = pred[FACE_LINES[a][0]]["n"]
            assert 2 * POLE_HALF + ext[a] + ext[a + 1] == pytest.approx((n - 1) * VOXEL + 2 * VOXEL * (1 - q), abs=2e-4)
    assert seen_n == {1, 2} and beyond_lin >= 12


def test_mean_width_over_offsets_is_pole_plus_h_times_one_minus_2q():
    """Over the pole's offsets in the voxel the holding vertices number 2 for a share (w - h) / h of them, so the mean
    mesh width is w + h (1 - 2 q): ~the pole at level 2 (q ~ 0.5 for peak 236, background 0.018 / m), narrower at
    8 -- not pole + one voxel. Measured on a 12 x 1 lattice of offsets (the mean of n - 1 over it is exact: 4 of 12)."""
    for level in (2.0, 8.0):
        q = q_level(level, PEAK, BACKGROUND)
        w = []
        for px in (np.arange(12) + 0.5) / 12 * VOXEL:
            model, box = pole_grid((px, 0.5 * VOXEL))
            ext = measured_offsets(model, box, level)
            w.append(2 * POLE_HALF + ext["approach"]["mesh_extent"] + ext["far"]["mesh_extent"])
        assert np.mean(w) == pytest.approx(2 * POLE_HALF + VOXEL * (1 - 2 * q), abs=1e-3)
        assert np.mean(w) < 2 * POLE_HALF + VOXEL / 2  # far from the sigma-linear pole + ~one voxel


def test_density_on_the_next_vertices_out_widens_the_pole_and_clearing_them_restores_it():
    """The run's pole 2 holds 1-16 / m on vertices one voxel outside the pole. Give the synthetic pole's next ring of
    vertices out c = 14 / m (above both levels): each face-centre line between two holding rows now crosses the level
    h ln(c / L) / ln(c / b) beyond the ring, about a voxel and a half beyond the pole's outer vertices; cleared_outside
    puts the ring back to the untouched value, the clean grid again."""
    import torch
    from pole_width import cleared_outside

    c = 14.0
    model, box = pole_grid((0.5 * VOXEL, 0.5 * VOXEL))  # two holding vertices on each axis, at +-h / 2
    clean = model.grid[:, 0].clone()
    origin, sp = model.grid_coords()
    nx, ny, nz = model.resolution
    x, y, z = (origin[a] + sp[a] * np.arange(model.resolution[a]) for a in range(3))
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    ring = (np.abs(X) <= POLE_HALF + VOXEL) & (np.abs(Y) <= POLE_HALF + VOXEL) & ~((np.abs(X) <= POLE_HALF) & (np.abs(Y) <= POLE_HALF)) & (Z >= 0)
    with torch.no_grad():
        model.grid[torch.as_tensor(ring.ravel()), 0] = math.log(c)
    for level in (2.0, 8.0):
        meas = measured_offsets(model, box, level)
        want = 0.5 * VOXEL + VOXEL + VOXEL * math.log(c / level) / math.log(c / BACKGROUND) - POLE_HALF
        for name, _, _ in FACE_LINES:
            assert want - STEP - 1e-6 <= meas[name]["field"] <= want + 1e-6, (name, level, meas[name]["field"], want)
            assert meas[name]["mesh_extent"] == pytest.approx(want, abs=1e-4)
    restored = cleared_outside(model, box)
    assert torch.equal(restored, clean)


def _long_pole_grid(phase=(0.015, 0.033)):
    """The clean synthetic pole in a 12 x 12 m grid (the run's box is 12.5 m): a camera 4 m before it sees it with the
    training's sample spacing."""
    return pole_grid(phase, n=160)  # default: pole 2's phase in the run's grid (one vertex column inside along x)


def _rays_at_pole(across, z=0.3, dist=4.0):
    import torch
    o = torch.tensor([[-dist, a, z] for a in across], dtype=torch.float32)
    d = torch.tensor([[1.0, 0.0, 0.0]] * len(across))
    return o, d


def test_column_rays_is_the_brute_force_crossing():
    """column_rays (xy slab test over [tn, tf]) agrees with walking each ray in 1 mm steps and asking whether a point
    lies in the column, on 2000 random rays (ties within a step of the column's edge excepted)."""
    import torch
    from pole_width import column_rays

    model, box = pole_grid((0.02, 0.05), n=40)
    g = torch.Generator().manual_seed(0)
    o = (torch.rand(2000, 3, generator=g) - 0.5) * torch.tensor([3.0, 3.0, 0.2]) + torch.tensor([0.0, 0.0, 0.3])
    d = torch.nn.functional.normalize(torch.randn(2000, 3, generator=g) * torch.tensor([1.0, 1.0, 0.1]), dim=-1)
    tn, tf = model.ray_bounds(o, d)
    margin = 0.3
    sel = column_rays(o, d, tn, tf, box, margin)
    t = torch.arange(0, 6.0, 0.001)
    seen = sel.clone()
    for r in range(len(o)):
        tt = t[(t >= tn[r]) & (t <= tf[r])]
        p = o[r, :2] + tt[:, None] * d[r, :2]
        dist = (p.abs() - torch.tensor(box.half[:2]) - margin).max(-1).values  # <= 0: in the column
        seen[r] = bool((dist <= 0).any()) if len(tt) else False
        if bool(seen[r]) != bool(sel[r]):
            assert dist.abs().min() < 2e-3, r  # a graze within a step of the edge
    assert 100 < int(sel.sum()) < 1900  # both kinds present


def test_pole_samples_interval_is_the_samplers_and_a_clean_pole_is_mostly_missed_by_the_training_samples():
    """pole_samples' interval is the stratified sampler's own (GridNeRF.sample_along_rays, no jitter) at the pole; the
    mean number of stratified samples landing inside the pole over many draws is chord / interval (< 1 at 4 m: the
    pole is thinner than the interval); so the clean pole (held only by its inside vertices) is opaque to a dense
    render but, to the training's 48 jittered samples, transparent on most draws; density on the next vertices along
    the ray (14 / m, as the run's) makes the same rays opaque on most draws: what the photometric loss gains from it."""
    import torch
    from pole_width import pole_samples

    model, box = _long_pole_grid()
    o, d = _rays_at_pole([-0.03, 0.0, 0.02])
    chord, interval = pole_samples(model, o, d, box, model.cfg.n_samples)
    assert torch.allclose(chord, torch.full_like(chord, 2 * POLE_HALF), atol=1e-5)
    tn, tf = model.ray_bounds(o, d)
    t, delta = model.sample_along_rays(o, d, tn, tf, model.cfg.n_samples, perturb=False)
    k = (t - (-o[:, :1])).abs().argmin(-1)  # the sample nearest the pole's centre (x = 0 at t = -o_x)
    assert torch.allclose(interval, delta.gather(1, k[:, None])[:, 0], rtol=1e-4)
    assert float(interval.min()) > 2 * 2 * POLE_HALF  # the interval is over twice the pole's depth
    torch.manual_seed(0)
    hits = []
    for _ in range(400):
        t, _ = model.sample_along_rays(o, d, tn, tf, model.cfg.n_samples, perturb=True)
        x = o[:, :1] + t * d[:, :1]
        hits.append(((x.abs() <= POLE_HALF).sum(-1)).float())
    assert torch.allclose(torch.stack(hits).mean(0), chord / interval, rtol=0.15)

    def acc(n_samples=None, perturb=True, draws=200):
        with torch.no_grad():
            torch.manual_seed(1)
            app = torch.zeros(len(o), model.cfg.appearance_dim)
            return torch.stack([model.render_rays(o, d, app, perturb=perturb, n_samples=n_samples)["acc"] for _ in range(draws)]).mean(0)

    dense, strat = acc(2048, False, 1), acc()
    assert float(dense.min()) > 0.95 and float(strat.max()) < 0.5, (dense, strat)
    origin, sp = model.grid_coords()
    nx, ny, nz = model.resolution
    x = origin[0] + sp[0] * np.arange(nx)
    y = origin[1] + sp[1] * np.arange(ny)
    Y, X = np.meshgrid(y, x, indexing="ij")
    along = (np.abs(X) > POLE_HALF) & (np.abs(X) <= POLE_HALF + VOXEL) & (np.abs(Y) <= POLE_HALF)  # the next columns along the ray
    with torch.no_grad():
        g = model.grid[:, 0].view(nz, ny, nx)
        g[2:, torch.as_tensor(along)] = math.log(14.0)  # z >= 0
    strat_wide = acc()
    assert float((strat_wide - strat).min()) > 0.2 and float(acc(2048, False, 1).min()) > 0.95, (strat, strat_wide)


def test_training_terms_are_train_steps_terms_in_any_chunking():
    """training_terms' sums, over chunks of 7 rays, divided as train_step divides them are train_step's loss terms on
    the whole batch (F.mse_loss, distortion_loss, line_of_sight_depth_loss on the rays with a depth), no jitter."""
    import torch
    import torch.nn.functional as F
    from driveenv_nerf import nerf as NR
    from pole_width import training_terms

    model, box = pole_grid((0.02, 0.05), n=40)
    g = torch.Generator().manual_seed(1)
    o = (torch.rand(50, 3, generator=g) - 0.5) * torch.tensor([2.0, 2.0, 0.1]) + torch.tensor([0.0, 0.0, 0.3])
    d = torch.nn.functional.normalize(torch.randn(50, 3, generator=g), dim=-1)
    rgb, app = torch.rand(50, 3, generator=g), torch.randn(50, model.cfg.appearance_dim, generator=g)
    depth = torch.where(torch.rand(50, generator=g) < 0.4, torch.rand(50, generator=g) * 2, torch.tensor(float("nan")))
    tc = NR.TrainConfig()
    with torch.no_grad():
        err, ds, dd, nd = training_terms(model, o, d, rgb, app, depth, tc, perturb=False, chunk=7)
        out = model.render_rays(o, d, app, perturb=False)
        k = torch.isfinite(depth)
        assert nd == int(k.sum()) > 0
        assert float(err.mean()) == pytest.approx(float(F.mse_loss(out["rgb"], rgb)), rel=1e-5)
        assert float(ds) / 50 == pytest.approx(float(NR.distortion_loss(out["weights"], out["t"], out["delta"])), rel=1e-5)
        assert float(dd) / nd == pytest.approx(float(NR.line_of_sight_depth_loss(out["weights"][k], out["t"][k], out["acc"][k], out["tf"][k],
                                                                               depth[k], tc.depth_sigma)), rel=1e-5)
