"""Host unit tests of bench/verdict.py (run by scripts/bench before it boots
the VM, and by `make bench-selftest`): python3 -m unittest bench/test_verdict.py"""
import itertools
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report as R  # noqa: E402
import verdict as V  # noqa: E402


def brute_p(a, b):
    """p-value by enumerating every split of the pooled ranks (no ties)."""
    n1, n2 = len(a), len(b)
    u = V.u_statistic(a, b)
    us = []
    for idx in itertools.combinations(range(n1 + n2), n1):
        s = set(idx)
        x = [i for i in range(n1 + n2) if i in s]
        y = [i for i in range(n1 + n2) if i not in s]
        us.append(V.u_statistic(x, y))
    lo = sum(1 for v in us if v <= u) / len(us)
    hi = sum(1 for v in us if v >= u) / len(us)
    return min(1.0, 2 * min(lo, hi))


class Distribution(unittest.TestCase):
    def test_counts_sum_to_binomial(self):
        for n1 in range(0, 7):
            for n2 in range(0, 7):
                self.assertEqual(sum(V._counts(n1, n2)), math.comb(n1 + n2, n1))

    def test_counts_symmetric(self):
        c = V._counts(5, 5)
        self.assertEqual(list(c), list(reversed(c)))

    def test_p_matches_enumeration(self):
        cases = [([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10]),
                 ([1, 2, 3, 7, 9], [4, 5, 6, 8, 10]), ([10, 20, 30], [15, 25, 35, 45]),
                 ([5, 6], [1, 2, 3, 4, 7])]
        for a, b in cases:
            self.assertAlmostEqual(V.p_two_sided(a, b), brute_p(a, b), places=12)

    def test_textbook_critical_values(self):
        # two-sided alpha = 0.05 critical U (tables): n=4,4 -> 0; 5,5 -> 2; 6,6 -> 5
        for n, crit in ((4, 0), (5, 2), (6, 5)):
            c = V._counts(n, n)
            total = sum(c)
            p_at = lambda u: 2 * sum(c[:u + 1]) / total
            self.assertLess(p_at(crit), 0.05, n)
            self.assertGreaterEqual(p_at(crit + 1), 0.05, n)

    def test_separated_ranges_p(self):
        self.assertAlmostEqual(V.p_two_sided([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), 2 / 252)
        self.assertAlmostEqual(V.p_two_sided([1, 2, 3], [4, 5, 6]), 0.1)


class Compare(unittest.TestCase):
    def test_separated_higher_is_better(self):
        self.assertEqual(V.compare([10, 11, 12, 13, 14], [1, 2, 3, 4, 5], "higher"), "better")
        self.assertEqual(V.compare([10, 11, 12, 13, 14], [1, 2, 3, 4, 5], "lower"), "worse")
        self.assertEqual(V.compare([1, 2, 3, 4, 5], [10, 11, 12, 13, 14], "lower"), "better")

    def test_overlap_is_tie(self):
        # the case: one run of the peer far above, medians apart
        self.assertEqual(V.compare([32, 31.6, 42, 33, 35], [45, 18.2, 86.9, 40, 50], "higher"), "tie")
        self.assertEqual(V.compare([1, 3, 5, 7, 9], [2, 4, 6, 8, 10], "higher"), "tie")

    def test_small_overlap_at_five_runs(self):
        # U = 2: two of 25 pairs out of order, still p = 0.032 < 0.05
        f, p = [1, 2, 3, 4, 7], [5, 6, 8, 9, 10]
        self.assertEqual(V.u_statistic(f, p), 2)
        self.assertEqual(V.compare(f, p, "lower"), "better")
        # U = 3: p = 0.056, a tie
        f, p = [1, 2, 3, 5, 7], [4, 6, 8, 9, 10]
        self.assertEqual(V.u_statistic(f, p), 3)
        self.assertEqual(V.compare(f, p, "lower"), "tie")

    def test_three_runs_never_decide(self):
        self.assertEqual(V.compare([100, 101, 102], [1, 2, 3], "higher"), "tie")

    def test_all_equal_is_tie(self):
        self.assertEqual(V.compare([5, 5, 5, 5, 5], [5, 5, 5, 5, 5], "higher"), "tie")

    def test_empty_is_tie(self):
        self.assertEqual(V.compare([], [1, 2], "higher"), "tie")


class Row(unittest.TestCase):
    F = [10, 11, 12, 13, 14]
    LOW = [1, 2, 3, 4, 5]
    HIGH = [20, 21, 22, 23, 24]
    MIX = [8, 12, 16, 9, 15]

    def test_better_needs_every_peer(self):
        self.assertEqual(V.row_verdict(self.F, {"xfs": self.LOW, "ext4": self.LOW}, "higher")[0], "better")
        self.assertEqual(V.row_verdict(self.F, {"xfs": self.LOW, "ext4": self.MIX}, "higher")[:2], ("tie", "ext4"))

    def test_worse_against_one_peer(self):
        v, who, p = V.row_verdict(self.F, {"xfs": self.LOW, "ext4": self.HIGH}, "higher")
        self.assertEqual((v, who), ("worse", "ext4"))
        self.assertLess(p, 0.05)

    def test_peer_without_figures_ignored(self):
        self.assertEqual(V.row_verdict(self.F, {"xfs": self.LOW, "ext4": []}, "higher")[:2], ("better", "xfs"))
        self.assertEqual(V.row_verdict(self.F, {"ext4": []}, "higher")[0], "tie")

    def test_tie_names_the_peer_not_separated(self):
        # beaten by far by ext4's figures, not separated from XFS's: a tie vs XFS
        v, who, p = V.row_verdict(self.F, {"xfs": self.MIX, "ext4": self.LOW}, "higher")
        self.assertEqual((v, who), ("tie", "xfs"))
        self.assertGreaterEqual(p, 0.05)
        # both ties: the one with the larger p (1.0 against 0.84)
        self.assertEqual(V.row_verdict(self.MIX, {"xfs": [9, 10, 11, 12, 13], "ext4": [10, 11, 12, 13, 14]},
                                       "lower"), ("tie", "ext4", 1.0))

    def test_ratio_range(self):
        r = V.ratio_range([2, 4, 6], [1, 2, 3])
        self.assertEqual(r, (2.0, 2 / 3, 6.0))
        self.assertIsNone(V.ratio_range([1], [0, 1]))


class Targets(unittest.TestCase):
    def test_sign_p(self):
        self.assertEqual(V.sign_p(5, 5), 1 / 32)
        self.assertEqual(V.sign_p(4, 5), 6 / 32)
        self.assertEqual(V.sign_p(0, 5), 1.0)
        for n in range(1, 9):  # the upper tail by enumerating every sign pattern
            for k in range(n + 1):
                pats = list(itertools.product((0, 1), repeat=n))
                self.assertAlmostEqual(V.sign_p(k, n), sum(1 for x in pats if sum(x) >= k) / len(pats))

    def test_value_needs_every_run_at_five(self):
        self.assertEqual(V.at_least_value([1.8, 1.9, 1.75, 1.95, 1.7], 1.7), ("met", 1 / 32, 5))
        # one run below: p = 6/32, not separated even with a median far above
        self.assertEqual(V.at_least_value([1.9, 1.95, 1.98, 1.99, 1.2], 1.7)[0], "not separated")
        self.assertEqual(V.at_least_value([1.0, 1.02, 0.98, 1.01, 0.99], 1.7), ("missed", 1 / 32, 0))
        self.assertEqual(V.at_least_value([1.0, 1.02, 0.98, 1.01, 1.8], 1.7)[0], "not separated")

    def test_value_few_runs_never_decide(self):
        # 4 runs all on one side: p = 1/16 > 0.05
        self.assertEqual(V.at_least_value([2, 2, 2, 2], 1.7)[0], "not separated")
        self.assertEqual(V.at_least_value([], 1.7)[0], "not measured")

    def test_value_more_runs_allow_one_outlier(self):
        # 8 runs, 7 above: p = 9/256 < 0.05
        self.assertEqual(V.at_least_value([1.8] * 7 + [1.0], 1.7)[0], "met")

    def test_peer(self):
        f, low, high = [10, 11, 12, 13, 14], [1, 2, 3, 4, 5], [20, 21, 22, 23, 24]
        self.assertEqual(V.at_least_peer(f, low)[0], "met")
        self.assertEqual(V.at_least_peer(f, high)[0], "missed")
        self.assertEqual(V.at_least_peer(f, [9, 11, 13, 12, 14])[0], "not separated")
        # the factor scales the peer: 1.7x of [6..10] is [10.2..17]
        self.assertEqual(V.at_least_peer(f, [6, 7, 8, 9, 10], 1.7)[0], "not separated")
        self.assertEqual(V.at_least_peer(f, [6, 7, 8, 9, 10], 1.0)[0], "met")
        self.assertEqual(V.at_least_peer(f, [])[0], "not measured")

    def test_combine(self):
        self.assertEqual(V.combine(["met", "met"]), "met")
        self.assertEqual(V.combine(["met", "not separated"]), "not separated")
        self.assertEqual(V.combine(["met", "missed"]), "missed")
        self.assertEqual(V.combine(["not separated", "missed"]), "missed")
        self.assertEqual(V.combine(["met", "not measured"]), "not measured")


def slot(runs):
    return {"unit": "", "runs": runs}


class ParallelRows(unittest.TestCase):
    """report.py's multi-thread rows and issue #17's targets on made-up runs"""
    PARAMS = {"threads": [1, 2], "reps": 5, "par_file_mib": 16}

    def summary(self, scaling, ops):
        """{fs: {metric: summary}}: scaling[fs] the 2-thread scaling runs,
        ops[fs] the 1-thread ops/s runs (2 threads = 1 thread x scaling)"""
        sm = {}
        for fs in R.FSS:
            d = {}
            for w, _ in R.PAR:
                d[f"par_{w}_1t"] = R.summarize(slot(ops[fs]))
                d[f"par_{w}_2t"] = R.summarize(slot([a * b for a, b in zip(ops[fs], scaling[fs])]))
                d[f"par_{w}_2t_scaling"] = R.summarize(slot(scaling[fs]))
            sm[fs] = d
        return sm

    def outcomes(self, sm, params=None):
        return {t: o for o, t, _ in R.targets(sm, params or self.PARAMS)}

    def test_rows_per_thread_count(self):
        names = [m for m, *_ in R.par_rows([1, 2, 4])]
        for w, _ in R.PAR:
            for t in (1, 2, 4):
                self.assertIn(f"par_{w}_{t}t", names)
            self.assertIn(f"par_{w}_2t_scaling", names)
            self.assertIn(f"par_{w}_4t_scaling", names)
            self.assertNotIn(f"par_{w}_1t_scaling", names)
        # no 1-thread run, no scaling row
        self.assertFalse([m for m in (r[0] for r in R.par_rows([2])) if m.endswith("_scaling")])
        # every label formats with the plan's parameters
        lp = R.label_params(self.PARAMS)
        for _, label, better, _ in R.par_rows([1, 2]):
            self.assertNotIn("{", label.format(**lp))
            self.assertIn(better, ("higher", "lower", "info"))

    def test_serialised_ferrofs_misses(self):
        # today's ferrofs: one mount-wide mutex, no scaling; peers near 2x
        sm = self.summary({"ferrofs": [1.0, 0.98, 1.02, 0.99, 1.01], "xfs": [1.9, 1.95, 1.85, 1.92, 1.88],
                           "ext4": [1.8, 1.85, 1.9, 1.75, 1.82]},
                          {"ferrofs": [100, 101, 99, 102, 98], "xfs": [95, 96, 97, 94, 93],
                           "ext4": [110, 111, 112, 109, 113]})
        o = self.outcomes(sm)
        self.assertEqual(len(o), 3 + 2 * 2)
        self.assertEqual(o["2-thread scaling of parallel stat ≥ 1.7x and ≥ XFS's"], "missed")
        self.assertEqual(o["parallel stat, 1 thread, ≥ 1.0x ext4-DAX"], "missed")
        self.assertEqual(o["parallel 4 KiB pread, 2 threads, ≥ 1.0x ext4-DAX"], "missed")

    def test_scaling_ferrofs_meets(self):
        sm = self.summary({"ferrofs": [1.95, 1.97, 1.96, 1.98, 1.99], "xfs": [1.8, 1.75, 1.85, 1.82, 1.78],
                           "ext4": [1.8, 1.85, 1.9, 1.75, 1.82]},
                          {"ferrofs": [120, 121, 122, 123, 124], "xfs": [95, 96, 97, 94, 93],
                           "ext4": [110, 111, 112, 109, 113]})
        self.assertEqual(set(self.outcomes(sm).values()), {"met"})

    def test_above_threshold_but_below_xfs_misses(self):
        # every run above 1.7, yet every XFS run scales better: the XFS half misses
        sm = self.summary({"ferrofs": [1.75, 1.76, 1.77, 1.78, 1.79], "xfs": [1.9, 1.92, 1.94, 1.96, 1.98],
                           "ext4": [1.8] * 5}, {fs: [100] * 5 for fs in R.FSS})
        o, t, d = R.targets(sm, self.PARAMS)[0]
        self.assertEqual(o, "missed")
        self.assertIn("≥ 1.7x: met (5 of 5 runs", d)
        self.assertIn("≥ XFS's 1.94 (1.90–1.98): missed", d)

    def test_noise_is_not_separated(self):
        # scaling above 1.7 in 4 of 5 runs and tied with XFS; ops/s tied with ext4
        sm = self.summary({"ferrofs": [1.9, 1.8, 1.95, 1.6, 1.85], "xfs": [1.85, 1.9, 1.8, 1.88, 1.7],
                           "ext4": [1.8, 1.85, 1.9, 1.75, 1.82]},
                          {"ferrofs": [100, 110, 105, 95, 108], "xfs": [95, 96, 97, 94, 93],
                           "ext4": [102, 107, 99, 111, 104]})
        o = self.outcomes(sm)
        self.assertEqual(o["2-thread scaling of parallel read faults ≥ 1.7x and ≥ XFS's"], "not separated")
        self.assertEqual(o["parallel stat, 1 thread, ≥ 1.0x ext4-DAX"], "not separated")

    def test_without_two_threads_not_measured(self):
        sm = {"ferrofs": {"par_stat_1t": R.summarize(slot([1, 2, 3]))}}
        o = self.outcomes(sm, {"threads": [1]})
        self.assertEqual(o["2-thread scaling of parallel stat ≥ 1.7x and ≥ XFS's"], "not measured")
        self.assertEqual(o["parallel stat, 1 thread, ≥ 1.0x ext4-DAX"], "not measured")  # no ext4 runs

    def test_no_parallel_rows_no_targets(self):
        self.assertEqual(R.targets({"ferrofs": {"meta_stat": R.summarize(slot([1]))}}, self.PARAMS), [])

    def test_table_carries_targets(self):
        sm = self.summary({fs: [1.0] * 5 for fs in R.FSS}, {fs: [100] * 5 for fs in R.FSS})
        res = {"summary": sm, "params": dict(self.PARAMS, seed=1)}
        t = R.table(res)
        self.assertIn("Targets: 0 met, 3 missed, 4 not separated", t)
        self.assertEqual(len(res["targets"]), 7)
        self.assertIn("parallel: stat scaling, 2 threads / 1 thread (x)", t)


if __name__ == "__main__":
    unittest.main()
