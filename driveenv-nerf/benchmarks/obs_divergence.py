"""Where do a policy's NeRF-world and real-world rollouts part, and which part of the NeRF's image moves it?

Reads the per-step log that `nerf_world_diagnose.py --step-policy P` writes (<run>/diagnose/steps_<P>.csv: the
policy driven on NeRF pixels and on real pixels from the same seeded starts, with its action on the other world's
image at the same pose) and then:

1. divergence: per episode, the first step where the two vehicles' lateral offsets differ by more than --d-tol, and
   the first step of the NeRF-driven episode where the action on the NeRF image and on the real image of the same
   pose differ by more than --a-tol;
2. images at the NeRF-driven poses: real (day, exposure 1, no noise) and NeRF (day embedding) of the same pose, every
   pixel labelled by what its ray hits (`RealWorldRenderer.labels`: sky, grass, asphalt, edge line, centre line,
   crosswalk, wall / building, barrier, lamp pole): mean |NeRF - real| per label and its share of the total
   difference, mean colours, sharpness (mean absolute difference of neighbouring pixels);
3. open-loop counterfactuals at those poses, per arc-length band: the action on the real image, on the NeRF image,
   on the real image with one label group's pixels taken from the NeRF image, on the NeRF image with one group's
   pixels taken from the real image, and on the real image in the NeRF's colours (per-channel affine fit) and blurred
   (Gaussian, sigma fitted to the NeRF);
4. closed loop (--closed-loop GROUPS): the policy driven on composite images (real pixels with group G from the NeRF,
   `real+nerf:G`, or NeRF pixels with G from the real image, `nerf+real:G`) and on the transformed real images, exact
   boxes, evaluate()'s 24 starts: which difference alone sends it off the road.

    python benchmarks/nerf_world_diagnose.py runs/quick-20261126-190913 --policies seed-1/dagger-nerf-day-bc \\
        --step-policy seed-1/dagger-nerf-day-bc --worlds real,nerf --no-checks        # writes the per-step log
    python benchmarks/obs_divergence.py runs/quick-20261126-190913 --policy seed-1/dagger-nerf-day-bc \\
        --closed-loop marks,asphalt,boxes
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driveenv_nerf.agents import evaluate  # noqa: E402
from driveenv_nerf.envs import BatchDrive, NeRFWorld, RealWorld, World, to_uint8  # noqa: E402
from driveenv_nerf.geometry import GroundTruthCollider  # noqa: E402
from driveenv_nerf.nerf import render_image  # noqa: E402
from driveenv_nerf.renderer import PIXEL_LABELS, RealWorldRenderer  # noqa: E402

# label groups swapped together (a 32 x 24 image has a few pixels of each line)
GROUPS = {"sky": ("sky",), "grass": ("grass",), "asphalt": ("asphalt",), "marks": ("edge line", "centre line", "crosswalk"),
          "edge": ("edge line",), "centre": ("centre line",), "crosswalk": ("crosswalk",),
          "boxes": ("wall / building", "barrier", "lamp pole")}


def group_mask(labels: np.ndarray, group: str) -> np.ndarray:
    """(B, H, W) bool: pixels whose label is in the group."""
    return np.isin(labels, [PIXEL_LABELS.index(n) for n in GROUPS[group]])


def composite(base: np.ndarray, donor: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`base` images (B, H, W, 3) with the masked pixels (B, H, W) taken from `donor`."""
    return np.where(mask[..., None], donor, base)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of float images (B, H, W, 3), edges replicated; sigma in pixels (0: unchanged)."""
    if sigma <= 0:
        return img.copy()
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = torch.as_tensor(k / k.sum(), dtype=torch.float32)
    x = torch.as_tensor(img, dtype=torch.float32).permute(0, 3, 1, 2)
    C = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(C, 1, 1, 1), groups=C)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(C, 1, 1, 1), groups=C)
    return x.permute(0, 2, 3, 1).numpy()


def fit_colour(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per-channel least-squares affine map src -> dst over all pixels: (3, 2) rows (gain, offset)."""
    out = np.zeros((3, 2))
    for c in range(3):
        A = np.c_[src[..., c].ravel(), np.ones(src[..., c].size)]
        out[c] = np.linalg.lstsq(A, dst[..., c].ravel(), rcond=None)[0]
    return out


