#!/usr/bin/env python3
"""Generate reference fixtures for crates/gantry-stats from scipy, statsmodels and gbstats 0.8.0.

Usage: fixtures.py OUT_DIR [--bench-timing]

Every case is generated from a seeded numpy RNG, so the output is deterministic for the pinned
versions in requirements.txt. Inputs are written as sufficient statistics (or raw unit values
where the reference needs them); outputs are the reference package's numbers.
"""

import json
import math
import os
import sys
import time

import numpy as np
import scipy.stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

RNG = np.random.default_rng(20240606)


def f(x):
    """Plain float (numpy scalars are not JSON serialisable)."""
    return float(x)


def sums(y):
    y = np.asarray(y, dtype=float)
    return {"n": int(len(y)), "sum": f(y.sum()), "sum_sq": f((y * y).sum())}


def draw_values(kind, n):
    if kind == "proportion":
        p = RNG.uniform(0.02, 0.6)
        return RNG.binomial(1, p, n).astype(float)
    if kind == "count":
        return RNG.poisson(RNG.uniform(0.5, 5.0), n).astype(float)
    if kind == "revenue":
        return np.round(RNG.lognormal(RNG.uniform(0, 2), RNG.uniform(0.3, 1.2), n) * RNG.binomial(1, 0.4, n), 2)
    return RNG.normal(RNG.uniform(-5, 20), RNG.uniform(0.5, 8), n)


def stat_of(kind, s):
    if kind == "proportion":
        return ProportionStatistic(n=s["n"], sum=s["sum"])
    return SampleMeanStatistic(n=s["n"], sum=s["sum"], sum_squares=s["sum_sq"])


def freq_out(res):
    return {
        "estimate": f(res.expected),
        "ci": [f(res.ci[0]), f(res.ci[1])],
        "p_value": f(res.p_value),
        "std_error": f(res.uplift.stddev),
        "error": res.error_message,
    }


def bayes_out(res):
    return {
        "expected": f(res.expected),
        "std_dev": f(res.uplift.stddev),
        "ci": [f(res.ci[0]), f(res.ci[1])],
        "chance_to_win": f(res.chance_to_win),
        "risk": [f(res.risk[0]), f(res.risk[1])],
        "error": res.error_message,
    }


def arm_pair_cases(count):
    """Random control/treatment sufficient statistics of several kinds and sizes."""
    kinds = ["proportion", "normal", "count", "revenue"]
    cases = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        nc, nt = (int(x) for x in RNG.integers(30, 20000, 2))
        c = draw_values(kind, nc)
        t = draw_values(kind, nt) if RNG.random() < 0.3 else c[RNG.integers(0, nc, nt)] * RNG.uniform(0.9, 1.15)
        if kind == "proportion":
            t = (RNG.random(nt) < min(0.95, c.mean() * RNG.uniform(0.85, 1.2))).astype(float)
        cases.append({"kind": kind, "control": sums(c), "treatment": sums(t)})
    # Worked examples E1 (binomial) and E2 (continuous) of the reference notes.
    cases.append({"kind": "proportion", "control": {"n": 10000, "sum": 1000.0, "sum_sq": 1000.0},
                  "treatment": {"n": 10000, "sum": 1100.0, "sum_sq": 1100.0}})
    cases.append({"kind": "normal", "control": {"n": 1000, "sum": 5000.0, "sum_sq": 35000.0},
                  "treatment": {"n": 1000, "sum": 5300.0, "sum_sq": 38500.0}})
    return cases


