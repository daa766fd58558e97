#!/usr/bin/env python3
"""Turn the guest's raw benchmark figures into out/bench/results.json, a
markdown table, a PNG plot, and README.md's "Benchmarks" section.

  report.py --raw RAW.json --out DIR --machine TEXT --wall S --vm-rc N
  report.py --from DIR/results.json --out DIR        (table and plot again)
  report.py --from DIR/results.json --readme README.md
"""
import argparse
import datetime
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict  # noqa: E402

FSS = ["ferrofs", "xfs", "ext4"]
PEERS = ["xfs", "ext4"]
NAMES = {"ferrofs": "ferrofs", "xfs": "XFS", "ext4": "ext4"}

# (metric, label, better, group): better is "higher", "lower" or "info" (no
# verdict); group is the plot panel
G_REFLINK, G_DATA, G_MMAP, G_DIR, G_SCALE = "reflink and CoW", "data I/O", "mmap", "directory", "scale"
G_PAR = "parallel, each thread on its own file"
ROWS = [
    ("reflink_ms", "reflink: FICLONE of a {reflink_mib} MiB file (ms)", "lower", G_REFLINK),
    ("reflink_fsync_ms", "reflink: fsync of the clone after FICLONE (ms)", "lower", G_REFLINK),
    ("reflink_src_extents", "reflink: source extents (FIEMAP)", "info", G_REFLINK),
    ("reflink_dst_extents", "reflink: clone extents (FIEMAP)", "info", G_REFLINK),
    ("cow_pwrite_p50", "CoW: first 4 KiB pwrite into a reflinked page, median (us)", "lower", G_REFLINK),
    ("cow_pwrite_p99", "CoW: first 4 KiB pwrite into a reflinked page, p99 (us)", "lower", G_REFLINK),
    ("cow_mmap_p50", "CoW: first mmap store into a reflinked page, median (us)", "lower", G_REFLINK),
    ("cow_mmap_p99", "CoW: first mmap store into a reflinked page, p99 (us)", "lower", G_REFLINK),
    ("cow_mmap_pmd_faults", "CoW: ... the mmap stores' PMD faults (ferrofs debugfs)", "info", G_REFLINK),
    ("cow_mmap_pmd_fallbacks", "CoW: ... their PMD fallbacks to 4 KiB (ferrofs debugfs)", "info", G_REFLINK),
    ("cow_mmap_minflt", "CoW: ... their page faults (getrusage; {cow_pages} stores)", "info", G_REFLINK),
    ("cow_pwrite_extents_after", "CoW: clone extents after the {cow_pages} pwrites (FIEMAP)", "info", G_REFLINK),
    ("cow_mmap_extents_after", "CoW: clone extents after the {cow_pages} mmap stores (FIEMAP)", "info", G_REFLINK),
]


def thread_rows(threads):
    rows = []
    for t in threads:
        for bs in ("4k", "1m"):
            for pat in ("seq", "rand"):
                for op in ("read", "write"):
                    rows.append((f"{pat}_{op}_{bs}_{t}t",
                                 f"data: {'sequential' if pat == 'seq' else 'random'} "
                                 f"{bs.upper().replace('K', ' KiB').replace('M', ' MiB')} "
                                 f"p{op} ({t} thread{'s' if t > 1 else ''}, MiB/s)", "higher", G_DATA))
    return rows


