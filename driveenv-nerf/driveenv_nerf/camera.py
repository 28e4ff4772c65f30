"""Pinhole cameras and poses in nerfstudio's convention.

nerfstudio (and NeRF/Blender, i.e. OpenGL) camera axes: x right, y up, the camera looks
along -z. `transform_matrix` in transforms.json is camera-to-world (c2w), 4x4. Pixel (u, v)
has u to the right and v down, and its ray passes through the pixel centre (u + 0.5, v + 0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @staticmethod
    def from_fov(width: int, height: int, hfov_deg: float) -> "Intrinsics":
        fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
        return Intrinsics(width, height, fx, fx, width / 2, height / 2)

    def scaled(self, width: int, height: int) -> "Intrinsics":
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy)


def camera_directions(K: Intrinsics) -> torch.Tensor:
    """Unit-free ray directions in camera coordinates, shape (H, W, 3), OpenGL axes."""
    v, u = torch.meshgrid(torch.arange(K.height, dtype=torch.float32), torch.arange(K.width, dtype=torch.float32), indexing="ij")
    return torch.stack([(u + 0.5 - K.cx) / K.fx, -(v + 0.5 - K.cy) / K.fy, -torch.ones_like(u)], -1)


def generate_rays(c2w: torch.Tensor, K: Intrinsics):
    """World-space ray origins and unit directions for each pixel: (B, H, W, 3) each."""
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    if c2w.dim() == 2:
        c2w = c2w[None]
    d_cam = camera_directions(K)
    d = torch.einsum("bij,hwj->bhwi", c2w[:, :3, :3], d_cam)
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[:, None, None, :3, 3].expand_as(d)
    return o, d


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """c2w (OpenGL) of a camera at `eye` looking at `target`."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = r, u, -f, eye
    return c2w


@dataclass(frozen=True)
class VehicleCamera:
    """The camera rigidly mounted on the vehicle: height, forward offset, downward pitch."""

    height: float = 0.35
    forward: float = 0.2
    pitch_deg: float = 15.0

    def c2w(self, states) -> np.ndarray:
        """c2w (B, 4, 4) for vehicle states (B, 3) = (x, y, yaw)."""
        st = np.atleast_2d(np.asarray(states, dtype=np.float64))
        x, y, yaw = st[:, 0], st[:, 1], st[:, 2]
        th = math.radians(self.pitch_deg)
        f = np.stack([np.cos(yaw) * math.cos(th), np.sin(yaw) * math.cos(th), np.full_like(yaw, -math.sin(th))], -1)
        r = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], -1)
        u = np.cross(r, f)
        out = np.tile(np.eye(4), (len(st), 1, 1))
        out[:, :3, 0], out[:, :3, 1], out[:, :3, 2] = r, u, -f
        out[:, :3, 3] = np.stack([x + self.forward * np.cos(yaw), y + self.forward * np.sin(yaw), np.full_like(x, self.height)], -1)
        return out
