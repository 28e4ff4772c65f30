"""benchmarks/barrier_evidence.py: faces of a box hit by rays, and the field-vs-map picture around it."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from barrier_evidence import FACES, LINES, face_of, field_map_picture, in_patch, outward_offset, patch_share  # noqa: E402
from nerf_world_diagnose import box_local  # noqa: E402
from driveenv_nerf.course import Box  # noqa: E402
from driveenv_nerf.renderer import BoxSet, cast  # noqa: E402


@pytest.mark.parametrize("yaw", [0.0, np.pi / 2, 0.7])
def test_face_of_names_the_face_each_ray_hits(yaw):
    """Rays cast at a rotated box from in front, behind, its left, its right and above hit the face face_of names."""
    box = Box((1.0, -0.5, 0.3), (0.2, 0.3, 0.3), yaw, "obstacle")
    c, s = np.cos(yaw), np.sin(yaw)
    world = lambda a, b: np.array([box.center[0] + c * a - s * b, box.center[1] + s * a + c * b])  # noqa: E731
    starts = {"approach": (-1.0, 0.1, 0.3), "far": (1.0, -0.1, 0.3), "left side": (0.05, 1.0, 0.3), "right side": (-0.05, -1.0, 0.3),
              "top": (0.05, 0.1, 1.5)}
    for name, (a, b, z) in starts.items():
        o = np.r_[world(a, b), z]
        target = np.r_[world(0.5 * a if name != "top" else a, 0.5 * b if name != "top" else b), 0.3 if name != "top" else 0.0]
        d = (target - o) / np.linalg.norm(target - o)
        t, sid, _, _, _ = cast(BoxSet([box]), torch.tensor(np.array([o]), dtype=torch.float32), torch.tensor(np.array([d]), dtype=torch.float32))
        assert sid.item() == 0
        p = o + t.item() * d
        loc = np.c_[box_local(p[None, :2], box), [[p[2] - box.center[2]]]]
        assert FACES[int(face_of(loc, box)[0])] == name
    corner = np.array([[-0.15, -0.25], [-0.15, 0.25], [0.15, -0.25]])
    assert in_patch(corner, ((-0.2, -0.1), (-0.3, -0.2))).tolist() == [True, False, False]


def test_field_map_picture_separates_the_field_from_the_map():
    """The field holds the box's left half, the map its near half: each quarter of the box gets its own letter, left
    on the left and the near (approach) end at the bottom; outside the box the field reaches 0.05 m further left."""
    box = Box((2.0, 1.0, 0.3), (0.2, 0.3, 0.3), np.pi / 2, "obstacle")
    field = lambda xy: ((lambda loc: (loc[..., 1] > 0) & (loc[..., 1] <= 0.35) & (np.abs(loc[..., 0]) <= 0.2))(box_local(xy, box)))  # noqa: E731
    mapped = lambda xy: ((lambda loc: (loc[..., 0] < 0) & (np.abs(loc[..., 0]) <= 0.2) & (np.abs(loc[..., 1]) <= 0.3))(box_local(xy, box)))  # noqa: E731
    pic = field_map_picture(box, field, mapped)
    assert len(pic) == 28 and {len(r) for r in pic} == {36}  # (0.4 + 0.3) x (0.6 + 0.3) m at 0.025 m
    far, near = pic[8], pic[20]  # rows inside the box: +along (far) at the top
    assert far == "    ff" + "F" * 12 + "." * 12 + "      "
    assert near == "    ff" + "#" * 12 + "M" * 12 + "      "
    assert pic[0].strip() == "" and pic[-1].strip() == ""


@pytest.mark.parametrize("yaw", [0.0, np.pi / 2, 0.7])
def test_outward_offsets_find_a_fat_face_and_a_corner_notch(yaw):
    """A body 0.05 m longer than the box on its approach side, with a notch 0.03 m deep into the right side over its
    last 0.15 m before the approach end: the sweep's lines give +0.05 on the approach lines, 0 on the other faces,
    -0.03 through the notch, and the corner patch (along -0.2..-0.1, across -0.3..-0.2) is 0.7 covered."""
    box = Box((2.0, 1.0, 0.3), (0.2, 0.3, 0.3), yaw, "obstacle")

    def body(xy):
        a, c = box_local(xy, box)[..., 0], box_local(xy, box)[..., 1]
        inside = (a >= -0.2501) & (a <= 0.2001) & (np.abs(c) <= 0.3001)
        return inside & ~((a < -0.1) & (c < -0.27))

    want = {"approach": 0.05, "far": 0.0, "left side": 0.0, "right side": 0.0, "approach @ across -0.25": 0.05, "right side @ along -0.15": -0.03}
    for name, point, direction in LINES:
        assert outward_offset(body, box, point, direction) == pytest.approx(want[name], abs=0.006), name
    assert outward_offset(body, box, (0.1, 0.05), (-1.0, 0.0)) == pytest.approx(0.05, abs=0.006)  # a start off the centre
    assert outward_offset(body, box, (0.0, 0.1), (0.0, 1.0)) == pytest.approx(0.0, abs=0.006)
    assert patch_share(body, box, ((-0.2, -0.1), (-0.3, -0.2))) == pytest.approx(0.7)
    assert np.isnan(outward_offset(lambda xy: np.zeros(xy.shape[:-1], bool), box, (0.0, 0.0), (1.0, 0.0)))
