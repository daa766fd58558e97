"""The verdict of one benchmark row: is ferrofs better, worse, or
indistinguishable from its peers, given the spread of the runs?

A two-sided exact Mann-Whitney U (Wilcoxon rank-sum) test per peer, at
ALPHA = 0.05. With 5 runs each, p < 0.05 needs U <= 2: at most 2 of the 25
(ferrofs, peer) run pairs may be ordered against the rest; with 4 runs each
it needs U = 0, i.e. the two ranges do not overlap; with 3 runs each no
outcome reaches p < 0.05 (the smallest p is 0.1), so every row is a tie.
No assumption about the distribution, only that runs are independent
(each on a freshly made filesystem, filesystems in a shuffled order per
repetition). Equal values count half (mid-ranks); the p-value then comes
from the no-ties distribution, which is what the textbook tables give.

Targets (`at_least_value`, `at_least_peer`, `combine`): "is ferrofs's figure
at least T", T a number (2-thread scaling >= 1.7) or a peer's runs times a
factor (stat >= 1.0x ext4). Three outcomes: "met" with evidence for,
"missed" with evidence against, "not separated" when the runs allow both.
Against a number: an exact one-sided sign test each way (with 5 runs all 5
on one side of T, p = 1/32; 4 of 5 is p = 0.19, not separated). Against a
peer: the rank test above, "better" is met, "worse" missed.

Row verdict (`row_verdict`): "better" when ferrofs is significantly better
than every peer that has figures, "worse" when it is significantly worse
than at least one, otherwise "tie" (naming the peer it was not separated
from). Documentation/benchmarks.md explains why.
"""
from functools import lru_cache
import math
import statistics

ALPHA = 0.05


def u_statistic(a, b):
    """Mann-Whitney U of sample a against b: the number of pairs (x in a,
    y in b) with x > y, ties counting one half."""
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)


@lru_cache(maxsize=None)
def _counts(n1, n2):
    """counts[u] = number of arrangements of n1 + n2 distinct values whose U
    (for the first sample) is u; sum = C(n1 + n2, n1)."""
    # f(n1, n2, u) = f(n1 - 1, n2, u - n2) + f(n1, n2 - 1, u): the largest
    # value belongs to sample 1 (beating all n2) or to sample 2.
    if n1 == 0 or n2 == 0:
        return (1,)
    a = _counts(n1 - 1, n2)
    b = _counts(n1, n2 - 1)
    out = [0] * (n1 * n2 + 1)
    for u, c in enumerate(a):
        out[u + n2] += c
    for u, c in enumerate(b):
        out[u] += c
    return tuple(out)


def p_two_sided(a, b):
    """Exact two-sided p-value of the Mann-Whitney U test of a against b."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0
    c = _counts(n1, n2)
    total = sum(c)
    u = u_statistic(a, b)
    lo = sum(c[k] for k in range(len(c)) if k <= u) / total   # P(U <= u)
    hi = sum(c[k] for k in range(len(c)) if k >= u) / total   # P(U >= u)
    return min(1.0, 2 * min(lo, hi))


def compare(f, p, better, alpha=ALPHA):
    """'better', 'worse' or 'tie' for ferrofs's runs f against one peer's
    runs p; better is 'higher' or 'lower' (which direction is good)."""
    if len(f) == 0 or len(p) == 0 or p_two_sided(f, p) >= alpha:
        return "tie"
    higher = u_statistic(f, p) > len(f) * len(p) / 2
    return "better" if higher == (better == "higher") else "worse"


def row_verdict(f, peers, better, alpha=ALPHA):
    """(verdict, peer named, p-value) for ferrofs's runs f against
    peers = {name: runs}. 'worse' names the peer it lost to (the one with the
    smallest p if several); 'better' needs a significant win over every peer
    and names the one with the largest p; 'tie' names the peer that was
    not separated (the largest p; of equal p, the best median) and gives
    its p."""
    peers = {k: v for k, v in peers.items() if v}
    if not f or not peers:
        return ("tie", None, 1.0)
    res = {k: (compare(f, v, better, alpha), p_two_sided(f, v)) for k, v in peers.items()}
    worse = [k for k, (v, _) in res.items() if v == "worse"]
    if worse:
        k = min(worse, key=lambda k: res[k][1])
        return ("worse", k, res[k][1])
    if all(v == "better" for v, _ in res.values()):
        k = max(res, key=lambda k: res[k][1])
        return ("better", k, res[k][1])
    sign = 1 if better == "higher" else -1
    k = max(peers, key=lambda k: (res[k][1], sign * statistics.median(peers[k])))
    return ("tie", k, res[k][1])


def ratio_range(f, p):
    """(median ratio, lowest, highest) of f/p: the ratio of the medians and
    the extremes min(f)/max(p), max(f)/min(p); None where p has a zero."""
    if not f or not p or min(p) <= 0:
        return None
    return (statistics.median(f) / statistics.median(p), min(f) / max(p), max(f) / min(p))


def sign_p(k, n):
    """P(X >= k) for X ~ Binomial(n, 1/2): the one-sided p-value of a sign
    test in which k of n runs fell on the tested side."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def at_least_value(runs, threshold, alpha=ALPHA):
    """(outcome, p, k) of the target "runs are at least threshold": 'met'
    when the k runs >= threshold are too many for a median below it (one-sided
    sign test, p < alpha), 'missed' when the runs below it are too many for a
    median at or above it, 'not separated' otherwise, 'not measured' without
    runs. p is that of the outcome (of the likelier side when not
    separated)."""
    n = len(runs)
    if n == 0:
        return ("not measured", 1.0, 0)
    k = sum(1 for r in runs if r >= threshold)
    p_met, p_missed = sign_p(k, n), sign_p(n - k, n)
    if p_met < alpha:
        return ("met", p_met, k)
    if p_missed < alpha:
        return ("missed", p_missed, k)
    return ("not separated", min(p_met, p_missed), k)


def at_least_peer(f, p, factor=1.0, alpha=ALPHA):
    """(outcome, p) of the target "ferrofs's runs f are at least factor
    times the peer's runs p" (higher is better): the rank test of f against
    p scaled by factor; 'better' is met, 'worse' missed, a tie not
    separated; 'not measured' when either has no runs."""
    if not f or not p:
        return ("not measured", 1.0)
    q = [factor * x for x in p]
    v = compare(f, q, "higher", alpha)
    return ({"better": "met", "worse": "missed", "tie": "not separated"}[v], p_two_sided(f, q))


def combine(outcomes):
    """one outcome for a target made of parts: missed if any part is
    missed, else not measured if any is, else met if all are, else not
    separated"""
    for o in ("missed", "not measured"):
        if o in outcomes:
            return o
    return "met" if all(o == "met" for o in outcomes) else "not separated"