def gen_dist():
    xs = [-8.0, -3.5, -1.96, -0.3, 0.0, 0.7, 1.644853627, 2.5, 5.0, 9.0]
    ps = [1e-12, 1e-6, 0.001, 0.025, 0.05, 0.2, 0.5, 0.8, 0.975, 0.999]
    dofs = [1.0, 2.5, 7.0, 30.0, 123.4, 1999.7, 19962.7, 250000.0, 3.0e6]
    out = {"normal_cdf": [], "normal_quantile": [], "t_sf": [], "t_upper_quantile": [], "chi2_sf": []}
    for x in xs:
        out["normal_cdf"].append({"x": x, "value": f(st.norm.cdf(x))})
    for p in ps:
        out["normal_quantile"].append({"p": p, "value": f(st.norm.ppf(p))})
    for d in dofs:
        for x in [0.1, 1.0, 1.96, 2.5, 4.0, 7.5]:
            out["t_sf"].append({"x": x, "dof": d, "value": f(st.t.sf(x, d))})
        for q in [0.4, 0.1, 0.05, 0.025, 0.005, 1e-4]:
            out["t_upper_quantile"].append({"q": q, "dof": d, "value": f(st.t.isf(q, d))})
    for d in [1.0, 2.0, 3.0, 5.0, 10.0, 50.0]:
        for x in [0.01, 0.5, 1.0, 3.84, 7.9, 15.0, 40.0, 100.0]:
            out["chi2_sf"].append({"x": x, "dof": d, "value": f(st.chi2.sf(x, d))})
    return out


def gen_welch_raw():
    """scipy.stats.ttest_ind(equal_var=False) and statsmodels unpooled z test on raw unit values."""
    cases = []
    for i in range(12):
        kind = ["normal", "count", "revenue", "proportion"][i % 4]
        nt, nc = (int(x) for x in RNG.integers(20, 400, 2))
        t = draw_values(kind, nt)
        c = draw_values(kind, nc) + (0.0 if kind == "proportion" else RNG.normal(0, 0.5))
        if kind == "proportion":
            c = (RNG.random(nc) < 0.3).astype(float)
            t = (RNG.random(nt) < 0.35).astype(float)
        r = st.ttest_ind(t, c, equal_var=False)
        ci = r.confidence_interval(0.95)
        cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
        z, zp = cm.ztest_ind(usevar="unequal")
        zlo, zhi = cm.zconfint_diff(alpha=0.05, usevar="unequal")
        cases.append({
            "control": [f(v) for v in c],
            "treatment": [f(v) for v in t],
            "t_statistic": f(r.statistic), "t_p_value": f(r.pvalue), "dof": f(r.df),
            "t_ci": [f(ci.low), f(ci.high)],
            "z_statistic": f(z), "z_p_value": f(zp), "z_ci": [f(zlo), f(zhi)],
        })
    return cases


def gen_welch_from_stats(pairs):
    cases = []
    for p in pairs:
        if p["kind"] == "proportion":
            continue
        c, t = p["control"], p["treatment"]
        mc, mt = c["sum"] / c["n"], t["sum"] / t["n"]
        vc = (c["sum_sq"] - c["sum"] ** 2 / c["n"]) / (c["n"] - 1)
        vt = (t["sum_sq"] - t["sum"] ** 2 / t["n"]) / (t["n"] - 1)
        r = st.ttest_ind_from_stats(mt, math.sqrt(vt), t["n"], mc, math.sqrt(vc), c["n"], equal_var=False)
        cases.append({"control": c, "treatment": t, "statistic": f(r.statistic), "p_value": f(r.pvalue)})
    return cases


def gen_frequentist(pairs):
    cases = []
    for p in pairs:
        for diff in ["absolute", "relative"]:
            sa, sb = stat_of(p["kind"], p["control"]), stat_of(p["kind"], p["treatment"])
            test = TwoSidedTTest(sa, sb, FrequentistConfig(difference_type=diff, alpha=0.05))
            res = test.compute_result()
            out = freq_out(res)
            out["dof"] = f(test.dof)
            cases.append({**p, "difference": diff, "alpha": 0.05, "expected": out})
    # another alpha
    p = pairs[1]
    test = TwoSidedTTest(stat_of(p["kind"], p["control"]), stat_of(p["kind"], p["treatment"]),
                         FrequentistConfig(difference_type="relative", alpha=0.1))
    cases.append({**p, "difference": "relative", "alpha": 0.1, "expected": {**freq_out(test.compute_result()), "dof": f(test.dof)}})
    return cases