TAIL_ROWS = [
    ("append_fdatasync_ops", "data: 4 KiB append + fdatasync (ops/s)", "higher", G_DATA),
    ("append_fdatasync_p50", "data: 4 KiB append + fdatasync, median (us)", "lower", G_DATA),
    ("append_fdatasync_p99", "data: 4 KiB append + fdatasync, p99 (us)", "lower", G_DATA),
    ("append_nosync_ops", "data: 4 KiB append, no fsync, {append_nosync_n} times (ops/s)", "higher", G_DATA),
    ("append_nosync_p99", "data: 4 KiB append, no fsync, p99 (us)", "lower", G_DATA),
    ("mmap_fault_store_ms", "mmap: first store to every page of a sparse {mmap_mib} MiB file (ms)", "lower", G_MMAP),
    ("mmap_store_pmd_faults", "mmap: ... its PMD faults (ferrofs debugfs)", "info", G_MMAP),
    ("mmap_store_pmd_fallbacks", "mmap: ... its PMD fallbacks to 4 KiB (ferrofs debugfs)", "info", G_MMAP),
    ("mmap_store_minflt", "mmap: ... its page faults (getrusage; {mmap_pages} pages, 1 per PMD)", "info", G_MMAP),
    ("mmap_store", "mmap: store, memcpy into the {mmap_mib} MiB mapping (MiB/s)", "higher", G_MMAP),
    ("mmap_fault_load_ms", "mmap: first load from every page, fresh mapping (ms)", "lower", G_MMAP),
    ("mmap_load_pmd_faults", "mmap: ... its PMD faults (ferrofs debugfs)", "info", G_MMAP),
    ("mmap_load_pmd_fallbacks", "mmap: ... its PMD fallbacks to 4 KiB (ferrofs debugfs)", "info", G_MMAP),
    ("mmap_load_minflt", "mmap: ... its page faults (getrusage; {mmap_pages} pages, 1 per PMD)", "info", G_MMAP),
    ("mmap_load", "mmap: load, memcpy from the {mmap_mib} MiB mapping (MiB/s)", "higher", G_MMAP),
    ("meta_create", "directory of {meta_n} entries: create (ops/s)", "higher", G_DIR),
    ("meta_stat", "directory of {meta_n} entries: stat each (ops/s)", "higher", G_DIR),
    ("meta_readdir", "directory of {meta_n} entries: readdir (entries/s)", "higher", G_DIR),
    ("meta_rename", "directory of {meta_n} entries: rename each (ops/s)", "higher", G_DIR),
    ("meta_unlink", "directory of {meta_n} entries: unlink each (ops/s)", "higher", G_DIR),
    ("mount_ms", "directory of {meta_n} entries: mount (ms)", "lower", G_DIR),
    ("umount_ms", "directory of {meta_n} entries: umount after sync (ms)", "lower", G_DIR),
    ("scale_reflinks_s", "scale: {scale_n} reflinks of one block into one file (s)", "lower", G_SCALE),
    ("scale_extents", "scale: extents of that file (FIEMAP)", "info", G_SCALE),
    ("scale_map_read_ms", "scale: mmap and read every page of it (ms)", "lower", G_SCALE),
    ("scale_map_pmd_faults", "scale: ... its PMD faults (ferrofs debugfs)", "info", G_SCALE),
    ("scale_map_pmd_fallbacks", "scale: ... its PMD fallbacks to 4 KiB (ferrofs debugfs)", "info", G_SCALE),
    ("scale_map_minflt", "scale: ... its page faults (getrusage)", "info", G_SCALE),
    ("scale_rmap_shared_pages", "scale: rmap shared pages (ferrofs debugfs)", "info", G_SCALE),
    ("scale_rmap_owners", "scale: rmap owners (ferrofs debugfs)", "info", G_SCALE),
    ("scale_rmap_bytes", "scale: rmap in-memory bytes (ferrofs debugfs)", "info", G_SCALE),
    ("scale_rmap_bytes_per_owner", "scale: rmap bytes per owner (ferrofs debugfs)", "info", G_SCALE),
]


# fsbench par's workloads (bench/guest.py PAR) and what one operation is
PAR = [("stat", "fstatat of a cached file"),
       ("pread", "4 KiB pread, random offsets in a {par_file_mib} MiB file"),
       ("fault", "4 KiB read fault, fresh mapping of a {par_file_mib} MiB file"),
       ("create", "create+close of a new file in its own directory")]


def par_rows(threads):
    rows = []
    for w, what in PAR:
        for t in threads:
            rows.append((f"par_{w}_{t}t", f"parallel: {what}, {t} thread{'s' if t > 1 else ''} "
                         "(ops/s, all threads)", "higher", G_PAR))
        if 1 in threads:
            for t in threads:
                if t > 1:
                    rows.append((f"par_{w}_{t}t_scaling", f"parallel: {w} scaling, {t} threads / 1 thread (x)",
                                 "higher", G_PAR))
        if w == "fault":
            for t in threads:
                rows.append((f"par_fault_{t}t_faults_per_access",
                             f"parallel: ... page faults per access, {t} thread{'s' if t > 1 else ''} (getrusage)",
                             "info", G_PAR))
    return rows


def rows(params):
    threads = params.get("threads", [1])
    return ROWS + thread_rows(threads) + TAIL_ROWS + par_rows(threads)


def label_params(p):
    q = dict(p)
    q.setdefault("append_nosync_n", "N")
    q.setdefault("par_file_mib", "F")
    q["mmap_pages"] = f"{p.get('mmap_mib', 0) * 256:,}"
    return q


