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