def gen_sequential(pairs):
    cases = []
    for i, p in enumerate(pairs):
        tuning = [5000.0, 10000.0, 1000.0, 250000.0][i % 4]
        for diff in ["absolute", "relative"]:
            sa, sb = stat_of(p["kind"], p["control"]), stat_of(p["kind"], p["treatment"])
            res = SequentialTwoSidedTTest(
                sa, sb, SequentialConfig(difference_type=diff, alpha=0.05, sequential_tuning_parameter=tuning)
            ).compute_result()
            cases.append({**p, "difference": diff, "alpha": 0.05, "tuning": tuning, "expected": freq_out(res)})
    return cases


def gen_bayesian(pairs):
    priors = [
        {"mean": 0.0, "variance": 1.0, "proper": False},
        {"mean": 0.0, "variance": 0.09, "proper": True},
        {"mean": 0.02, "variance": 0.0025, "proper": True},
    ]
    cases = []
    for i, p in enumerate(pairs):
        prior = priors[i % len(priors)]
        inverse = i % 5 == 3
        for diff in ["absolute", "relative"]:
            sa, sb = stat_of(p["kind"], p["control"]), stat_of(p["kind"], p["treatment"])
            cfg = EffectBayesianConfig(
                difference_type=diff, inverse=inverse, alpha=0.05, prior_type="relative",
                prior_effect=GaussianPrior(mean=prior["mean"], variance=prior["variance"], proper=prior["proper"]),
            )
            res = EffectBayesianABTest(sa, sb, cfg).compute_result()
            cases.append({**p, "difference": diff, "inverse": inverse, "prior": prior, "prior_scale": "relative",
                          "expected": bayes_out(res)})
    return cases


def gen_ratio():
    cases = []
    for i in range(12):
        arms = []
        for _ in range(2):
            n = int(RNG.integers(50, 20000))
            d = RNG.poisson(RNG.uniform(1, 6), n).astype(float) + 1.0
            m = RNG.binomial(d.astype(int), RNG.uniform(0.1, 0.7)).astype(float)
            arms.append({"n": n, "sum": f(m.sum()), "sum_sq": f((m * m).sum()), "den_sum": f(d.sum()),
                         "den_sum_sq": f((d * d).sum()), "cross_den": f((m * d).sum())})
        arms_e3 = [
            {"n": 1000, "sum": 2000.0, "sum_sq": 10000.0, "den_sum": 4000.0, "den_sum_sq": 20000.0, "cross_den": 9000.0},
            {"n": 1000, "sum": 2300.0, "sum_sq": 11500.0, "den_sum": 4100.0, "den_sum_sq": 21000.0, "cross_den": 10000.0},
        ]
        if i == 0:
            arms = arms_e3

        def rs(a):
            return RatioStatistic(
                n=a["n"],
                m_statistic=SampleMeanStatistic(n=a["n"], sum=a["sum"], sum_squares=a["sum_sq"]),
                d_statistic=SampleMeanStatistic(n=a["n"], sum=a["den_sum"], sum_squares=a["den_sum_sq"]),
                m_d_sum_of_products=a["cross_den"],
            )

        out = {"control_mean": f(rs(arms[0]).mean), "control_variance": f(rs(arms[0]).variance),
               "treatment_mean": f(rs(arms[1]).mean), "treatment_variance": f(rs(arms[1]).variance)}
        for diff in ["absolute", "relative"]:
            out[diff] = freq_out(TwoSidedTTest(rs(arms[0]), rs(arms[1]), FrequentistConfig(difference_type=diff)).compute_result())
        out["bayesian_relative"] = bayes_out(EffectBayesianABTest(rs(arms[0]), rs(arms[1]), EffectBayesianConfig()).compute_result())
        cases.append({"control": arms[0], "treatment": arms[1], "expected": out})
    return cases


