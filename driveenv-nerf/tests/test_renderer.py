"""The real-world renderer's geometry is exact; the course's road coordinates invert."""
import math

import numpy as np
import torch

from driveenv_nerf.camera import Intrinsics, VehicleCamera, generate_rays
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


def test_pixel_labels_match_what_the_renderer_paints(course):
    """labels() names what each pixel shows: the centre line is yellow, edge lines and crosswalk stripes white,
    asphalt grey, grass green, the sky its gradient; barriers and poles where the course's boxes are."""
    from driveenv_nerf.renderer import PIXEL_LABELS
    K = Intrinsics.from_fov(64, 48, 90)
    rw = RealWorldRenderer(course, K)
    # on the road at s = 9.0 m (crosswalk 9.9-10.7 m, barrier 2 at 12.2 m ahead), the camera 15 degrees down;
    # and the start of the course facing barrier 1 (s = 2.8 m) and the building
    states = np.array([course.world_from_frenet(9.0, 0.2), course.world_from_frenet(1.0, -0.2)], dtype=np.float64).reshape(2, 3)
    c2w = torch.as_tensor(VehicleCamera().c2w(states), dtype=torch.float32)
    img, lab = rw.render(c2w, lighting="day"), rw.labels(c2w)
    assert lab.shape == img.shape[:3]
    mean = {name: img[lab == i].mean(0) for i, name in enumerate(PIXEL_LABELS) if (lab == i).sum() >= 3}
    assert {"sky", "grass", "asphalt", "edge line", "centre line", "crosswalk", "barrier", "wall / building"} <= set(mean)
    r, g, b = mean["centre line"]
    assert r > b + 0.2 and g > b + 0.1  # yellow
    for white in ("edge line", "crosswalk"):
        assert mean[white].min() > mean["asphalt"].max() + 0.2
    assert mean["grass"][1] > mean["grass"][0] and mean["grass"][1] > mean["grass"][2]
    assert mean["sky"][2] > mean["sky"][0]
    # a pixel's label is its ray's surface: sky pixels are exactly the sky's colour, the rest are not
    o, d = (x.reshape(-1, 3) for x in generate_rays(c2w, K))
    sky = (lab == PIXEL_LABELS.index("sky")).reshape(-1)
    from driveenv_nerf.renderer import LIGHTINGS
    assert torch.allclose(img.reshape(-1, 3)[sky], rw.sky(d[sky], LIGHTINGS["day"]).clamp(0, 1), atol=1e-6)
