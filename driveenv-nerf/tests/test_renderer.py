"""The real-world renderer's geometry is exact; the course's road coordinates invert."""
import math

import numpy as np
import torch

from driveenv_nerf.camera import Intrinsics
from driveenv_nerf.capture import pose_c2w
from driveenv_nerf.course import Box, Course
from driveenv_nerf.renderer import BoxSet, RealWorldRenderer, StandardSimRenderer, cast


def test_ray_box_hits_are_exact():
    bs = BoxSet([Box((0.0, 0.0, 1.0), (1.0, 0.5, 1.0), 0.0), Box((10.0, 0.0, 1.0), (1.0, 1.0, 1.0), math.pi / 4)])
    o = torch.tensor([[-5.0, 0.0, 1.0], [-5.0, 0.3, 1.7], [0.0, -4.0, 1.0], [5.0, 0.0, 1.0], [-5.0, 3.0, 1.0]])
    d = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [1.0, 0, 0]])
    t, axis, _ = bs.intersect(o, d)
    assert torch.allclose(t[:3, 0], torch.tensor([4.0, 4.0, 3.5]))
    assert torch.allclose(t[3, 1], torch.tensor(5.0 - math.sqrt(2.0)), atol=1e-5)  # rotated box: its corner
    assert torch.isinf(t[4]).all() and torch.isinf(t[3, 0])  # misses; a box behind the origin is not hit
    # the normal of the face hit points back at the ray
    n = bs.normal(torch.tensor([0]), axis[0:1, 0], bs.intersect(o[:1], d[:1])[2])
    assert torch.allclose(n, torch.tensor([[-1.0, 0, 0]]))


def test_depth_of_known_scene():
    course = Course(segments=[("straight", 10.0)], boxes=[Box((5.0, 0.0, 1.0), (0.5, 3.0, 1.0))])
    K = Intrinsics.from_fov(9, 7, 60)
    c2w = torch.as_tensor(pose_c2w(0.0, 0.0, 1.0, 0.0, 0.0)[None])
    depth = RealWorldRenderer(course, K).depth(c2w)[0]
    assert abs(depth[3, 4].item() - 4.5) < 1e-5  # centre ray hits the wall face at x = 4.5
    c2w_down = torch.as_tensor(pose_c2w(0.0, 0.0, 2.0, 0.0, 90.0)[None])
    depth = RealWorldRenderer(course, K).depth(c2w_down)[0]
    assert abs(depth[3, 4].item() - 2.0) < 1e-5  # straight down to the ground plane
    t, sid, *_ = cast(BoxSet(course.boxes), torch.tensor([[0.0, 0, 1.0]]), torch.tensor([[0.0, 0, 1.0]]))
    assert sid.item() == -2  # looking up: sky


def test_frenet_roundtrip(course):
    rng = np.random.default_rng(0)
    s = rng.uniform(-0.5, course.length + 0.5, 200)
    d = rng.uniform(-1.2, 1.2, 200)
    p = course.world_from_frenet(s, d)
    s2, d2 = course.frenet(p[:, 0], p[:, 1])
    assert np.allclose(s2, s, atol=1e-9) and np.allclose(d2, d, atol=1e-9)
    assert np.allclose(course.end, (8.0, 8.0, math.pi / 2))


def test_renders_differ_between_lightings_and_simulator(course):
    K = Intrinsics.from_fov(16, 12, 90)
    c2w = torch.as_tensor(pose_c2w(0.5, 0.0, 0.35, 0.0, 15.0)[None])
    rw = RealWorldRenderer(course, K)
    day, night = rw.render(c2w, lighting="day"), rw.render(c2w, lighting="night")
    sim = StandardSimRenderer(course, K).render(c2w)
    assert day.shape == (1, 12, 16, 3) and 0 <= day.min() and day.max() <= 1
    assert night.mean() < 0.5 * day.mean()
    assert (sim - day).abs().mean() > 0.05
    noisy = rw.render(c2w, lighting="day", noise_seed=1)
    assert 0.003 < (noisy - day).std() < 0.03