def gen_cuped():
    cases = []
    for i in range(12):
        binary = i % 4 == 3
        arms = []
        lift = RNG.uniform(-0.05, 0.1)
        for a in range(2):
            n = int(RNG.integers(100, 20000))
            if binary:
                x = (RNG.random(n) < 0.3).astype(float)
                y = np.where(RNG.random(n) < 0.7, x, (RNG.random(n) < 0.3 + a * lift).astype(float))
            else:
                x = RNG.gamma(2.0, 2.5, n)
                y = 0.8 * x + RNG.normal(1.0 + a * lift * 5, 2.0, n)
            arms.append({"n": n, "sum": f(y.sum()), "sum_sq": f((y * y).sum()), "pre_sum": f(x.sum()),
                         "pre_sum_sq": f((x * x).sum()), "cross_pre": f((x * y).sum())})
        if i == 0:
            arms = [
                {"n": 1000, "sum": 5000.0, "sum_sq": 35000.0, "pre_sum": 4800.0, "pre_sum_sq": 30000.0, "cross_pre": 31000.0},
                {"n": 1000, "sum": 5300.0, "sum_sq": 38500.0, "pre_sum": 4850.0, "pre_sum_sq": 30500.0, "cross_pre": 32500.0},
            ]

        def ra(a):
            if binary:
                post, pre = ProportionStatistic(n=a["n"], sum=a["sum"]), ProportionStatistic(n=a["n"], sum=a["pre_sum"])
            else:
                post = SampleMeanStatistic(n=a["n"], sum=a["sum"], sum_squares=a["sum_sq"])
                pre = SampleMeanStatistic(n=a["n"], sum=a["pre_sum"], sum_squares=a["pre_sum_sq"])
            return RegressionAdjustedStatistic(n=a["n"], post_statistic=post, pre_statistic=pre,
                                               post_pre_sum_of_products=a["cross_pre"], theta=0)

        test = TwoSidedTTest(ra(arms[0]), ra(arms[1]), FrequentistConfig(difference_type="absolute"))
        out = {
            "theta": f(getattr(test.stat_a, "theta", 0.0)),
            "control_mean": f(test.stat_a.mean), "control_variance": f(test.stat_a.variance),
            "treatment_mean": f(test.stat_b.mean), "treatment_variance": f(test.stat_b.variance),
            "absolute": freq_out(test.compute_result()),
            "relative": freq_out(TwoSidedTTest(ra(arms[0]), ra(arms[1]), FrequentistConfig(difference_type="relative")).compute_result()),
            "bayesian_relative": bayes_out(EffectBayesianABTest(ra(arms[0]), ra(arms[1]), EffectBayesianConfig()).compute_result()),
        }
        cases.append({"binary": binary, "control": arms[0], "treatment": arms[1], "expected": out})
    return cases


def gen_ztest():
    cases = []
    for _ in range(10):
        nc, nt = (int(x) for x in RNG.integers(100, 200000, 2))
        p = RNG.uniform(0.01, 0.5)
        xc = int(RNG.binomial(nc, p))
        xt = int(RNG.binomial(nt, p * RNG.uniform(0.9, 1.15)))
        z, pv = proportions_ztest([xt, xc], [nt, nc])
        cases.append({"control": [xc, nc], "treatment": [xt, nt], "statistic": f(z), "p_value": f(pv)})
    z, pv = proportions_ztest([1100, 1000], [10000, 10000])
    cases.append({"control": [1000, 10000], "treatment": [1100, 10000], "statistic": f(z), "p_value": f(pv)})
    return cases


def gen_srm():
    cases = []
    fixed = [
        ([10000, 10200], [0.5, 0.5]), ([5000, 5300], [0.5, 0.5]), ([5000, 5400], [0.5, 0.5]),
        ([3300, 3300, 3500], [1 / 3, 1 / 3, 1 / 3]), ([2000, 8150], [0.2, 0.8]), ([0, 0], [0.5, 0.5]),
        ([3300, 3310, 3390], [33.0, 33.0, 34.0]), ([5000, 0, 5100], [0.5, 0.0, 0.5]), ([51000, 49000], [50.0, 50.0]),
    ]
    for _ in range(8):
        k = int(RNG.integers(2, 6))
        w = RNG.uniform(0.5, 2.0, k)
        counts = RNG.multinomial(int(RNG.integers(100, 500000)), RNG.dirichlet(w * 200)).tolist()
        fixed.append((counts, [f(x) for x in w]))
    for counts, weights in fixed:
        total, tw = sum(counts), sum(weights)
        out = {"counts": counts, "weights": weights, "p_value": f(check_srm(counts, weights))}
        if total > 0 and all(w > 0 for w in weights):
            exp = [w / tw * total for w in weights]
            chi, p = st.chisquare(counts, exp)
            out["chi_squared"] = f(chi)
            out["scipy_p_value"] = f(p)
        cases.append(out)
    return cases


