"""benchmarks/nerf_world_diagnose.py: where recorded episodes overlap a true box and what an obstacle map holds there."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from nerf_world_diagnose import box_map_picture, box_pass, distance_to_box, moving_states  # noqa: E402
from driveenv_nerf.course import Box  # noqa: E402
from driveenv_nerf.geometry import ObstacleMap  # noqa: E402

AABB = ((-2.0, -2.0, 0.0), (2.0, 2.0, 1.0))


def rotate(xy, yaw):
    c, s = np.cos(yaw), np.sin(yaw)
    return c * xy[..., 0] - s * xy[..., 1], s * xy[..., 0] + c * xy[..., 1]


def scene(yaw):
    """A 0.4 x 0.6 m box whose map holds only its left half (across > 0), and three straight drives along the box's
    axis: through its free right half, through its occupied left half, and clear of it (stopping early)."""
    box = Box((*rotate(np.array([0.0, 0.0]), yaw), 0.3), (0.2, 0.3, 0.3), yaw, "obstacle")
    left_half = Box((*rotate(np.array([0.0, 0.15]), yaw), 0.3), (0.2, 0.15, 0.3), yaw, "obstacle")
    m = ObstacleMap.from_boxes([left_half], AABB, 0.05)
    x = np.arange(-1.5, 1.51, 0.25)
    trajs = []
    for lateral, n_moving in ((-0.3, len(x)), (0.3, len(x)), (-1.0, 5)):
        xs = np.r_[x[:n_moving], np.full(len(x) - n_moving, x[n_moving - 1])]  # a finished vehicle stays put
        px, py = rotate(np.stack([xs, np.full(len(x), lateral)], -1), yaw)
        trajs.append(np.stack([px, py, np.full(len(x), yaw)], -1))
    return box, m, np.stack(trajs)


@pytest.mark.parametrize("yaw", [0.0, np.pi / 2, 0.7])
def test_box_pass_finds_the_open_half_of_a_box_in_the_map(yaw):
    box, m, trajs = scene(yaw)
    free, blocked, clear = box_pass(trajs, box, m)
    assert clear is None
    for r in (free, blocked):
        assert r["inside"] > 0 and r["n_steps"] == 3 and len(r["overlap_states"]) == 3  # x = -0.25, 0, 0.25 overlap the box
        assert abs(r["depth"] - 0.15) < 1e-6  # the 0.3 m wide footprint, centred on a side face, reaches 0.15 m inside
    # the right half (across < 0) is open in the map: samples inside the true box, none on an occupied cell
    assert free["inside_occupied"] == 0 and not free["map_collides"]
    assert -0.3 - 1e-6 <= free["across"][0] and free["across"][1] <= -0.15 + 1e-6
    assert abs(free["nearest_occupied"] - 0.175) < 0.03  # the first occupied cell centre is at across +0.025
    # the left half is occupied: the samples inside the box lie on occupied cells (but for those on the box's faces, whose
    # cells' centres lie outside it)
    assert blocked["inside_occupied"] >= 0.8 * blocked["inside"] and blocked["map_collides"]
    assert blocked["across"][0] >= 0.15 - 1e-6 and blocked["nearest_occupied"] < 0.03


def test_box_map_picture_marks_the_free_and_the_occupied_part_under_the_footprints():
    box, m, trajs = scene(0.0)
    free, blocked, _ = box_pass(trajs, box, m)
    pic = box_map_picture(box, m, np.array(free["overlap_states"]))
    assert len(pic) == 28 and {len(row) for row in pic} == {36}  # (0.4 + 0.3) x (0.6 + 0.3) m at 0.025 m
    mid = pic[14]
    # left on the left: margin, the occupied left half, the right half (its outer 0.15 m under the free drive's
    # footprint), margin
    assert mid == " " * 6 + "#" * 12 + "." * 6 + "x" * 6 + " " * 6
    assert pic[0] == " " * 36 and "@" not in "".join(pic)
    pic = box_map_picture(box, m, np.array(blocked["overlap_states"]))
    assert pic[14] == " " * 6 + "@" * 6 + "#" * 6 + "." * 12 + " " * 6 and "x" not in "".join(pic)


def test_moving_states_and_distance_to_box():
    tr = np.array([[0.0, 0, 0], [0.25, 0, 0], [0.5, 0, 0], [0.5, 0, 0], [0.5, 0, 0]])
    assert np.array_equal(moving_states(tr), tr[:3]) and np.array_equal(moving_states(tr[:1].repeat(3, 0)), tr[:1])
    box = Box((1.0, 1.0, 0.3), (0.2, 0.3, 0.3), np.pi / 2, "obstacle")  # 0.6 m along x, 0.4 m along y
    d = distance_to_box(np.array([[1.0, 1.0], [1.5, 1.0], [1.0, 1.5], [1.5, 1.5]]), box)
    assert np.allclose(d, [0.0, 0.2, 0.3, np.hypot(0.2, 0.3)])