FAIL_ROWS = ["setup_failed", "reflink_failed", "cow_failed", "bw_failed", "append_failed", "mmapbw_failed",
             "meta_failed", "scale_failed", "remount_failed", "par_failed"]


def summarize(slot):
    runs = slot["runs"]
    nums = [r for r in runs if isinstance(r, (int, float))]
    errs = [r for r in runs if isinstance(r, str)]
    s = {"unit": slot.get("unit", ""), "runs": runs}
    if nums:
        s.update(median=statistics.median(nums), min=min(nums), max=max(nums), n=len(nums))
    if errs:
        s["error"] = errs[0]
        s["errors"] = len(errs)
    return s


def build(raw, machine, wall, vm_rc, kernel=None, host_load=None):
    summary = {}
    for fs, metrics in raw["results"].items():
        summary[fs] = {}
        for m, slot in metrics.items():
            if m.endswith("_q"):  # latency quantiles: per-quantile median over runs
                qs = [r for r in slot["runs"] if isinstance(r, list)]
                if qs:
                    summary[fs][m] = {"unit": "us", "quantiles": [statistics.median(c) for c in zip(*qs)]}
            else:
                summary[fs][m] = summarize(slot)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": raw["mode"], "params": raw["params"], "machine": machine, "guest": raw.get("guest", {}),
        "wall_seconds": wall, "guest_seconds": raw.get("seconds"), "vm_rc": vm_rc,
        "kernel": kernel or {}, "host_load": host_load or {}, "order": raw.get("order", []),
        "summary": summary, "raw": raw["results"], "log": raw.get("log", []),
    }


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if float(v).is_integer() and a < 1e15:
        return f"{int(v):,}"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def cell(s):
    if s is None:
        return "—"
    if "median" not in s:
        return s["error"]
    c = f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})" if s["n"] > 1 else fmt(s["median"])
    if "error" in s:
        c += f"; {s['error']} in {s['errors']} of {s['errors'] + s['n']} runs"
    return c


def lookup(metrics, m):
    """metric m, or the error of the operation it comes from (cow_pwrite for
    cow_pwrite_p50, scale_reflinks_s for scale_extents, ...)"""
    if m in metrics:
        return metrics[m]
    base = m
    while "_" in base:
        base = base.rsplit("_", 1)[0]
        for k, s in metrics.items():
            if (k == base or k.startswith(base + "_")) and "median" not in s and "error" in s:
                return s
    return None


def nums(s):
    return [r for r in (s or {}).get("runs", []) if isinstance(r, (int, float))]


def judge(sm, m, better):
    """(verdict, peer, p, (ratio, lo, hi)) of ferrofs against the peers for
    metric m, or None when there is nothing to judge. The ratio is ferrofs
    over the peer named (the one lost to, or the best by median)."""
    f = nums(sm.get("ferrofs", {}).get(m))
    peers = {fs: nums(sm.get(fs, {}).get(m)) for fs in PEERS}
    peers = {k: v for k, v in peers.items() if v}
    if better == "info" or not f or not peers:
        return None
    v, who, p = verdict.row_verdict(f, peers, better)
    return v, who, p, verdict.ratio_range(f, peers[who])


# issue #17's targets (Documentation/benchmarks.md): the 2-thread scaling of
# these at least SCALING_TARGET and at least XFS's; these at least 1.0x ext4
SCALING_TARGET = 1.7
SCALING_TARGETS = [("stat", "stat"), ("pread", "4 KiB pread"), ("fault", "read faults")]
EXT4_TARGETS = [("stat", "stat"), ("pread", "4 KiB pread")]


def span(runs):
    """'median (min–max)' of runs"""
    if not runs:
        return "no runs"
    med = statistics.median(runs)
    return f"{fmt(med)} ({fmt(min(runs))}–{fmt(max(runs))})" if len(runs) > 1 else fmt(med)


