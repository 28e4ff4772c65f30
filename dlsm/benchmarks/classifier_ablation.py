"""Classifier ablations on a finished image run: longer training and DLSM + CE variants, held out.

    python benchmarks/classifier_ablation.py --run-dir runs/digits-<time> --variants ce total --steps 400 800 1200
    python benchmarks/classifier_ablation.py --run-dir runs/digits-<time> --variants total:coef=10 total:w=1 --steps 400

A variant is `loss[:field=value,...]`, loss one of ce / dlsm / total (DLSM + coef * CE), field one of
w (weighting_dlsm), coef, clip (grad_clip); unset fields keep the run's config. Every variant is
trained with train.py's own loop (train_phase) from the run's shared initialisation, with train.py's
key and minibatch stream for its loss, so variants of one loss see the same data and noise as the
run's classifier and differ only in the objective. The run's score model is loaded, not retrained.
A variant without overrides whose checkpoint the run holds continues that checkpoint (the run's
own classifier at its clf_steps, with its Adam state) instead of being retrained. Each variant
trains in <run-dir>/ablation/<variant>/ (checkpoints, metrics.csv; a second call continues there)
and is evaluated at every step of --steps, on the held-out test split:

  acc, NLL, sigma*|g|   per sigma, on the same x~ as benchmarks/classifier_per_sigma.py (its seed)
  held-out DLSM loss    train.py's (posterior-score error up to a classifier-independent constant),
                        and its reduction against the score model alone (x1e3, positive = better)

Writes the per-sigma values to <run-dir>/ablation/ablation_per_sigma.csv (rows appended per call).

With --sample it also makes train.py's image table for the variants (train.py's own sampling and metric
functions): one guidance row per variant and step at weight 1, and for a ce variant also the scaling row
(weight: the run's scaling_factor); --guidance 1,3,10 instead draws every variant at each of those weights
(rows "<variant> @<step>" at weight 1, "<variant> x<weight> @<step>" otherwise; every row with the same sampler
noise, so a weight curve is paired); held-out DLSM loss, guided samples of every class drawn with the run's
sample key (the same noise as the run's own rows), CW precision / recall / density / coverage, CW-FD in the
run's feature net's space, CAS. --samples-per-class, --sample-steps, --eval-feature-steps and --cas-steps
override the run's values (a run made for the per-sigma diagnostics has token ones). Writes
<run-dir>/ablation/samples/: results.json, results.md, heldout_dlsm.csv, metrics.csv (per class), samples.npz / .png.

    python benchmarks/classifier_ablation.py --run-dir runs/digits-<time> --variants ce total total:w=1 --steps 1200 \
        --sample --samples-per-class 100 --sample-steps 40 --eval-feature-steps 400 --cas-steps 400
    python benchmarks/classifier_ablation.py --run-dir runs/digits-<time> --variants ce total:w=1 --steps 400 \
        --sample --guidance 3,10 ...   # a guidance-weight curve
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import sys
import time

for _p in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.dirname(os.path.abspath(__file__))):
    sys.path.insert(0, _p)  # the project (train, dlsm) and this folder (classifier_per_sigma)

import numpy as np

import train
from classifier_per_sigma import heldout_per_sigma, load_run
from dlsm import steps
from dlsm.losses import LOSS_TYPES
from dlsm.sde import VESDE

FIELDS = {"w": "weighting_dlsm", "coef": "coef", "clip": "grad_clip"}
BAND = (0.1, 2.0)  # "where the class is chosen": the grid's sigma 0.12-1.5 of the digits runs


def parse_variant(spec: str):
    """'total:coef=10,w=1' -> ('total', {'coef': 10.0, 'weighting_dlsm': 1.0})."""
    loss, _, rest = spec.partition(":")
    if loss not in LOSS_TYPES:
        raise ValueError(f"variant {spec!r}: loss must be one of {', '.join(LOSS_TYPES)}")
    over = {}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if k not in FIELDS or not eq:
            raise ValueError(f"variant {spec!r}: {item!r} is not field=value with field one of {', '.join(FIELDS)}")
        over[FIELDS[k]] = float(v)
    return loss, over


def train_variant(spec, cfg, run_dir, x, y, score_model, sp, clf, c0, sde, milestones):
    """{step: params} of one variant at each milestone (train.py's train_phase, continued between them)."""
    loss, over = parse_variant(spec)
    vcfg = dataclasses.replace(cfg, **over)
    work = os.path.join(run_dir, "ablation", spec.replace(":", "_").replace(",", "_").replace("=", ""))
    os.makedirs(work, exist_ok=True)
    name = f"clf_{loss}"  # train.py's phase name: its minibatch stream
    own = os.path.join(run_dir, f"ckpt_{name}.msgpack")
    ckpt = os.path.join(work, f"ckpt_{name}.msgpack")
    if not over and os.path.exists(own) and not os.path.exists(ckpt):
        if min(milestones) < cfg.clf_steps:
            raise ValueError(f"{spec}: continues the run's classifier at step {cfg.clf_steps}; --steps must not be smaller")
        shutil.copy(own, ckpt)
    opt, step_fn, key = train.classifier_trainer(vcfg, clf, score_model, sde, loss, train.run_keys(cfg.seed).train)
    logger = train.Logger(work)
    out = {}
    for n in sorted(milestones):
        out[n], _ = train.train_phase(name, vcfg, work, logger, c0, opt, step_fn, n, vcfg.clf_batch, x, y, key, None, extra=(sp,))
        done = int(steps.load_checkpoint(ckpt, dict(params=c0, opt_state=opt.init(c0), step=0, key=key))["step"])
        if done != n:
            raise ValueError(f"{spec}: {work} already holds step {done}, past the milestone {n}")
    logger.close()
    return out


def evaluate(run_dir: str, variants, milestones, noise_draws: int = 8, seed: int = 1234, sample=None, guidance=None):
    """(rows: dict(variant, step, acc, nll, g_rms (per sigma), heldout, reduction); sigma grid; held-out DLSM loss of
    the score model alone; the sample table (sample_table) when sample is a dict of Config overrides, else None).
    guidance: the weights each variant is sampled at (None: 1, and the run's scaling_factor for ce; sample_rows)."""
    cfg, (x, y, xt, yt), score_model, sp, clf, _, c0 = load_run(run_dir)
    sde = VESDE(cfg.sigma_min, cfg.sigma_max)
    score_fn = lambda a, s: score_model.apply(sp, a, s)
    heldout_grid, heldout = train.heldout_dlsm(cfg, score_fn, clf.apply, xt, yt)
    reference = heldout(c0, 0.0)  # the score model alone: (mean, per-sigma)
    ref = reference[0]
    rows, trained = [], {}
    for spec in variants:
        for n, params in train_variant(spec, cfg, run_dir, x, y, score_model, sp, clf, c0, sde, milestones).items():
            per, _, sig = heldout_per_sigma(cfg, clf, {spec: params}, score_model, sp, xt, yt, noise_draws, seed, score_rms=False)
            h = heldout(params, 1.0)[0]
            rows.append(dict(variant=spec, step=n, **per[spec], heldout=h, reduction=1e3 * (ref - h)))
            trained[f"{spec} @{n}"] = params
    table = None
    if sample is not None:
        table = sample_table(dataclasses.replace(cfg, **sample), trained, (x, y, xt, yt), score_fn, clf, sde, heldout_grid, heldout,
                             reference, os.path.join(run_dir, "ablation", "samples"), guidance)
    return rows, sig, ref, table


def sample_rows(labels, scaling_factor: float, guidance=None):
    """train.py's guidance rows (name, classifier label, weight) for classifier labels "<variant> @<step>": with
    guidance None, weight 1 for each and also scaling_factor for a ce variant; else each label at every weight
    in guidance. Weight 1 keeps the label as its name, another weight w is named "<variant> x<w> @<step>"."""
    rows = []
    for label in labels:
        spec, _, n = label.partition(" @")
        weights = guidance if guidance is not None else [1.0] + ([scaling_factor] if parse_variant(spec)[0] == "ce" else [])
        rows += [(label if w == 1 else f"{spec} x{w:g} @{n}", label, float(w)) for w in weights]
    return rows


def sample_table(cfg, trained, data, score_fn, clf, sde, heldout_grid, heldout, reference, out_dir, guidance=None):
    """train.py's image results for the trained classifiers {label: params}, one row per sample_rows entry;
    train.py's heldout_table against reference (the score model alone), guided_samples (the run's sample key)
    and classwise_metrics (its eval key)."""
    x, y, xt, yt = data
    keys = train.run_keys(cfg.seed)
    logits = {label: (lambda p: (lambda a, s: clf.apply(p, a, s)))(p) for label, p in trained.items()}
    rows = sample_rows(trained, cfg.scaling_factor, guidance)
    os.makedirs(out_dir, exist_ok=True)
    results = {"_heldout DLSM loss, score model alone (g = 0)": reference[0]}
    results.update(train.heldout_table(os.path.join(out_dir, "heldout_dlsm.csv"), heldout_grid, heldout, rows,
                                       trained.__getitem__, reference))
    samples = train.guided_samples(cfg, rows, score_fn, logits, sde, x, y, keys.sample)
    logger = train.Logger(out_dir)
    cw, results["_feature_net_test_acc"] = train.classwise_metrics(cfg, samples, x, y, xt, yt, keys.eval, logger)
    logger.close()
    for name, vals in cw.items():
        results[name].update(vals)
    train.save_samples(os.path.join(out_dir, "samples.npz"), samples)
    train.plot_image_samples(samples, os.path.join(out_dir, "samples.png"))
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a finished train.py image run (digits, fashion_mnist, ...)")
    ap.add_argument("--variants", nargs="+", default=["ce", "total"])
    ap.add_argument("--steps", nargs="+", type=int, default=None, help="milestones (default: the run's clf_steps)")
    ap.add_argument("--noise-draws", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234, help="noise of the per-sigma evaluation (classifier_per_sigma's)")
    ap.add_argument("--sample", action="store_true", help="also sample every class with each variant: train.py's table")
    for flag in ("samples-per-class", "sample-steps", "eval-feature-steps", "cas-steps"):
        ap.add_argument(f"--{flag}", type=int, default=None, help="with --sample: override the run's value")
    ap.add_argument("--guidance", type=lambda v: [float(w) for w in v.split(",")], default=None, metavar="W[,W...]",
                    help="with --sample: sample every variant at these guidance weights, e.g. 1,3,10 (default: 1, and "
                         "the run's scaling_factor for ce)")
    args = ap.parse_args()
    if args.guidance is not None and not args.sample:
        ap.error("--guidance needs --sample")
    sample = None
    if args.sample:
        sample = {k: getattr(args, k) for k in ("samples_per_class", "sample_steps", "eval_feature_steps", "cas_steps")
                  if getattr(args, k) is not None}
    t0 = time.time()
    milestones = args.steps or [train.load_run_config(args.run_dir).clf_steps]
    rows, sig, ref, table = evaluate(args.run_dir, args.variants, milestones, args.noise_draws, args.seed, sample, args.guidance)
    band = (sig > BAND[0]) & (sig < BAND[1])
    print(f"run {args.run_dir}: test split, {len(sig)} sigma in [{sig[0]:.3g}, {sig[-1]:.3g}], {args.noise_draws} noise draws; "
          f"held-out DLSM loss of the score model alone {ref:.4g}\n")
    head = ["variant", "steps", "acc (mean over sigma)", f"acc (sigma {sig[band][0]:.2g}-{sig[band][-1]:.2g})",
            "NLL (mean)", "sigma*|g| (mean)", "held-out DLSM loss", "its reduction vs g = 0 (x1e3)"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for r in rows:
        vals = [np.mean(r["acc"]), np.mean(np.array(r["acc"])[band]), np.mean(r["nll"]), np.mean(r["g_rms"]), r["heldout"], r["reduction"]]
        print(f"| {r['variant']} | {r['step']} | " + " | ".join(f"{v:.4g}" for v in vals) + " |")
    path = os.path.join(args.run_dir, "ablation", "ablation_per_sigma.csv")
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["variant", "steps", "sigma", "acc", "nll", "sigma_g_rms"])
        for r in rows:
            for i, sg in enumerate(sig):
                w.writerow([r["variant"], r["step"], f"{sg:.5g}", f"{r['acc'][i]:.6g}", f"{r['nll'][i]:.6g}", f"{r['g_rms'][i]:.6g}"])
    print(f"\nper-sigma values: {path}")
    if table is not None:
        cfg = dataclasses.replace(train.load_run_config(args.run_dir), **sample)
        text = train.format_table(table, cfg, time.time() - t0)
        print("\n" + text)
        with open(os.path.join(args.run_dir, "ablation", "samples", "results.md"), "w") as f:
            f.write(text + "\n")
    print(f"{time.time() - t0:.0f} s wall")


if __name__ == "__main__":
    main()
