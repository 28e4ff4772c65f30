"""Per-seed statistics of the two official quick SMAX 3m commands (README, section 2, "Seeds 10 and 11 of both
commands" onwards): the N = 1 command `python train.py --phases micro --seeds <s> --progress false` (VDN, QMIX,
DDN1, DMIX1) and the N = 8 command (the same with --n_quantiles "ddn=8,diql=1,dmix=8,dplex=8": VDN, QMIX, DDN8,
DMIX8). The commands differ only in DDN's N = N' (1 or 8; DMIX has N = 8 in both, DMIX1 / DMIX8 name the command
whose SMAX stream it ran on, after that command's DDN). Both run the same VDN and QMIX jobs on a seed, so the DDN rows
pair per seed.

The per-seed curves (win rate at 10k / 20k / ... / 60k steps, k of 32 test episodes written with two decimals) are
in benchmarks/results/smax3m_seed_curves.csv; its `source` column says where each row comes from: the README's
per-seed curves (seeds 0-9, whose run dirs are gone with the earlier machine) or a run dir under runs/. A row whose run
dir is present is read from that run's metrics.csv instead (and must equal the committed row).

python benchmarks/seed_stats.py [--seeds 0-12] [--curves] [--wilcoxon]
python benchmarks/seed_stats.py --add runs/<N = 1 run> runs/<N = 8 run>   # append one seed of both commands to the CSV

Statistics (as the README writes them): per algorithm, mean +- std (ddof 0) and median of the final (60k) win rate,
the sum of the final k, the best, and the mean of the 40k / 50k / 60k tests; per pair a - b and metric, the mean
difference (sd, ddof 1), seeds above / below / equal, the two-sided exact sign test on the non-tied seeds (binomial,
p = 1/2) and the two-sided paired t-test (scipy.stats.ttest_rel); with --wilcoxon also the Wilcoxon signed-rank test
(scipy.stats.wilcoxon, its default method).
"""
import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "benchmarks" / "results" / "smax3m_seed_curves.csv"
TESTS = ["w10k", "w20k", "w30k", "w40k", "w50k", "w60k"]
ALGS = ["VDN", "QMIX", "DDN1", "DDN8", "DMIX1", "DMIX8"]
PAIRS = [("DDN8", "DDN1"), ("DDN1", "VDN"), ("DDN1", "QMIX"), ("DMIX1", "QMIX")]
EPISODES = 32


def sign_test(up: int, down: int, alternative: str = "two-sided") -> float:
    """Exact binomial sign test (p = 1/2) on `up` positive and `down` negative differences (ties dropped).
    'greater': P(X >= up); 'two-sided': min(1, 2 P(X <= min(up, down)))."""
    n = up + down
    if n == 0:
        return float("nan")
    def tail(k):  # P(X >= k), X ~ Bin(n, 1/2)
        return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
    if alternative == "greater":
        return tail(up)
    if alternative != "two-sided":
        raise ValueError(alternative)
    return min(1.0, 2 * tail(max(up, down)))


def paired_t(a, b) -> float:
    from scipy.stats import ttest_rel
    return float(ttest_rel(a, b).pvalue)


def wilcoxon(a, b) -> float:
    from scipy.stats import wilcoxon as w
    return float(w(a, b).pvalue) if np.any(np.asarray(a) != np.asarray(b)) else float("nan")


def metrics(k):
    """k: the six test win counts (of 32). Returns final, 40k-60k mean and best, in units of k (exact for ties)."""
    return {"final": k[-1], "mid": sum(k[-3:]) / 3, "best": max(k)}


def pair_stats(xa, xb, with_wilcoxon=False):
    """xa, xb: per-seed values (k units). Returns the README's pair statistics on win rates (k / 32)."""
    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    d = xa - xb
    up, down = int((d > 1e-9).sum()), int((d < -1e-9).sum())
    return dict(mean=d.mean() / EPISODES, sd=d.std(ddof=1) / EPISODES, up=up, down=down, eq=len(d) - up - down,
                sign_p=sign_test(up, down), t_p=paired_t(xa / EPISODES, xb / EPISODES),
                wilcoxon_p=wilcoxon(xa / EPISODES, xb / EPISODES) if with_wilcoxon else None)


def to_k(rate: str) -> int:
    k = round(float(rate) * EPISODES)
    assert f"{k / EPISODES:.2f}" == f"{float(rate):.2f}", rate  # each two-decimal rate is one k / 32
    return k


def run_curves(run_dir: Path):
    """{alg key: (seed, [k at 10k..60k])} from one run's metrics.csv (the test at t_env 0 is dropped)."""
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    nq = dict(x.split("=") for x in json.load(open(run_dir / "config.json"))["n_quantiles"].split(","))
    n8 = nq["ddn"] == "8"
    out = {}
    for alg in ("vdn", "qmix", "ddn", "dmix"):
        rr = [r for r in rows if r["alg"] == alg]
        assert int(rr[0]["t_env"]) == 0 and len(rr) == 7, (run_dir, alg)
        ks = [float(r["test_win_rate"]) * EPISODES for r in rr[1:]]
        assert all(abs(x - round(x)) < 1e-6 for x in ks), (run_dir, alg)
        key = alg.upper() + ("" if alg in ("vdn", "qmix") else ("8" if n8 else "1"))
        out[key] = (int(rr[0]["seed"]), [round(x) for x in ks])
    return out


