"""Capturing posed views of the "real world" under several lightings (step 1-2 of the paper).

Stands in for driving the UGV along the course with a camera at different times of day and
running COLMAP: poses here are exact. Poses follow the road (the vehicle camera, with lateral
and heading jitter) plus some higher, steeper views (a hand-held camera), which constrain the
geometry better.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .camera import Intrinsics
from .course import Course
from .renderer import RealWorldRenderer


def pose_c2w(x, y, z, yaw, pitch_deg) -> np.ndarray:
    """OpenGL c2w of a camera at (x, y, z) with heading yaw, pitched down by pitch_deg."""
    th = math.radians(pitch_deg)
    f = np.array([math.cos(yaw) * math.cos(th), math.sin(yaw) * math.cos(th), -math.sin(th)])
    r = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    u = np.cross(r, f)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = r, u, -f, (x, y, z)
    return c2w


def sample_capture_poses(course: Course, n: int, rng: np.random.Generator, high_frac: float = 0.3) -> np.ndarray:
    poses = []
    while len(poses) < n:
        s = rng.uniform(-0.5, course.length + 0.3)
        d = rng.uniform(-0.9, 0.9)
        x, y, yaw = course.world_from_frenet(s, d)
        yaw += rng.uniform(-0.6, 0.6)
        if rng.random() < high_frac:
            z, pitch = rng.uniform(0.6, 1.3), rng.uniform(20, 40)
        else:
            z, pitch = rng.uniform(0.3, 0.45), rng.uniform(8, 22)
        c2w = pose_c2w(x, y, z, yaw, pitch)
        if course.in_aabb(c2w[:3, 3], margin=-0.05):
            poses.append(c2w)
    return np.stack(poses)


def capture(course: Course, K: Intrinsics, lightings, n_per_lighting: int, seed: int):
    """Images (N, H, W, 3), c2w (N, 4, 4) and lighting labels, rendered by the real-world renderer."""
    rng = np.random.default_rng(seed)
    rw = RealWorldRenderer(course, K)
    imgs, poses, labels = [], [], []
    for li, name in enumerate(lightings):
        P = sample_capture_poses(course, n_per_lighting, rng)
        for k, c2w in enumerate(P):
            exposure = rng.uniform(0.9, 1.1)  # per-image auto-exposure: what appearance embeddings absorb
            img = rw.render(torch.as_tensor(c2w[None]), lighting=name, exposure=exposure, noise_seed=seed * 100003 + li * 1009 + k)[0]
            imgs.append(img)
            poses.append(c2w)
            labels.append(name)
    return torch.stack(imgs), np.stack(poses), labels


def sparse_depth(course: Course, c2w, K: Intrinsics, frac: float, seed: int, aabb=None) -> torch.Tensor:
    """Depth along the ray (m) at a random `frac` of each view's pixels, NaN elsewhere: (N, H, W).

    Stands in for COLMAP's sparse points projected into the views (nerfstudio: `ns-process-data
    --use-sfm-depth`): exact here, where COLMAP's would be noisy and sit on textured corners. Surfaces
    outside `aabb` (the NeRF's scene box) and the sky get none."""
    from .camera import generate_rays
    from .renderer import BoxSet, cast
    o, d = generate_rays(torch.as_tensor(np.asarray(c2w), dtype=torch.float32), K)
    shape = o.shape[:-1]
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    t, _, _, _, _ = cast(BoxSet(course.boxes), o, d)
    keep = torch.as_tensor(np.random.default_rng(seed).random(len(t)) < frac) & torch.isfinite(t)
    if aabb is not None:
        p = o + t.clamp(max=1e3)[:, None] * d
        lo, hi = torch.tensor(aabb[0], dtype=torch.float32), torch.tensor(aabb[1], dtype=torch.float32)
        keep &= ((p >= lo - 1e-3) & (p <= hi + 1e-3)).all(-1)
    return torch.where(keep, t, torch.full_like(t, float("nan"))).view(shape)
