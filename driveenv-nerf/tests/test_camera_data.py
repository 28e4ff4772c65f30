"""Camera/pose conventions (nerfstudio = OpenGL) and the transforms.json reader/writer."""
import json

import numpy as np
import pytest
import torch

from driveenv_nerf.camera import Intrinsics, VehicleCamera, generate_rays, look_at
from driveenv_nerf.capture import pose_c2w
from driveenv_nerf.nerfstudio_data import DatasetError, read_transforms, write_transforms


def test_look_at_is_opengl_and_centre_ray_hits_target():
    c2w = look_at([1.0, 2.0, 3.0], [4.0, -1.0, 0.5])
    R = c2w[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0)
    fwd = -R[:, 2]  # OpenGL: the camera looks along -z
    target_dir = np.array([3.0, -3.0, -2.5]) / np.linalg.norm([3.0, -3.0, -2.5])
    assert np.allclose(fwd, target_dir)
    K = Intrinsics.from_fov(5, 5, 60)  # odd size: the middle pixel's centre is the principal point
    _, d = generate_rays(torch.as_tensor(c2w), K)
    assert np.allclose(d[0, 2, 2].numpy(), target_dir, atol=1e-6)
    # pixel (0, 0) is top-left: its ray points up (+y_cam) and left (-x_cam)
    dc = d[0, 0, 0].numpy() @ R
    assert dc[0] < 0 and dc[1] > 0 and dc[2] < 0


def test_vehicle_camera_matches_capture_pose():
    cam = VehicleCamera(height=0.35, forward=0.0, pitch_deg=15.0)
    st = np.array([[1.0, -2.0, 0.7]])
    assert np.allclose(cam.c2w(st)[0], pose_c2w(1.0, -2.0, 0.35, 0.7, 15.0))
    up = cam.c2w(st)[0][:3, 1]
    assert up[2] > 0.9  # y_cam points (mostly) up


def test_transforms_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    K = Intrinsics(8, 6, 7.0, 7.5, 4.1, 2.9)
    imgs = rng.uniform(size=(3, 6, 8, 3))
    poses = np.stack([look_at(rng.normal(size=3), rng.normal(size=3) + 5) for _ in range(3)])
    write_transforms(tmp_path, imgs, poses, K, ["day", "dusk", "night"])
    ds = read_transforms(tmp_path)
    assert ds.K == K
    assert ds.lighting == ["day", "dusk", "night"]
    assert np.allclose(ds.c2w.numpy(), poses, atol=1e-6)
    assert np.abs(ds.images.numpy() - imgs).max() <= 0.5 / 255 + 1e-6


def test_bad_datasets_raise(tmp_path):
    K = Intrinsics(4, 4, 4.0, 4.0, 2.0, 2.0)
    poses = np.stack([np.eye(4), np.eye(4)])
    write_transforms(tmp_path, np.zeros((2, 4, 4, 3)), poses, K)
    read_transforms(tmp_path)  # fine
    with pytest.raises(DatasetError, match="outside"):
        read_transforms(tmp_path, aabb=((1, 1, 1), (2, 2, 2)))
    (tmp_path / "images" / "frame_00001.png").unlink()
    with pytest.raises(DatasetError, match="missing"):
        read_transforms(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        read_transforms(tmp_path / "nowhere")
    (tmp_path / "transforms.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_transforms(tmp_path)
    meta = {"w": 4, "h": 4, "fl_x": 4.0, "frames": [{"file_path": "images/frame_00000.png", "transform_matrix": (2 * np.eye(4)).tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="rigid"):
        read_transforms(tmp_path)
    meta["frames"][0]["transform_matrix"] = np.eye(4).tolist()
    del meta["fl_x"]
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="intrinsics"):
        read_transforms(tmp_path)


def test_sparse_depth_roundtrips_through_nerfstudio_depth_images(tmp_path):
    rng = np.random.default_rng(1)
    K = Intrinsics(8, 6, 5.0, 5.0, 4.0, 3.0)
    depth = np.where(rng.random((2, 6, 8)) < 0.3, rng.uniform(0.5, 9.0, (2, 6, 8)), np.nan)
    write_transforms(tmp_path, np.zeros((2, 6, 8, 3)), np.stack([np.eye(4)] * 2), K, depth=depth)
    ds = read_transforms(tmp_path)
    got = ds.depth.numpy()
    assert np.array_equal(np.isnan(got), np.isnan(depth))
    assert np.nanmax(np.abs(got - depth)) < 2e-3  # mm steps of z-depth, times |d_cam| <= 1.3
    z = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "depths" / "frame_00000.png"), dtype=float) * 1e-3
    corner = depth[0, 0, 0] / np.linalg.norm([(0.5 - 4.0) / 5.0, (0.5 - 3.0) / 5.0, 1.0])  # z-depth = t / |d_cam|
    assert np.isnan(depth[0, 0, 0]) or abs(z[0, 0] - corner) < 1e-3
    assert read_transforms(tmp_path, downscale_to=(4, 3)).depth is None