def apply_colour(img: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return img * coef[:, 0] + coef[:, 1]


def fit_blur(src: np.ndarray, dst: np.ndarray, sigmas=np.arange(0.0, 2.51, 0.25)) -> tuple[float, dict]:
    """The Gaussian sigma (pixels) whose blur of `src` is closest to `dst` (mean absolute difference)."""
    err = {float(s): float(np.abs(gaussian_blur(src, s) - dst).mean()) for s in sigmas}
    return min(err, key=err.get), err


def sharpness(img: np.ndarray) -> float:
    """Mean absolute difference of horizontally and vertically neighbouring pixels."""
    return float((np.abs(np.diff(img, axis=1)).mean() + np.abs(np.diff(img, axis=2)).mean()) / 2)


def read_steps(path: Path) -> dict:
    """steps_<policy>.csv -> {drive_world: {episode: dict of per-step arrays}}."""
    out: dict = {}
    for r in csv.DictReader(open(path)):
        ep = out.setdefault(r["drive_world"], {}).setdefault(int(r["episode"]), {})
        for k, v in r.items():
            if k not in ("drive_world", "episode"):
                ep.setdefault(k, []).append(v if k == "end" else float(v))
    return {w: {e: {k: (v if k == "end" else np.array(v)) for k, v in ep.items()} for e, ep in eps.items()} for w, eps in out.items()}


def divergence(steps: dict, d_tol: float = 0.1, a_tol: float = 0.3) -> list[dict]:
    """Per episode (same start in both worlds): the first step where the NeRF- and the real-driven vehicles'
    lateral offsets differ by more than d_tol (m), and the first step of the NeRF-driven run where the action on
    the NeRF image and on the real image of the same pose differ by more than a_tol; with their arc lengths."""
    out = []
    for e, n in sorted(steps["nerf"].items()):
        r = steps["real"][e]
        k = min(len(n["t"]), len(r["t"]))
        dd = np.abs(n["d"][:k] - r["d"][:k])
        t_d = int(np.argmax(dd > d_tol)) if (dd > d_tol).any() else None
        ga = np.abs(n["action_own"] - n["action_other"])
        t_a = int(np.argmax(ga > a_tol)) if (ga > a_tol).any() else None
        out.append({"episode": e, "end_nerf": n["end"][-1] or "timeout", "end_real": r["end"][-1] or "timeout",
                    "steps_nerf": len(n["t"]), "steps_real": len(r["t"]),
                    "t_d": t_d, "s_d": float(n["s"][t_d]) if t_d is not None else None,
                    "t_a": t_a, "s_a": float(n["s"][t_a]) if t_a is not None else None,
                    "s_end_nerf": float(n["s"][-1]), "d_end_nerf": float(n["d"][-1])})
    return out


def band_table(steps: dict, edges: list[float]) -> list[dict]:
    """Per arc-length band [lo, hi): the mean lateral offset of the NeRF-driven and of the real-driven vehicles, and
    at the NeRF-driven poses the mean signed action difference a(NeRF image) - a(real image) and its share < 0."""
    cat = lambda w, k: np.concatenate([ep[k] for ep in steps[w].values()])  # noqa: E731
    sn, sr, dn, dr = cat("nerf", "s"), cat("real", "s"), cat("nerf", "d"), cat("real", "d")
    gap = cat("nerf", "action_own") - cat("nerf", "action_other")
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        kn, kr = (sn >= lo) & (sn < hi), (sr >= lo) & (sr < hi)
        out.append({"band": (lo, hi), "n_nerf": int(kn.sum()), "n_real": int(kr.sum()),
                    "d_nerf": float(dn[kn].mean()) if kn.any() else None, "d_real": float(dr[kr].mean()) if kr.any() else None,
                    "gap": float(gap[kn].mean()) if kn.any() else None, "gap_negative": float((gap[kn] < 0).mean()) if kn.any() else None})
    return out


class Composite(World):
    """Pixels from `base` with the label group's pixels from `donor` (both render the same poses); exact boxes."""

    def __init__(self, base: World, donor: World, labeller: RealWorldRenderer, cam, group: str, course):
        self.base, self.donor, self.labeller, self.cam, self.group = base, donor, labeller, cam, group
        self.collider = GroundTruthCollider(course.boxes)

    def on_reset(self, idx, rng, n):
        self.base.on_reset(idx, rng, n)

    def render(self, states, idx=None):
        lab = self.labeller.labels(torch.as_tensor(self.cam.c2w(states), dtype=torch.float32)).numpy()
        return composite(self.base.render(states, idx), self.donor.render(states, idx), group_mask(lab, self.group))

    def collides(self, states):
        return self.collider.collides(states)


class Transformed(World):
    """A world's pixels through a float-image transform (colour map, blur); its geometry."""

    def __init__(self, world: World, fn):
        self.world, self.fn = world, fn

    def on_reset(self, idx, rng, n):
        self.world.on_reset(idx, rng, n)

    def render(self, states, idx=None):
        return to_uint8(torch.as_tensor(self.fn(self.world.render(states, idx) / 255.0), dtype=torch.float32))

    def collides(self, states):
        return self.world.collides(states)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--policy", default="seed-1/dagger-nerf-day-bc")
    ap.add_argument("--d-tol", type=float, default=0.1, help="lateral offset difference (m) that counts as diverged")
    ap.add_argument("--a-tol", type=float, default=0.3, help="action difference (of 2) that counts as diverged")
    ap.add_argument("--bands", default="0,3,6,8,9,9.5,10,10.5,11,12,15", help="arc-length band edges (m) of the tables")
    ap.add_argument("--groups", default="sky,grass,asphalt,marks,edge,centre,crosswalk,boxes", help="open-loop swaps")
    ap.add_argument("--closed-loop", default="", help="label groups to swap in closed loop (each both ways; '' none)")
    ap.add_argument("--figure", default="", help="write the images of the first failed NeRF episode here (PNG)")
    ap.add_argument("--steps-only", action="store_true", help="only part 1 and the per-band table of the per-step log (no rendering)")
    args = ap.parse_args()
    from nerf_world_diagnose import file_tag, load_policy, load_run
    torch.set_num_threads(2)
    run = Path(args.run)
    R = load_run(run)
    course, env_cfg, cam = R.course, R.env_cfg, R.cam
    pol = load_policy(run, args.policy, env_cfg)
    steps = read_steps(run / "diagnose" / f"steps_{file_tag(args.policy)}.csv")
    summary: dict = {"policy": args.policy}

    # 1. where the two rollouts part
    div = divergence(steps, args.d_tol, args.a_tol)
    summary["divergence"] = div
    print(f"{args.policy}: per episode, NeRF-driven vs real-driven from the same start (d-tol {args.d_tol} m, a-tol {args.a_tol})")
    print("| ep | end NeRF (s, d at the last step) | end real | first step |d_nerf - d_real| > tol (s) | first step |a(NeRF img) - a(real img)| > tol (s) |")
    print("|---|---|---|---|---|")
    for r in div:
        print(f"| {r['episode']} | {r['end_nerf']} ({r['s_end_nerf']:.2f}, {r['d_end_nerf']:+.2f}) | {r['end_real']} | "
              f"{r['t_d']} ({r['s_d'] if r['s_d'] is None else round(r['s_d'], 2)}) | {r['t_a']} ({r['s_a'] if r['s_a'] is None else round(r['s_a'], 2)}) |")

    edges = [float(b) for b in args.bands.split(",")]
    summary["bands"] = band_table(steps, edges)
    print("\nper arc-length band (s in m): mean lateral offset d (m; the road edge at -1 / +1) driving on NeRF / on real pixels; "
          "at the NeRF-driven poses the mean of a(NeRF image) - a(real image) (logged, real image with noise) and its share < 0")
    print("| band | poses NeRF / real | d NeRF-driven | d real-driven | a(NeRF) - a(real) | share < 0 |")
    print("|---|---|---|---|---|---|")
    f = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    for b in summary["bands"]:
        print(f"| [{b['band'][0]:g}, {b['band'][1]:g}) | {b['n_nerf']} / {b['n_real']} | {f(b['d_nerf'], '+.2f')} | {f(b['d_real'], '+.2f')} | "
              f"{f(b['gap'], '+.3f')} | {f(b['gap_negative'], '.2f')} |")
    if args.steps_only:
        return

    # 2. images at the NeRF-driven poses
    eps = sorted(steps["nerf"])
    S = np.concatenate([np.c_[steps["nerf"][e]["x"], steps["nerf"][e]["y"], steps["nerf"][e]["yaw"]] for e in eps])
    s_arc = np.concatenate([steps["nerf"][e]["s"] for e in eps])
    ep_of = np.concatenate([np.full(len(steps["nerf"][e]["t"]), e) for e in eps])
    c2w = torch.as_tensor(cam.c2w(S), dtype=torch.float32)
    rw = RealWorldRenderer(course, env_cfg.intrinsics())
    with torch.no_grad():
        real = rw.render(c2w, lighting="day").clamp(0, 1).numpy()
        nerf = np.concatenate([render_image(R.model, c2w[i:i + 256], env_cfg.intrinsics(), R.app["day"], n_samples=R.n_samples).clamp(0, 1).numpy()
                               for i in range(0, len(c2w), 256)])
    lab = rw.labels(c2w).numpy()
    # the images as the policy sees them (uint8) and as floats
    q = lambda x: np.round(np.clip(x, 0, 1) * 255) / 255  # noqa: E731
    real, nerf = q(real), q(nerf)
    diff = np.abs(nerf - real).mean(-1)
    total = diff.sum()
    print(f"\n{len(S)} NeRF-driven poses: mean |NeRF - real| {255 * diff.mean():.1f} / 255; sharpness (mean |neighbour difference|, /255) "
          f"real {255 * sharpness(real):.1f}, NeRF {255 * sharpness(nerf):.1f}")
    print("| label | share of pixels | mean |NeRF - real| (/255) | share of the total difference | mean colour real (RGB /255) | mean colour NeRF |")
    print("|---|---|---|---|---|---|")
    summary["labels"] = {}
    for i, name in enumerate(PIXEL_LABELS):
        m = lab == i
        if not m.any():
            continue
        row = {"pixels": float(m.mean()), "diff": float(255 * diff[m].mean()), "share": float(diff[m].sum() / total),
               "real": (255 * real[m].mean(0)).round(1).tolist(), "nerf": (255 * nerf[m].mean(0)).round(1).tolist()}
        summary["labels"][name] = row
        print(f"| {name} | {row['pixels']:.3f} | {row['diff']:.1f} | {row['share']:.3f} | {row['real']} | {row['nerf']} |")
    coef = fit_colour(real, nerf)
    sigma, blur_err = fit_blur(apply_colour(real, coef), nerf)
    summary["colour_fit"], summary["blur_sigma"], summary["blur_err"] = coef.tolist(), sigma, blur_err
    print(f"colour map real -> NeRF (gain, offset per R, G, B): {np.round(coef, 3).tolist()}; mean |NeRF - real| after it "
          f"{255 * np.abs(apply_colour(real, coef) - nerf).mean():.1f}, after it and a Gaussian blur of sigma {sigma:g} px "
          f"{255 * blur_err[sigma]:.1f} / 255")

    # 3. open-loop counterfactual actions
    variants = {"real": real, "NeRF": nerf, "real, NeRF colours": q(apply_colour(real, coef)),
                "real, blurred": q(gaussian_blur(real, sigma)), "real, NeRF colours + blur": q(gaussian_blur(apply_colour(real, coef), sigma))}
    for g in args.groups.split(","):
        m = group_mask(lab, g)
        variants[f"real + NeRF {g}"] = composite(real, nerf, m)
        variants[f"NeRF + real {g}"] = composite(nerf, real, m)
    with torch.no_grad():
        acts = {k: pol.act((255 * v).round().astype(np.uint8)).ravel() for k, v in variants.items()}
    bands = [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if ((s_arc >= lo) & (s_arc < hi)).any()]
    print("\nopen loop at the NeRF-driven poses: mean action (+: left) per arc-length band (s in m; n poses); "
          "'real + NeRF g': the real image with group g's pixels from the NeRF image")
    print("| image | " + " | ".join(f"[{lo:g}, {hi:g}) n={((s_arc >= lo) & (s_arc < hi)).sum()}" for lo, hi in bands) + " | mean |a - a(NeRF)| | mean |a - a(real)| |")
    print("|---" * (len(bands) + 3) + "|")
    summary["open_loop"] = {}
    for k, a in acts.items():
        per = [float(a[(s_arc >= lo) & (s_arc < hi)].mean()) for lo, hi in bands]
        to_n, to_r = float(np.abs(a - acts["NeRF"]).mean()), float(np.abs(a - acts["real"]).mean())
        summary["open_loop"][k] = {"bands": per, "to_nerf": to_n, "to_real": to_r}
        print(f"| {k} | " + " | ".join(f"{v:+.3f}" for v in per) + f" | {to_n:.3f} | {to_r:.3f} |")

    # 4. closed loop
    if args.closed_loop:
        seed, n = R.seed, R.n_episodes
        real_w = lambda: RealWorld(course, env_cfg, "day", cam, seed=seed + 7)  # noqa: E731
        nerf_w = lambda: NeRFWorld(R.model, R.mesh_map, env_cfg, R.app["day"], cam, R.n_samples)  # noqa: E731
        worlds = {"real": real_w, "real, NeRF colours": lambda: Transformed(real_w(), lambda x: apply_colour(x, coef)),
                  "real, blurred": lambda: Transformed(real_w(), lambda x: gaussian_blur(x, sigma)),
                  "real, NeRF colours + blur": lambda: Transformed(real_w(), lambda x: gaussian_blur(apply_colour(x, coef), sigma))}
        for g in args.closed_loop.split(","):
            worlds[f"real + NeRF {g}"] = lambda g=g: Composite(real_w(), nerf_w(), rw, cam, g, course)
            worlds[f"NeRF + real {g}"] = lambda g=g: Composite(nerf_w(), real_w(), rw, cam, g, course)
        print(f"\nclosed loop, exact boxes, {n} episodes from evaluate()'s starts (day): success rate; episode ends")
        from nerf_world_diagnose import box_names, episode_causes
        names = box_names(course)
        summary["closed_loop"] = {}
        for k, make in worlds.items():
            res = evaluate(BatchDrive(course, make(), env_cfg, n), lambda o, s: pol.act(o), n, seed=seed + 123, record=True)
            u, c = np.unique(episode_causes(res, course, names, None), return_counts=True)
            ends = sorted(zip(u.tolist(), c.tolist()), key=lambda z: -z[1])
            summary["closed_loop"][k] = {"success": res["success"], "ends": ends}
            print(f"  {k}: {res['success']:.3f}; " + "; ".join(f"{e} x{c}" for e, c in ends[:4]) + (" ..." if len(ends) > 4 else ""))
    out = run / "diagnose" / f"obs_divergence_{file_tag(args.policy)}.json"
    out.write_text(json.dumps(summary, indent=1, default=str))
    print(f"-> {out}")

    if args.figure:  # the first failed NeRF episode near where it leaves: NeRF, real, |difference|, labels
        from driveenv_nerf import plots
        bad = [r for r in div if r["end_nerf"] not in ("success", "timeout")]
        if bad:
            e = bad[0]["episode"]
            k = np.flatnonzero(ep_of == e)
            k = k[max(0, len(k) - 8):]
            lab_rgb = np.array(plt_colours())[lab[k]]
            plots.plot_image_grid(args.figure, [list(nerf[k]), list(real[k]), list(np.repeat(diff[k, ..., None], 3, -1) * 2), list(lab_rgb)],
                                  ["NeRF", "real", "|diff| x2", "labels"],
                                  f"{args.policy}, NeRF episode {e}: its last {len(k)} poses, s = {s_arc[k[0]]:.1f}-{s_arc[k[-1]]:.1f} m")
            print(f"-> {args.figure}")


def plt_colours():
    """One RGB colour per PIXEL_LABELS entry, for the label row of the figure."""
    return [(0.6, 0.8, 1.0), (0.2, 0.6, 0.2), (0.35, 0.35, 0.35), (1.0, 1.0, 1.0), (1.0, 0.85, 0.0), (0.8, 0.8, 1.0),
            (0.6, 0.3, 0.2), (1.0, 0.45, 0.0), (0.0, 0.0, 0.0)]


if __name__ == "__main__":
    main()