def gen_multitest():
    cases = [[0.01, 0.04, 0.03, 0.005]]
    for _ in range(10):
        m = int(RNG.integers(1, 25))
        p = RNG.beta(0.4, 1.5, m)
        if m > 3:
            p[1] = p[2]  # a tie
        cases.append([f(x) for x in p])
    out = []
    for p in cases:
        out.append({
            "p_values": p,
            "holm": [f(x) for x in multipletests(p, method="holm")[1]],
            "fdr_bh": [f(x) for x in multipletests(p, method="fdr_bh")[1]],
        })
    return out


def gb_relative_se(mean, var, n, lift):
    mt = mean * (1 + lift)
    return math.sqrt(var / n * (1 / mean**2 + mt**2 / mean**4))


def gb_power(mean, var, n, lift, alpha, tuning=None):
    """GrowthBook power-technical formulas (fixed horizon and sequential), written out in numpy."""
    se = gb_relative_se(mean, var, n, lift)
    z = st.norm.isf(alpha / 2)
    if tuning is not None:
        total = 2 * n
        rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tuning
        a = total * rho2 + 1
        half = math.sqrt(se**2 * total * 2 * a * math.log(math.sqrt(a) / alpha) / (total**2 * rho2))
        se = half / z
    shift = abs(lift) / se
    return f(st.norm.sf(z - shift) + st.norm.cdf(-z - shift))


def gb_mde(mean, var, n, alpha, power):
    k = st.norm.isf(alpha / 2) + st.norm.ppf(power)
    c = k * k * var / n
    a = 1 - c / mean**2
    mt = (mean + math.sqrt(mean**2 - a * (mean**2 - c))) / a
    return f(mt / mean - 1)


def gen_power():
    nip = NormalIndPower()
    out = {"normal": [], "relative": []}
    for p1, p2, ratio, alpha, power in [(0.10, 0.11, 1.0, 0.05, 0.8), (0.05, 0.06, 2.0, 0.05, 0.9), (0.3, 0.27, 0.5, 0.01, 0.8),
                                        (0.5, 0.52, 1.0, 0.1, 0.7)]:
        h = f(proportion_effectsize(p2, p1))
        n1 = f(nip.solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio))
        pw = f(nip.power(effect_size=h, nobs1=5000.0, alpha=alpha, ratio=ratio))
        mde = f(nip.solve_power(nobs1=5000.0, alpha=alpha, power=power, ratio=ratio))
        out["normal"].append({"p1": p2, "p2": p1, "effect_size": h, "alpha": alpha, "power": power, "ratio": ratio,
                              "n1": n1, "power_at_5000": pw, "mde_at_5000": mde,
                              "power_at_mde": f(nip.power(effect_size=mde, nobs1=5000.0, alpha=alpha, ratio=ratio))})
    d = 0.3 / math.sqrt(10.2)
    out["normal"].append({"p1": None, "p2": None, "effect_size": d, "alpha": 0.05, "power": 0.8, "ratio": 1.0,
                          "n1": f(nip.solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.0)),
                          "power_at_5000": f(nip.power(effect_size=d, nobs1=5000.0, alpha=0.05, ratio=1.0)),
                          "mde_at_5000": f(nip.solve_power(nobs1=5000.0, alpha=0.05, power=0.8, ratio=1.0)),
                          "power_at_mde": f(nip.power(effect_size=nip.solve_power(nobs1=5000.0, alpha=0.05, power=0.8, ratio=1.0),
                                                      nobs1=5000.0, alpha=0.05, ratio=1.0))})
    for mean, var, n, lift in [(0.1, 0.09, 10000.0, 0.1), (5.0, 10.0, 2000.0, 0.05), (0.02, 0.0196, 50000.0, -0.08)]:
        out["relative"].append({
            "mean": mean, "variance": var, "n_per_arm": n, "lift": lift, "alpha": 0.05,
            "se": f(gb_relative_se(mean, var, n, lift)),
            "power": gb_power(mean, var, n, lift, 0.05),
            "power_sequential_5000": gb_power(mean, var, n, lift, 0.05, 5000.0),
            "mde_80": gb_mde(mean, var, n, 0.05, 0.8),
        })
    return out


