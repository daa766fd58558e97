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

FSS = ["ferrofs", "xfs", "ext4"]
PEERS = ["xfs", "ext4"]
NAMES = {"ferrofs": "ferrofs", "xfs": "XFS", "ext4": "ext4"}

# (metric, label, better): better is "higher", "lower" or "info" (no verdict)
ROWS = [
    ("reflink_ms", "reflink: FICLONE of a {reflink_mib} MiB file (ms)", "lower"),
    ("reflink_fsync_ms", "reflink: fsync of the clone after FICLONE (ms)", "lower"),
    ("reflink_src_extents", "reflink: source extents (FIEMAP)", "info"),
    ("reflink_dst_extents", "reflink: clone extents (FIEMAP)", "info"),
    ("cow_pwrite_p50", "CoW: first 4 KiB pwrite into a reflinked page, median (us)", "lower"),
    ("cow_pwrite_p99", "CoW: first 4 KiB pwrite into a reflinked page, p99 (us)", "lower"),
    ("cow_mmap_p50", "CoW: first mmap store into a reflinked page, median (us)", "lower"),
    ("cow_mmap_p99", "CoW: first mmap store into a reflinked page, p99 (us)", "lower"),
    ("cow_pwrite_extents_after", "CoW: clone extents after the {cow_pages} pwrites (FIEMAP)", "info"),
    ("cow_mmap_extents_after", "CoW: clone extents after the {cow_pages} mmap stores (FIEMAP)", "info"),
]
for t in (1, 2):
    for bs in ("4k", "1m"):
        for pat in ("seq", "rand"):
            for op in ("read", "write"):
                ROWS.append((f"{pat}_{op}_{bs}_{t}t",
                             f"data: {'sequential' if pat == 'seq' else 'random'} {bs.upper().replace('K', ' KiB').replace('M', ' MiB')} "
                             f"p{op} ({t} thread{'s' if t > 1 else ''}, MiB/s)", "higher"))
ROWS += [
    ("append_fdatasync_ops", "data: 4 KiB append + fdatasync (ops/s)", "higher"),
    ("append_fdatasync_p50", "data: 4 KiB append + fdatasync, median (us)", "lower"),
    ("append_fdatasync_p99", "data: 4 KiB append + fdatasync, p99 (us)", "lower"),
    ("mmap_load", "data: mmap load, memcpy from a {mmap_mib} MiB mapping (MiB/s)", "higher"),
    ("mmap_store", "data: mmap store, memcpy into a {mmap_mib} MiB mapping (MiB/s)", "higher"),
    ("meta_create", "metadata: create {meta_n} files in one directory (ops/s)", "higher"),
    ("meta_stat", "metadata: stat {meta_n} files (ops/s)", "higher"),
    ("meta_readdir", "metadata: readdir of {meta_n} entries (entries/s)", "higher"),
    ("meta_rename", "metadata: rename {meta_n} files (ops/s)", "higher"),
    ("meta_unlink", "metadata: unlink {meta_n} files (ops/s)", "higher"),
    ("scale_reflinks_s", "scale: {scale_n} reflinks of one block into one file (s)", "lower"),
    ("scale_extents", "scale: extents of that file (FIEMAP)", "info"),
    ("scale_map_read_ms", "scale: mmap and read every page of it (ms)", "lower"),
    ("scale_rmap_shared_pages", "scale: rmap shared pages (ferrofs debugfs)", "info"),
    ("scale_rmap_owners", "scale: rmap owners (ferrofs debugfs)", "info"),
    ("scale_rmap_bytes", "scale: rmap in-memory bytes (ferrofs debugfs)", "info"),
    ("mount_ms", "mount with {meta_n} files in one directory (ms)", "lower"),
    ("umount_ms", "umount with {meta_n} files, after sync (ms)", "lower"),
]
FAIL_ROWS = ["setup_failed", "reflink_failed", "cow_failed", "bw_failed", "append_failed", "mmapbw_failed",
             "meta_failed", "scale_failed", "remount_failed"]


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


def build(raw, machine, wall, vm_rc):
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