def load(csv_path=CSV):
    """{(alg, seed): (k list, source)}; rows whose run dir exists are read from it (and checked against the CSV)."""
    data = {}
    for r in csv.DictReader(open(csv_path)):
        k, src = [to_k(r[t]) for t in TESTS], r["source"]
        if src.startswith("runs/") and (ROOT / src / "metrics.csv").exists():
            seed, kr = run_curves(ROOT / src)[r["alg"]]
            assert seed == int(r["seed"]) and kr == k, f"{src} {r['alg']}: metrics.csv {kr} != CSV {k}"
            src += "/metrics.csv (read)"
        elif src.startswith("runs/"):
            src += " (run dir absent: committed CSV row)"
        data[(r["alg"], int(r["seed"]))] = (k, src)
    return data


def add(n1_dir: Path, n8_dir: Path, csv_path=CSV):
    a, b = run_curves(n1_dir), run_curves(n8_dir)
    assert "DDN1" in a and "DDN8" in b, "first the N = 1 run, then the N = 8 run"
    for key in ("VDN", "QMIX"):
        assert a[key] == b[key], f"{key} differs between the two commands: the DDN rows would not pair"
    seed = a["VDN"][0]
    assert all(s == seed for s, _ in list(a.values()) + list(b.values()))
    with open(csv_path, "a", newline="") as f:
        w = csv.writer(f)
        for key, run in [("VDN", n1_dir), ("QMIX", n1_dir), ("DDN1", n1_dir), ("DMIX1", n1_dir), ("DDN8", n8_dir), ("DMIX8", n8_dir)]:
            k = (a if run == n1_dir else b)[key][1]
            w.writerow([seed, key, os.path.relpath(run.resolve(), ROOT)] + [f"{x / EPISODES:.2f}" for x in k])
    print(f"seed {seed} of both commands appended to {csv_path}")


def parse_seeds(s):
    lo, _, hi = s.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default=None, help="a range, e.g. 0-11 (default: every seed with all six rows)")
    p.add_argument("--curves", action="store_true", help="also print each seed's curves")
    p.add_argument("--wilcoxon", action="store_true",
                   help="also the Wilcoxon signed-rank p (slow: with ties scipy runs a permutation test, ~5 s a test)")
    p.add_argument("--add", nargs=2, metavar=("N1_RUN", "N8_RUN"), help="append one seed of both commands to the CSV")
    p.add_argument("--csv", default=str(CSV))
    args = p.parse_args(argv)
    if args.add:
        add(Path(args.add[0]), Path(args.add[1]), Path(args.csv))
        return
    data = load(Path(args.csv))
    all_seeds = sorted({s for (_, s) in data if all((a, s) in data for a in ALGS)})
    seeds = parse_seeds(args.seeds) if args.seeds else all_seeds
    missing = [(a, s) for s in seeds for a in ALGS if (a, s) not in data]
    if missing:
        sys.exit(f"no curve for {missing}")
    print(f"seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}), win rate = k / {EPISODES}; sources:")
    for s in seeds:
        srcs = sorted({data[(a, s)][1] for a in ALGS})
        print(f"  seed {s}: " + "; ".join(srcs))
    if args.curves:
        for s in seeds:
            print(f"  seed {s}: " + " | ".join(f"{a} " + " ".join(f"{x / EPISODES:.2f}" for x in data[(a, s)][0]) for a in ALGS))
    print("\nalg: final mean +- std (median), sum of final k / episodes; best mean +- std; 40k-60k mean +- std (std ddof 0)")
    for a in ALGS:
        m = {k: np.array([metrics(data[(a, s)][0])[k] for s in seeds]) / EPISODES for k in ("final", "best", "mid")}
        fk = sum(data[(a, s)][0][-1] for s in seeds)
        print(f"  {a:5s} final {m['final'].mean():.3f} +- {m['final'].std():.3f} ({np.median(m['final']):.3f}), "
              f"{fk} / {EPISODES * len(seeds)}; best {m['best'].mean():.3f} +- {m['best'].std():.3f}; "
              f"40k-60k {m['mid'].mean():.3f} +- {m['mid'].std():.3f}")
    print("\npair a - b, metric: mean difference (sd, ddof 1), above / below / equal, two-sided sign test p, "
          "two-sided paired t p" + (", Wilcoxon p" if args.wilcoxon else ""))
    for a, b in PAIRS:
        print(f"  {a} - {b}; final difference per seed: "
              + " ".join(f"{s}:{(data[(a, s)][0][-1] - data[(b, s)][0][-1]) / EPISODES:+.2f}" for s in seeds))
        for m in ("final", "mid", "best"):
            r = pair_stats([metrics(data[(a, s)][0])[m] for s in seeds], [metrics(data[(b, s)][0])[m] for s in seeds],
                           args.wilcoxon)
            name = {"mid": "40k-60k"}.get(m, m)
            print(f"    {name:7s} {r['mean']:+.3f} ({r['sd']:.3f}), {r['up']} / {r['down']} / {r['eq']}, "
                  f"sign {r['sign_p']:.4f}, t {r['t_p']:.4f}"
                  + (f", wilcoxon {r['wilcoxon_p']:.4f}" if args.wilcoxon else ""))


if __name__ == "__main__":
    main()