def targets(sm, params):
    """[(outcome, target, detail)] for issue #17's targets, or [] when the
    run has no parallel rows"""
    threads = params.get("threads", [1])
    if not any(k.startswith("par_") for k in sm.get("ferrofs", {})):
        return []
    runs = lambda fs, m: nums(sm.get(fs, {}).get(m))
    out = []
    for w, name in SCALING_TARGETS:
        tgt = f"2-thread scaling of parallel {name} ≥ {SCALING_TARGET}x and ≥ XFS's"
        if not (1 in threads and 2 in threads):
            out.append(("not measured", tgt, f"THREADS is {','.join(map(str, threads))}, not 1 and 2"))
            continue
        m = f"par_{w}_2t_scaling"
        f, x = runs("ferrofs", m), runs("xfs", m)
        a, pa, k = verdict.at_least_value(f, SCALING_TARGET)
        b, pb = verdict.at_least_peer(f, x)
        detail = (f"ferrofs {span(f)}; ≥ {SCALING_TARGET}x: {a} ({k} of {len(f)} runs ≥ {SCALING_TARGET}, "
                  f"p={pa:.2g}); ≥ XFS's {span(x)}: {b} (p={pb:.2g})")
        out.append((verdict.combine([a, b]), tgt, detail))
    for w, name in EXT4_TARGETS:
        for t in threads:
            m = f"par_{w}_{t}t"
            f, e = runs("ferrofs", m), runs("ext4", m)
            o, pv = verdict.at_least_peer(f, e)
            rr = verdict.ratio_range(f, e)
            ratio = f"{rr[0]:.2f} ({fmt(rr[1])}–{fmt(rr[2])}) of ext4's" if rr else "no ratio"
            out.append((o, f"parallel {name}, {t} thread{'s' if t > 1 else ''}, ≥ 1.0x ext4-DAX",
                        f"ferrofs {span(f)} ops/s, {ratio} (p={pv:.2g})"))
    return out


def target_lines(res):
    """the Targets paragraph of the table (and res['targets']), or []"""
    ts = targets(res["summary"], res["params"])
    res["targets"] = [dict(outcome=o, target=t, detail=d) for o, t, d in ts]
    if not ts:
        return []
    n = {o: sum(1 for x, _, _ in ts if x == o) for o in ("met", "missed", "not separated", "not measured")}
    lines = [f"Targets: {n['met']} met, {n['missed']} missed, {n['not separated']} not separated"
             + (f", {n['not measured']} not measured" if n["not measured"] else "")
             + f" (issue #17; \"met\" and \"missed\" need p < {verdict.ALPHA}: a one-sided sign test against a "
             "number, the rank test above against a peer):", ""]
    for o, t, d in ts:
        word = f"**{o}**" if o in ("met", "missed") else o
        lines.append(f"- {word}: {t}. {d}")
    return lines


def table(res):
    sm, p = res["summary"], res["params"]
    lp = label_params(p)
    out = ["| measurement | better | ferrofs | XFS | ext4 | ferrofs / peer: verdict |",
           "| --- | --- | --- | --- | --- | --- |"]
    counts = {"better": 0, "worse": 0, "tie": 0}
    for m, label, better, _ in rows(p):
        ss = {fs: lookup(sm.get(fs, {}), m) for fs in FSS}
        if all(s is None for s in ss.values()):
            continue
        ratio = "—"
        f = ss["ferrofs"]
        j = judge(sm, m, better) if f and "error" not in f else None
        if j:
            v, who, pv, rr = j
            counts[v] += 1
            word = {"better": "**ferrofs better**", "worse": "**ferrofs worse**", "tie": "tie"}[v]
            if rr:
                ratio = f"{rr[0]:.2f} ({fmt(rr[1])}–{fmt(rr[2])}) vs {NAMES[who]}: {word} (p={pv:.2g})"
            else:
                ratio = f"vs {NAMES[who]}: {word} (p={pv:.2g})"
        elif f and "median" not in f and better != "info":
            ratio = f"ferrofs {f['error']}"
        arrow = {"higher": "higher", "lower": "lower", "info": "(info)"}[better]
        out.append(f"| {label.format(**lp)} | {arrow} | " + " | ".join(cell(ss[fs]) for fs in FSS) + f" | {ratio} |")
    for m in FAIL_ROWS:
        for fs in FSS:
            s = sm.get(fs, {}).get(m)
            if s:
                out.append(f"| {m.replace('_', ' ')} | — | " + " | ".join(cell(s) if x == fs else "" for x in FSS) + " | |")
    dev = sm.get("device", {})
    lines = ["\n".join(out), ""]
    lines.append(f"Verdicts: {counts['better']} better, {counts['worse']} worse, {counts['tie']} tie "
                 f"(exact two-sided Mann-Whitney U per peer, p < {verdict.ALPHA}: \"better\" needs every peer "
                 "beaten, \"worse\" one peer ahead; the ratio is ferrofs's median over that peer's, in brackets "
                 "its extremes min/max and max/min).")
    if dev:
        lines.append("Device limit (O_DIRECT 1 MiB sequential I/O on the raw /dev/pmem0, at its place in each "
                     f"repetition's shuffled order): write {cell(dev.get('dev_odirect_write_1m'))} MiB/s, "
                     f"read {cell(dev.get('dev_odirect_read_1m'))} MiB/s.")
    lines.append(f"Cells: median (min–max) of {p['reps']} runs, each on a freshly made filesystem, filesystems "
                 f"in a shuffled order per repetition (seed {p.get('seed', '?')}). "
                 "\"n/a\": the filesystem has no such operation or counter (ext4 has no reflink; only ferrofs "
                 "exports PMD fault counters and an rmap).")
    res["verdicts"] = counts
    tl = target_lines(res)
    if tl:
        lines += [""] + tl
    return "\n".join(lines)


