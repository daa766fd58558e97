"""Host unit tests of bench/verdict.py (run by scripts/bench before it boots
the VM, and by `make bench-selftest`): python3 -m unittest bench/test_verdict.py"""
import itertools
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


if __name__ == "__main__":
    unittest.main()
