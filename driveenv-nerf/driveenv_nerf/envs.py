"""Driving environments: one vehicle, three worlds (standard simulator, NeRF, real world).

Shared by every world (the README documents them):
- vehicle: kinematic bicycle, x' = v cos(yaw), y' = v sin(yaw), yaw' = v tan(delta) / L,
  constant speed v, steering delta = action * max_steer, Euler step dt;
- action: Box(-1, 1, (1,)) normalised steering;
- observation: an RGB image (H, W, 3) uint8 from the camera on the vehicle;
- reward: progress along the road centreline (metres) per step; -1 and termination on collision
  or leaving the road (centre beyond the road edge); +1 and termination at the goal;
- success: reaching the goal (within goal_margin of the end) without collision or leaving the road,
  within max_steps.
The worlds differ only in how the image is made and which geometry collisions use:
  sim  - StandardSimRenderer, exact boxes;  real - RealWorldRenderer (lighting, noise), exact boxes;
  nerf - the trained NeRF (chosen / interpolated / random appearance), obstacle map from its mesh.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from .camera import Intrinsics, VehicleCamera
from .course import Course
from .geometry import GroundTruthCollider, ObstacleMap
from .renderer import RealWorldRenderer, StandardSimRenderer


@dataclass
class EnvConfig:
    obs_width: int = 32
    obs_height: int = 24
    hfov_deg: float = 90.0
    speed: float = 1.0  # m/s
    dt: float = 0.25  # s
    wheelbase: float = 0.4  # m
    max_steer: float = 0.5  # rad
    max_steps: int = 100
    start_s: float = 0.5  # start arc length ~ U(0, start_s)
    start_d: float = 0.3  # lateral offset ~ U(-start_d, start_d)
    start_yaw: float = 0.15  # heading error ~ U(-start_yaw, start_yaw)
    goal_margin: float = 0.5

    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_fov(self.obs_width, self.obs_height, self.hfov_deg)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


class World:
    name = "world"

    def render(self, states: np.ndarray, idx=None) -> np.ndarray:
        """(B, H, W, 3) uint8 views from vehicle states (B, 3); idx: which vehicles they are."""
        raise NotImplementedError

    def collides(self, states: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def on_reset(self, idx: np.ndarray, rng: np.random.Generator, n: int):
        """Per-episode randomisation (lighting) for the cars in idx out of n."""


class SimWorld(World):
    name = "sim"

    def __init__(self, course: Course, cfg: EnvConfig, cam: VehicleCamera = VehicleCamera()):
        self.renderer, self.cam = StandardSimRenderer(course, cfg.intrinsics()), cam
        self.collider = GroundTruthCollider(course.boxes)

    def render(self, states, idx=None):
        return to_uint8(self.renderer.render(self.cam.c2w(states)))

    def collides(self, states):
        return self.collider.collides(states)


class RealWorld(World):
    name = "real"

    def __init__(self, course: Course, cfg: EnvConfig, lighting: str = "day", cam: VehicleCamera = VehicleCamera(), seed: int = 0):
        self.renderer, self.cam, self.lighting = RealWorldRenderer(course, cfg.intrinsics()), cam, lighting
        self.collider = GroundTruthCollider(course.boxes)
        self.rng = np.random.default_rng(seed)
        self.exposure = np.ones(0)

    def on_reset(self, idx, rng, n):
        if len(self.exposure) != n:
            self.exposure = np.ones(n)
        self.exposure[idx] = rng.uniform(0.9, 1.1, len(idx))

    def render(self, states, idx=None):
        from .renderer import LIGHTINGS
        img = self.renderer.render(self.cam.c2w(states), lighting=self.lighting)
        idx = np.arange(len(states)) if idx is None else idx
        exp = self.exposure[idx] if len(self.exposure) > np.max(idx, initial=-1) else np.ones(len(states))
        img = img * torch.as_tensor(exp, dtype=torch.float32)[:, None, None, None]  # per-episode exposure
        g = torch.Generator().manual_seed(int(self.rng.integers(2 ** 31)))
        img = img + LIGHTINGS[self.lighting].noise_std * torch.randn(img.shape, generator=g)  # sensor noise
        return to_uint8(img)

    def collides(self, states):
        return self.collider.collides(states)


class NeRFWorld(World):
    """Observations rendered by the NeRF; collisions against the obstacle map of its mesh.

    `appearance` is a fixed embedding (A,) or a callable (rng, n) -> (n, A) drawn per episode
    (lighting randomisation)."""

    name = "nerf"

    def __init__(self, model, obstacle_map: ObstacleMap, cfg: EnvConfig, appearance, cam: VehicleCamera = VehicleCamera(), n_samples: int = 48):
        self.model, self.map, self.cam, self.K, self.n_samples = model, obstacle_map, cam, cfg.intrinsics(), n_samples
        self.appearance = appearance
        self.app = None

    def on_reset(self, idx, rng, n):
        if callable(self.appearance):
            if self.app is None or len(self.app) != n:
                self.app = self.appearance(rng, n)
            self.app[idx] = self.appearance(rng, len(idx))

    def render(self, states, idx=None):
        from .nerf import render_image
        idx = np.arange(len(states)) if idx is None else idx
        if callable(self.appearance):
            app = self.app[idx] if self.app is not None and len(self.app) > np.max(idx, initial=-1) else self.appearance(np.random.default_rng(0), len(states))
        else:
            app = self.appearance
        return to_uint8(render_image(self.model, torch.as_tensor(self.cam.c2w(states), dtype=torch.float32), self.K, app, n_samples=self.n_samples))

    def collides(self, states):
        return self.map.collides(states)


class BatchDrive:
    """n vehicles driving in one world at once (batched rendering); the core of every env."""

    def __init__(self, course: Course, world: World, cfg: EnvConfig, n: int = 1, seed: int = 0):
        self.course, self.world, self.cfg, self.n = course, world, cfg, n
        self.rng = np.random.default_rng(seed)
        self.states = np.zeros((n, 3))
        self.s = np.zeros(n)
        self.t = np.zeros(n, dtype=int)
        self.goal_s = course.length - cfg.goal_margin

    def sample_starts(self, k: int) -> np.ndarray:
        c = self.cfg
        s = self.rng.uniform(0, c.start_s, k)
        d = self.rng.uniform(-c.start_d, c.start_d, k)
        st = self.course.world_from_frenet(s, d)
        st[:, 2] += self.rng.uniform(-c.start_yaw, c.start_yaw, k)
        return st

    def check_start(self, st, check_collision: bool = True):
        """Raise ValueError for start states off the road, outside the scene or (optionally) in collision."""
        s, d = self.course.frenet(st[:, 0], st[:, 1])
        bad = (np.abs(d) > self.course.half_width) | ~self.course.in_aabb(np.c_[st[:, :2], np.full(len(st), 0.3)]) | (s >= self.goal_s)
        if bad.any():
            raise ValueError(f"start state(s) {st[bad].round(2).tolist()} are off the road or outside the scene")
        if check_collision and self.world.collides(st).any():
            raise ValueError("start state collides with an obstacle")

    def reset(self, idx=None, states=None) -> np.ndarray:
        """Reset vehicles idx (all by default); returns observations of all vehicles."""
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        if len(idx):
            st = self.sample_starts(len(idx)) if states is None else np.asarray(states, dtype=np.float64).reshape(len(idx), 3)
            # a learnt world (NeRF mesh) may put floaters on a valid start: that episode then fails, as it should
            self.check_start(st, check_collision=states is not None and not isinstance(self.world, NeRFWorld))
            self.states[idx] = st
            self.s[idx] = self.course.frenet(st[:, 0], st[:, 1])[0]
            self.t[idx] = 0
            self.world.on_reset(idx, self.rng, self.n)
        return self.world.render(self.states)

    def dynamics(self, states, action):
        """Kinematic bicycle, one Euler step."""
        c = self.cfg
        delta = np.clip(action, -1, 1) * c.max_steer
        x, y, yaw = states[:, 0], states[:, 1], states[:, 2]
        return np.stack([x + c.speed * np.cos(yaw) * c.dt, y + c.speed * np.sin(yaw) * c.dt,
                         yaw + c.speed / c.wheelbase * np.tan(delta) * c.dt], -1)

    def step(self, action, active=None):
        """Returns obs, reward, terminated, truncated, info (arrays over vehicles). No auto-reset.

        `active` (bool mask) renders only those vehicles' observations (the others are zeros)."""
        a = np.asarray(action, dtype=np.float64).reshape(self.n)
        self.states = self.dynamics(self.states, a)
        s_new, d_new = self.course.frenet(self.states[:, 0], self.states[:, 1])
        progress = s_new - self.s
        self.s = s_new
        self.t += 1
        collision = self.world.collides(self.states)
        offroad = np.abs(d_new) > self.course.half_width
        success = (s_new >= self.goal_s) & ~collision & ~offroad
        reward = progress - 1.0 * (collision | offroad) + 1.0 * success
        terminated = collision | offroad | success
        truncated = (self.t >= self.cfg.max_steps) & ~terminated
        if active is None:
            obs = self.world.render(self.states)
        else:
            obs = np.zeros((self.n, self.cfg.obs_height, self.cfg.obs_width, 3), np.uint8)
            on = np.flatnonzero(active)
            if len(on):
                obs[on] = self.world.render(self.states[on], on)
        return obs, reward, terminated, truncated, {"success": success, "collision": collision, "offroad": offroad, "s": s_new.copy(), "d": d_new}


class DriveEnv(gym.Env):
    """Gymnasium interface to one vehicle in one world."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, course: Course, world: World, cfg: EnvConfig = EnvConfig(), render_mode=None):
        self.cfg, self.render_mode = cfg, render_mode
        self.core = BatchDrive(course, world, cfg, n=1)
        self.observation_space = gym.spaces.Box(0, 255, (cfg.obs_height, cfg.obs_width, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._obs = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.core.rng = np.random.default_rng(seed)
            if hasattr(self.core.world, "rng"):
                self.core.world.rng = np.random.default_rng(seed + 1)
        states = None if not options or "state" not in options else options["state"]
        self._obs = self.core.reset(states=states)[0]
        return self._obs, {"state": self.core.states[0].copy()}

    def step(self, action):
        obs, r, term, trunc, info = self.core.step(np.asarray(action, dtype=np.float64).reshape(1))
        self._obs = obs[0]
        info = {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in info.items()}
        info["state"] = self.core.states[0].copy()
        return self._obs, float(r[0]), bool(term[0]), bool(trunc[0]), info

    def render(self):
        return self._obs