def bench_gbstats(_out_dir):
    """Time gbstats on the benchmark's shape (benches/analyze.rs): 1M units, 3 variants, 5 metrics
    (conversion, CUPED revenue, count, ratio, mean) -> 10 treatment-vs-control TwoSidedTTests from
    sufficient statistics, plus the SRM check. Prints the mean time per whole analysis."""
    n = 333_333

    def arms():
        y = RNG.normal(20.0, 6.0, 20_000)
        x = RNG.normal(25.0, 7.0, 20_000)
        k = n / len(y)
        return {"n": n, "sum": f(y.sum() * k), "sum_sq": f((y * y).sum() * k), "pre_sum": f(x.sum() * k),
                "pre_sum_sq": f((x * x).sum() * k), "cross_pre": f((x * y).sum() * k)}

    data = [[arms() for _ in range(3)] for _ in range(5)]

    def one_analysis():
        check_srm([333_000, 333_500, 333_500], [33, 33, 34])
        for m, variants in enumerate(data):
            a = variants[0]
            for b in variants[1:]:
                if m == 0:
                    sa, sb = ProportionStatistic(n=n, sum=n * 0.1), ProportionStatistic(n=n, sum=n * 0.102)
                elif m == 1:
                    sa, sb = (RegressionAdjustedStatistic(
                        n=n, post_statistic=SampleMeanStatistic(n=n, sum=s["sum"], sum_squares=s["sum_sq"]),
                        pre_statistic=SampleMeanStatistic(n=n, sum=s["pre_sum"], sum_squares=s["pre_sum_sq"]),
                        post_pre_sum_of_products=s["cross_pre"], theta=0) for s in (a, b))
                elif m == 3:
                    sa, sb = (RatioStatistic(
                        n=n, m_statistic=SampleMeanStatistic(n=n, sum=s["sum"], sum_squares=s["sum_sq"]),
                        d_statistic=SampleMeanStatistic(n=n, sum=s["pre_sum"], sum_squares=s["pre_sum_sq"]),
                        m_d_sum_of_products=s["cross_pre"]) for s in (a, b))
                else:
                    sa, sb = (SampleMeanStatistic(n=n, sum=s["sum"], sum_squares=s["sum_sq"]) for s in (a, b))
                TwoSidedTTest(sa, sb, FrequentistConfig(difference_type="relative")).compute_result()

    one_analysis()
    reps = 300
    start = time.perf_counter()
    for _ in range(reps):
        one_analysis()
    per = (time.perf_counter() - start) / reps
    print(f"gbstats 0.8.0: analysis from sufficient stats (10 comparisons + SRM): {per * 1e6:.1f} us per experiment")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: fixtures.py OUT_DIR [--bench-timing]")
    out_dir = sys.argv[1]
    if "--bench-timing" in sys.argv:
        bench_gbstats(out_dir)
        return
    os.makedirs(out_dir, exist_ok=True)
    pairs = arm_pair_cases(24)
    fixtures = {
        "dist": gen_dist(),
        "welch_raw": gen_welch_raw(),
        "welch_from_stats": gen_welch_from_stats(pairs),
        "frequentist": gen_frequentist(pairs),
        "sequential": gen_sequential(pairs),
        "bayesian": gen_bayesian(pairs),
        "ratio": gen_ratio(),
        "cuped": gen_cuped(),
        "ztest": gen_ztest(),
        "srm": gen_srm(),
        "multitest": gen_multitest(),
        "power": gen_power(),
    }
    for name, data in fixtures.items():
        with open(os.path.join(out_dir, f"{name}.json"), "w") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
            fh.write("\n")


if __name__ == "__main__":
    main()
