"""benchmarks/seed_stats.py: the statistics of the README's per-seed tables on hand-checkable inputs, and the
committed per-seed curves."""
import csv
import importlib.util
import json
import math

import pytest
from scipy.stats import binomtest, ttest_rel

from conftest import ROOT

spec = importlib.util.spec_from_file_location("seed_stats", ROOT / "benchmarks" / "seed_stats.py")
S = importlib.util.module_from_spec(spec)
spec.loader.exec_module(S)


def test_sign_test_exact_binomial():
    # 11 of 13 above: P(X >= 11) = (C(13,11) + C(13,12) + C(13,13)) / 2^13 = (78 + 13 + 1) / 8192
    assert S.sign_test(11, 2, "greater") == 92 / 8192  # 0.01123
    assert S.sign_test(11, 2) == 184 / 8192  # two-sided 0.02246: the README's 0.022
    assert S.sign_test(2, 11) == 184 / 8192
    assert S.sign_test(5, 5) == 1.0 and S.sign_test(1, 0) == 1.0
    assert math.isnan(S.sign_test(0, 0))
    for n in range(1, 16):
        for up in range(n + 1):
            assert S.sign_test(up, n - up) == pytest.approx(binomtest(up, n, 0.5).pvalue, abs=1e-12)
            assert S.sign_test(up, n - up, "greater") == pytest.approx(
                binomtest(up, n, 0.5, alternative="greater").pvalue, abs=1e-12)


def test_paired_t_closed_form():
    # differences 1, 2, 3: t = 2 / (1 / sqrt 3) = sqrt 12 with 2 df, two-sided p = 1 - t / sqrt(t^2 + 2)
    assert S.paired_t([1, 2, 3], [0, 0, 0]) == pytest.approx(1 - math.sqrt(12) / math.sqrt(14), rel=1e-12)


def test_metrics_and_pair_stats():
    assert S.metrics([0, 10, 20, 12, 15, 3]) == {"final": 3, "mid": 10, "best": 20}
    r = S.pair_stats([32, 16, 8], [0, 16, 0])  # k units: differences 1, 0, 0.25 in win rate
    assert (r["up"], r["down"], r["eq"]) == (2, 0, 1)
    assert r["mean"] == pytest.approx(1.25 / 3) and r["sign_p"] == 0.5
    assert r["sd"] == pytest.approx(math.sqrt(((1 - 1.25 / 3) ** 2 + (1.25 / 3) ** 2 + (0.25 - 1.25 / 3) ** 2) / 2))
    assert r["t_p"] == pytest.approx(ttest_rel([1, 0.5, 0.25], [0, 0.5, 0]).pvalue)
    assert S.to_k("0.41") == 13 and S.to_k("0.00") == 0 and S.to_k("1.00") == 32
    with pytest.raises(AssertionError):
        S.to_k("0.40")  # no k / 32 rounds to 0.40


def test_committed_curves_give_the_readme_thirteen_seed_pair():
    data = S.load()
    seeds = range(13)
    assert all((a, s) in data for a in S.ALGS for s in seeds)
    final = {a: [data[(a, s)][0][-1] for s in seeds] for a in S.ALGS}
    assert sum(final["DDN1"]) == 88 and sum(final["DDN8"]) == 174
    r = S.pair_stats(final["DDN8"], final["DDN1"])
    assert (r["up"], r["down"], r["eq"]) == (11, 2, 0) and r["sign_p"] == 184 / 8192


def _fake_run(d, seed, ddn_n, curves):
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"n_quantiles": f"ddn={ddn_n},diql=1,dmix=8,dplex=8"}))
    with open(d / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "alg", "seed", "t_env", "test_win_rate"])
        for alg, ks in curves.items():
            for i, k in enumerate([0] + ks):
                w.writerow(["micro", alg, seed, i * 10000, k / 32])


def test_add_appends_one_seed_and_refuses_unpaired_runs(tmp_path):
    c = {"vdn": [1, 2, 3, 4, 5, 6], "qmix": [6, 5, 4, 3, 2, 1], "ddn": [0, 0, 0, 0, 0, 32], "dmix": [8] * 6}
    _fake_run(tmp_path / "n1", 13, 1, c)
    _fake_run(tmp_path / "n8", 13, 8, dict(c, ddn=[16] * 6))
    _fake_run(tmp_path / "bad", 13, 8, dict(c, vdn=[0] * 6))
    out = tmp_path / "curves.csv"
    out.write_text("seed,alg,source,w10k,w20k,w30k,w40k,w50k,w60k\n")
    S.add(tmp_path / "n1", tmp_path / "n8", out)
    data = S.load(out)
    assert data[("DDN1", 13)][0] == [0, 0, 0, 0, 0, 32] and data[("DDN8", 13)][0] == [16] * 6
    assert data[("VDN", 13)][0] == [1, 2, 3, 4, 5, 6] and len(data) == 6
    with pytest.raises(AssertionError):
        S.add(tmp_path / "n1", tmp_path / "bad", out)