def header(res):
    m = res["wall_seconds"]
    k = res.get("kernel") or {}
    kern = (f"{k.get('release', res.get('guest', {}).get('kernel', '?'))} ({k.get('flavour', '?')} flavour, "
            f"config key {k.get('key', '?')})") if k else res.get("guest", {}).get("kernel", "?")
    h = res.get("host_load") or {}
    load = ""
    if h:
        load = (f"\n\nHost load during the run: load average median {h.get('load_median', '?')}, "
                f"max {h.get('load_max', '?')} (2 cores); other VMs (qemu) running at {h.get('other_vm_share', '?')} "
                f"of the samples, up to {h.get('other_vm_max', '?')} at once.")
        if h.get("note"):
            load += " " + h["note"]
    return (f"{res['mode'].capitalize()} mode, {res['date']}; `make bench{' FULL=1' if res['mode'] == 'full' else ''}` "
            f"took {int(m) // 60} min {int(m) % 60} s. Kernel: {kern}.\n\nMachine: {res['machine']}. "
            "Under TCG emulation absolute figures mean little; compare within a row." + load)


def plot(res, path):
    """One panel per group of rows: for each row and peer, ferrofs's advantage
    (peer/ferrofs where lower is better, ferrofs/peer where higher is better,
    so right of 1 is always ferrofs ahead) as the ratio of medians, with a bar
    from the least to the most favourable ratio of single runs; coloured by
    that peer's verdict (green better, red worse, grey tie)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("report: no matplotlib, no plot")
        return
    sm, p = res["summary"], res["params"]
    lp = label_params(p)
    groups = {}
    for m, label, better, g in rows(p):
        if better == "info":
            continue
        f = nums(sm.get("ferrofs", {}).get(m))
        pts = []
        for k, peer in enumerate(PEERS):
            q = nums(sm.get(peer, {}).get(m))
            rr = verdict.ratio_range(f, q) if f and q else None
            if not rr or min(f) <= 0:
                continue
            mid, lo, hi = rr
            if better == "lower":  # advantage = peer / ferrofs
                mid, lo, hi = 1 / mid, 1 / hi, 1 / lo
            pts.append((peer, mid, lo, hi, verdict.compare(f, q, better)))
        if pts:
            groups.setdefault(g, []).append((label.format(**lp), pts))
    if not groups:
        print("report: nothing to plot")
        return
    sizes = [len(v) for v in groups.values()]
    fig, axes = plt.subplots(len(groups), 1, figsize=(12, 1.6 + 0.34 * sum(sizes) + 0.8 * len(groups)),
                             gridspec_kw={"height_ratios": [max(n, 2) for n in sizes]}, squeeze=False,
                             sharex=True)
    lo_all = min(pt[2] for items in groups.values() for _, pts in items for pt in pts)
    hi_all = max(pt[3] for items in groups.values() for _, pts in items for pt in pts)
    ticks = [t for t in (m * 10.0 ** e for e in range(-4, 5) for m in (1, 2, 5))
             if lo_all / 2.5 <= t <= hi_all * 2.5]
    colors = {"better": "tab:green", "worse": "tab:red", "tie": "0.45"}
    marks = {"xfs": ("o", -0.17), "ext4": ("s", 0.17)}
    for ax, (g, items) in zip([a[0] for a in axes], groups.items()):
        for i, (label, pts) in enumerate(items):
            y = len(items) - 1 - i
            for peer, mid, lo, hi, v in pts:
                mk, dy = marks[peer]
                ax.errorbar([mid], [y + dy], xerr=[[mid - lo], [hi - mid]], fmt=mk, color=colors[v],
                            ecolor=colors[v], capsize=2, ms=5, lw=1.2)
        ax.axvline(1, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels([lab for lab, _ in reversed(items)], fontsize=7)
        ax.set_ylim(-0.6, len(items) - 0.4)
        ax.set_title(g, fontsize=9, loc="left")
        ax.grid(True, axis="x", which="major", alpha=0.4)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelbottom=True, labelsize=7)
    axes[-1][0].set_xlabel("ferrofs advantage over the peer (right of 1: ferrofs better; dot: ratio of medians, "
                           "bar: least to most favourable single-run ratio)", fontsize=8)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker="o", ls="", color="k", label="vs XFS"),
               Line2D([], [], marker="s", ls="", color="k", label="vs ext4")]
    handles += [Line2D([], [], marker="_", ls="", color=c, ms=12, mew=3, label=v) for v, c in colors.items()]
    fig.legend(handles=handles, fontsize=7, loc="upper right", ncol=5, bbox_to_anchor=(0.99, 0.985))
    k = res.get("kernel") or {}
    fig.suptitle(f"ferrofs vs XFS/ext4, {res['mode']} mode, {res['date']}, {p['reps']} runs per cell,\n"
                 f"kernel {k.get('release', '?')} ({k.get('flavour', '?')}); qemu TCG: compare ratios",
                 fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))
    fig.savefig(path, dpi=110)
    print(f"report: wrote {path}")


def readme(res, path):
    body = ("## Benchmarks\n\n`make bench` (quick, one VM boot) or `make bench FULL=1` compares ferrofs with "
            "XFS (`reflink=1`, `-o dax`) and ext4 (`-o dax`) on the same emulated NVDIMM; "
            "[Documentation/benchmarks.md](Documentation/benchmarks.md) says how each figure is produced. "
            "Raw numbers: `out/bench/results.json`; plot: `out/bench/bench.png`. Latest run:\n\n"
            + header(res) + "\n\n" + table(res) + "\n")
    text = open(path).read()
    i = text.find("\n## Benchmarks\n")
    if i >= 0:
        j = text.find("\n## ", i + 1)
        text = text[:i + 1] + body + (text[j:] if j >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    open(path, "w").write(text)
    print(f"report: updated the Benchmarks section of {path}")


def host_load(path):
    """summary of scripts/bench's samples ('load1 other_vms' per line)"""
    if not path or not os.path.exists(path):
        return {}
    smp = []
    for line in open(path):
        try:
            la, vms = line.split()[:2]
            smp.append((float(la), int(vms)))
        except ValueError:
            continue
    if not smp:
        return {}
    loads = [x for x, _ in smp]
    busy = sum(1 for _, v in smp if v > 0)
    h = dict(samples=len(smp), load_median=round(statistics.median(loads), 2), load_max=max(loads),
             other_vm_share=f"{100 * busy // len(smp)}%", other_vm_max=max(v for _, v in smp))
    if busy or statistics.median(loads) > 2.5:
        h["note"] = ("Other work shared the host's 2 cores during this run, so the emulator had less CPU at times; "
                     "the shuffled order spreads that over all filesystems, and the verdict's tie absorbs it.")
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw")
    ap.add_argument("--from", dest="src")
    ap.add_argument("--out")
    ap.add_argument("--machine", default="")
    ap.add_argument("--wall", type=float, default=0)
    ap.add_argument("--vm-rc", type=int, default=0)
    ap.add_argument("--readme")
    ap.add_argument("--kernel-info", help="JSON: release, flavour, key, tree")
    ap.add_argument("--host-load", help="file of 'loadavg other_vms' samples taken during the run")
    a = ap.parse_args()
    if a.raw:
        kernel = json.loads(a.kernel_info) if a.kernel_info else {}
        raw = json.load(open(a.raw))
        if raw.get("guest", {}).get("kernel"):
            kernel["release"] = raw["guest"]["kernel"]
        res = build(raw, a.machine, a.wall, a.vm_rc, kernel, host_load(a.host_load))
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    else:
        res = json.load(open(a.src))
    if a.readme:
        readme(res, a.readme)
        return
    md = header(res) + "\n\n" + table(res) + "\n"
    open(os.path.join(a.out, "table.md"), "w").write(md)
    if a.raw:  # with the verdict counts table() added
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    print(md)
    plot(res, os.path.join(a.out, "bench.png"))


if __name__ == "__main__":
    main()