def table(res):
    sm, p = res["summary"], res["params"]
    out = ["| measurement | better | ferrofs | XFS | ext4 | ferrofs / best peer |",
           "| --- | --- | --- | --- | --- | --- |"]
    for m, label, better in ROWS:
        ss = {fs: lookup(sm.get(fs, {}), m) for fs in FSS}
        if all(s is None for s in ss.values()):
            continue
        ratio = "—"
        f = ss["ferrofs"]
        peers = [(fs, ss[fs]["median"]) for fs in PEERS if ss[fs] and "median" in ss[fs]]
        if better != "info" and f and "median" in f and "error" not in f and peers:
            pick = max if better == "higher" else min
            bfs, bv = pick(peers, key=lambda x: x[1])
            if bv:
                r = f["median"] / bv
                good = r >= 1 if better == "higher" else r <= 1
                ratio = f"{r:.2f} vs {NAMES[bfs]} ({'ferrofs better' if good else 'ferrofs worse'})"
        elif f and "median" not in f:
            ratio = f"ferrofs {f['error']}"
        arrow = {"higher": "higher", "lower": "lower", "info": "(info)"}[better]
        out.append(f"| {label.format(**p)} | {arrow} | " + " | ".join(cell(ss[fs]) for fs in FSS) + f" | {ratio} |")
    for m in FAIL_ROWS:
        for fs in FSS:
            s = sm.get(fs, {}).get(m)
            if s:
                out.append(f"| {m.replace('_', ' ')} | — | " + " | ".join(cell(s) if x == fs else "" for x in FSS) + " | |")
    dev = sm.get("device", {})
    lines = ["\n".join(out), ""]
    if dev:
        lines.append("Device limit (O_DIRECT 1 MiB sequential I/O on the raw /dev/pmem0, before each mkfs): "
                     f"write {cell(dev.get('dev_odirect_write_1m'))} MiB/s, read {cell(dev.get('dev_odirect_read_1m'))} MiB/s.")
    lines.append(f"Cells: median (min–max) of {p['reps']} runs, each on a freshly made filesystem. "
                 "\"n/a\": the filesystem has no such operation (ext4 has no reflink).")
    return "\n".join(lines)


def header(res):
    m = res["wall_seconds"]
    return (f"{res['mode'].capitalize()} mode, {res['date']}; `make bench{' FULL=1' if res['mode'] == 'full' else ''}` "
            f"took {int(m) // 60} min {int(m) % 60} s.\n\nMachine: {res['machine']}. "
            "Under TCG emulation absolute figures mean little; compare within a row.")


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: no matplotlib, no plot")
        return
    sm = res["summary"]
    bw = [m for m, _, b in ROWS if m.startswith(("seq_", "rand_", "mmap_"))
          and any(m in sm.get(fs, {}) for fs in FSS)]
    lats = [q for q in ("cow_pwrite_q", "cow_mmap_q", "append_fdatasync_q") if any(q in sm.get(fs, {}) for fs in FSS)]
    fig, axes = plt.subplots(1 + (1 if lats else 0), 1, figsize=(13, 10), squeeze=False)
    ax = axes[0][0]
    w = 0.27
    colors = {"ferrofs": "tab:red", "xfs": "tab:blue", "ext4": "tab:green"}
    for i, fs in enumerate(FSS):
        xs, ys, lo, hi = [], [], [], []
        for j, m in enumerate(bw):
            s = sm.get(fs, {}).get(m)
            if s and "median" in s:
                xs.append(j + (i - 1) * w)
                ys.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
        ax.bar(xs, ys, w, yerr=[lo, hi], label=NAMES[fs], color=colors[fs], capsize=2)
    dev = sm.get("device", {})
    for m, ls in (("dev_odirect_read_1m", "--"), ("dev_odirect_write_1m", ":")):
        if dev.get(m, {}).get("median"):
            ax.axhline(dev[m]["median"], color="k", ls=ls, lw=1, label=f"device {m.split('_')[2]} (O_DIRECT 1 MiB)")
    ax.set_xticks(range(len(bw)))
    ax.set_xticklabels([m.replace("_", "\n") for m in bw], fontsize=7)
    ax.set_ylabel("MiB/s (median, bars min–max)")
    ax.set_yscale("log")
    ax.set_title(f"bandwidth, {res['mode']} mode, {res['date']} (qemu TCG: compare ratios, not absolutes)")
    ax.legend(fontsize=8)
    if lats:
        ax = axes[1][0]
        styles = {"cow_pwrite_q": "-", "cow_mmap_q": "--", "append_fdatasync_q": ":"}
        for fs in FSS:
            for q in lats:
                s = sm.get(fs, {}).get(q)
                if s:
                    ax.plot(s["quantiles"], [i / 100 for i in range(101)], styles[q], color=colors[fs],
                            label=f"{NAMES[fs]} {q[:-2]}")
        ax.set_xscale("log")
        ax.set_xlabel("latency (us)")
        ax.set_ylabel("fraction of operations")
        ax.set_title("latency CDF: first write into a reflinked page (pwrite, mmap store), 4 KiB append+fdatasync")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw")
    ap.add_argument("--from", dest="src")
    ap.add_argument("--out")
    ap.add_argument("--machine", default="")
    ap.add_argument("--wall", type=float, default=0)
    ap.add_argument("--vm-rc", type=int, default=0)
    ap.add_argument("--readme")
    a = ap.parse_args()
    if a.raw:
        res = build(json.load(open(a.raw)), a.machine, a.wall, a.vm_rc)
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    else:
        res = json.load(open(a.src))
    if a.readme:
        readme(res, a.readme)
        return
    md = header(res) + "\n\n" + table(res) + "\n"
    open(os.path.join(a.out, "table.md"), "w").write(md)
    print(md)
    plot(res, os.path.join(a.out, "bench.png"))


if __name__ == "__main__":
    main()
