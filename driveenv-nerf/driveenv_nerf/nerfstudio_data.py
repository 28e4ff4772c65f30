"""Reader and writer for nerfstudio's data format (`transforms.json` + images).

The same files come out of `ns-process-data images --data <frames>` (COLMAP poses), so a real
capture drops in unchanged. Per-frame lighting labels go in an extra key, `lighting`, that
nerfstudio ignores; frames without it read as "unknown". Sparse depth goes where nerfstudio puts it
(`depth_file_path`: 16-bit PNG of z-depth along the optical axis in units of `depth_unit_scale_factor`,
0 = unknown; what `ns-process-data --use-sfm-depth` writes from COLMAP's points); in memory it is the
distance along the unit ray, NaN where unknown.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .camera import Intrinsics, camera_directions


class DatasetError(ValueError):
    """A nerfstudio dataset that cannot be used (missing files, malformed JSON, bad poses)."""


@dataclass
class NerfDataset:
    images: torch.Tensor  # (N, H, W, 3) float in [0, 1]
    c2w: torch.Tensor  # (N, 4, 4) OpenGL camera-to-world
    K: Intrinsics
    lighting: list[str]
    file_paths: list[str]
    depth: torch.Tensor | None = None  # (N, H, W) distance along each pixel's unit ray (m), NaN: unknown


def _ray_length_per_z(K: Intrinsics) -> np.ndarray:
    """|d_cam| for d_cam = (x, y, -1): distance along the unit ray per unit of z-depth, (H, W)."""
    return camera_directions(K).norm(dim=-1).numpy()


DEPTH_SCALE = 1e-3  # m per unit of the 16-bit depth PNGs (mm), nerfstudio's default depth_unit_scale_factor


def write_transforms(root, images, c2w, K: Intrinsics, lighting=None, subdir="images", depth=None) -> Path:
    """Write images as PNG and a nerfstudio transforms.json; returns the json path. `depth` (N, H, W):
    distance along the unit ray, NaN where unknown, written as depths/*.png (z-depth in mm)."""
    root = Path(root)
    (root / subdir).mkdir(parents=True, exist_ok=True)
    frames = []
    for i, (img, pose) in enumerate(zip(images, c2w)):
        rel = f"{subdir}/frame_{i:05d}.png"
        arr = (np.clip(np.asarray(img), 0, 1) * 255 + 0.5).astype(np.uint8)
        Image.fromarray(arr).save(root / rel)
        fr = {"file_path": rel, "transform_matrix": np.asarray(pose, dtype=float).tolist()}
        if lighting is not None:
            fr["lighting"] = lighting[i]
        if depth is not None:
            (root / "depths").mkdir(exist_ok=True)
            z = np.nan_to_num(np.asarray(depth[i], dtype=np.float64) / _ray_length_per_z(K), nan=0.0)
            fr["depth_file_path"] = f"depths/frame_{i:05d}.png"
            Image.fromarray(np.clip(np.round(z / DEPTH_SCALE), 0, 65535).astype(np.uint16)).save(root / fr["depth_file_path"])
        frames.append(fr)
    meta = {"camera_model": "OPENCV", "w": K.width, "h": K.height, "fl_x": K.fx, "fl_y": K.fy,
            "cx": K.cx, "cy": K.cy, "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames}
    if depth is not None:
        meta["depth_unit_scale_factor"] = DEPTH_SCALE
    path = root / "transforms.json"
    path.write_text(json.dumps(meta, indent=1))
    return path


def _intrinsics(meta: dict, frame: dict) -> Intrinsics:
    get = lambda k: frame.get(k, meta.get(k))  # nerfstudio allows per-frame intrinsics
    vals = {k: get(k) for k in ("w", "h", "fl_x", "fl_y", "cx", "cy")}
    if vals["fl_y"] is None:
        vals["fl_y"] = vals["fl_x"]
    missing = [k for k, v in vals.items() if v is None and k not in ("cx", "cy")]
    if missing:
        raise DatasetError(f"transforms.json lacks intrinsics {missing}")
    w, h = int(vals["w"]), int(vals["h"])
    cx = vals["cx"] if vals["cx"] is not None else w / 2
    cy = vals["cy"] if vals["cy"] is not None else h / 2
    return Intrinsics(w, h, float(vals["fl_x"]), float(vals["fl_y"]), float(cx), float(cy))


def read_transforms(path, aabb=None, downscale_to: tuple[int, int] | None = None) -> NerfDataset:
    """Read a nerfstudio dataset. `path` is transforms.json or its folder.

    Depth images (`depth_file_path`, nerfstudio's z-depth PNGs) are read when every frame has one and the
    images are not downscaled. Raises DatasetError for a missing or malformed file, a missing image, a pose that is not a
    rigid 4x4 transform, or (when `aabb` is given) a camera centre outside the scene box.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise DatasetError(f"{path} has no 'frames' list")
    imgs, poses, lights, files, depths, K0 = [], [], [], [], [], None
    with_depth = downscale_to is None and all("depth_file_path" in fr for fr in meta["frames"] if isinstance(fr, dict))
    for i, fr in enumerate(meta["frames"]):
        if "file_path" not in fr or "transform_matrix" not in fr:
            raise DatasetError(f"frame {i} needs 'file_path' and 'transform_matrix'")
        K = _intrinsics(meta, fr)
        if K0 is not None and (K.width, K.height) != (K0.width, K0.height):
            raise DatasetError("frames of different sizes are not supported")
        K0 = K0 or K
        pose = np.asarray(fr["transform_matrix"], dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise DatasetError(f"frame {i}: transform_matrix must be a finite 4x4 matrix")
        Rm = pose[:3, :3]
        if not np.allclose(Rm.T @ Rm, np.eye(3), atol=1e-3) or not np.allclose(pose[3], [0, 0, 0, 1]):
            raise DatasetError(f"frame {i}: transform_matrix is not a rigid transform")
        if aabb is not None and not np.all((pose[:3, 3] >= np.asarray(aabb[0])) & (pose[:3, 3] <= np.asarray(aabb[1]))):
            raise DatasetError(f"frame {i}: camera centre {pose[:3, 3].round(2).tolist()} lies outside the scene box {aabb}")
        img_path = (path.parent / fr["file_path"]).resolve()
        if not img_path.exists():
            raise DatasetError(f"frame {i}: image {img_path} is missing")
        im = Image.open(img_path).convert("RGB")
        if im.size != (K.width, K.height):
            raise DatasetError(f"frame {i}: image is {im.size}, transforms.json says {(K.width, K.height)}")
        if downscale_to is not None and im.size != tuple(downscale_to):
            im = im.resize(tuple(downscale_to), Image.BILINEAR)
        imgs.append(np.asarray(im, dtype=np.float32) / 255.0)
        poses.append(pose)
        lights.append(str(fr.get("lighting", "unknown")))
        files.append(fr["file_path"])
        if with_depth:
            dpath = path.parent / fr["depth_file_path"]
            if not dpath.exists():
                raise DatasetError(f"frame {i}: depth image {dpath} is missing")
            z = np.asarray(Image.open(dpath), dtype=np.float64) * float(meta.get("depth_unit_scale_factor", DEPTH_SCALE))
            if z.shape != (K.height, K.width):
                raise DatasetError(f"frame {i}: depth image is {z.shape[::-1]}, transforms.json says {(K.width, K.height)}")
            depths.append(np.where(z > 0, z * _ray_length_per_z(K), np.nan))
    if downscale_to is not None:
        K0 = K0.scaled(*downscale_to)
    return NerfDataset(torch.from_numpy(np.stack(imgs)), torch.as_tensor(np.stack(poses), dtype=torch.float32), K0, lights, files,
                       torch.as_tensor(np.stack(depths), dtype=torch.float32) if with_depth else None)
