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
