#!/usr/bin/env python3
"""chown and chmod racing fsync and writeback: the owner and mode a setattr
stores must be the ones the media keeps.

fsync and the flusher's write_inode store the lazily kept times, without
i_rwsem. They once stored the owner and mode too, from a copy read before
the engine lock: a chown that overtook them on that lock was undone on
the media, the next read of the inode (after eviction) brought the old
owner back, and the quota usage stayed with the new one (the rare
55-quota failure: usage differed from quotacheck's recount). Now they
store times only, and refresh says in the kernel log when the media's
owner is not the VFS inode's.

For FERROFS_T_OWNER_SECONDS (20; 60 long), on 16 files owned by root:
- four setattr threads chown (IDs 0, 8000, 8001) and chmod (0600, 0640,
  0644, 0755) the files, each remembering what it set last;
- two threads dirty a file's mtime (a one-byte write) and fsync it;
- two threads fallocate past EOF and punch it again (each call refreshes
  the inode from the engine under i_rwsem, and holds the engine lock
  exclusively, so the others queue on it);
- the caches are dropped every second (clean, closed inodes are evicted
  and read again from the media).
Before each chown, a setattr thread checks that the file still has the
owner and mode it set last (it is their only writer). Then, after sync and
a last drop_caches with nothing open, each file's owner and mode must be
the last ones set; the kernel log must have no
"on media, ... in memory" line; fsck.ferrofs -n must be clean.
"""
import os
import random
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
import sys  # noqa: E402
sys.path.insert(0, HERE)
import stresslib as S  # noqa: E402

IDS = (0, 8000, 8001)
MODES = (0o600, 0o640, 0o644, 0o755)
NFILES = 16


def main():
    secs = S.knob("SECONDS", 20, 60, prefix="FERROFS_T_OWNER_")
    k = S.Kmsg()
    S.sh(f"mkfs.ferrofs -f -q {S.DEV}")
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    files = [f"{S.MNT}/f{i}" for i in range(NFILES)]
    for f in files:
        with open(f, "wb") as fh:
            fh.write(os.urandom(8192))
    last = {f: (0, 0, 0o644) for f in files}
    lock = threading.Lock()
    stop = threading.Event()
    counts = {"setattr": 0, "fsync": 0, "refresh": 0}

    seen = []

    def setattrs(mine, seed):
        rng = random.Random(seed)
        while not stop.is_set():
            f = rng.choice(mine)
            # only this thread changes f's owner and mode: they must still
            # be what it set last (a refresh or a re-read after eviction
            # brings in what the media holds)
            st = os.lstat(f)
            got = (st.st_uid, st.st_gid, st.st_mode & 0o7777)
            if got != last[f]:
                seen.append(f"{f}: {got[0]}:{got[1]} {got[2]:o} seen, {last[f][0]}:{last[f][1]} {last[f][2]:o} set last")
            uid, gid, mode = rng.choice(IDS), rng.choice(IDS), rng.choice(MODES)
            os.chown(f, uid, gid)
            os.chmod(f, mode)
            with lock:
                last[f] = (uid, gid, mode)
                counts["setattr"] += 1

    def fsyncs(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            fd = os.open(rng.choice(files), os.O_WRONLY)
            try:
                os.pwrite(fd, b"x", rng.randrange(8192))
                os.fsync(fd)
            finally:
                os.close(fd)
            with lock:
                counts["fsync"] += 1

    def refreshes(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            fd = os.open(rng.choice(files), os.O_WRONLY)
            try:
                os.posix_fallocate(fd, 8192, 65536)  # grows the size: then truncate back
                os.ftruncate(fd, 8192)
            finally:
                os.close(fd)
            with lock:
                counts["refresh"] += 1

    stop_drop = S.cache_dropper(1)
    # each file has one setattr thread, so "last" is what it holds
    threads = [threading.Thread(target=setattrs, args=(files[i::4], i)) for i in range(4)]
    threads += [threading.Thread(target=fsyncs, args=(10 + i,)) for i in range(2)]
    threads += [threading.Thread(target=refreshes, args=(20 + i,)) for i in range(2)]
    S.mark(f"57-owner-race: chown/chmod against fsync and refreshes, {secs}s")
    t0 = time.time()
    for t in threads:
        t.start()
    time.sleep(secs)
    stop.set()
    for t in threads:
        t.join()
    stop_drop()
    S.sh("sync")
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("3")
    wrong = []
    for f in files:
        st = os.lstat(f)
        got = (st.st_uid, st.st_gid, st.st_mode & 0o7777)
        if got != last[f]:
            wrong.append(f"{f}: {got[0]}:{got[1]} {got[2]:o} read back, {last[f][0]}:{last[f][1]} {last[f][2]:o} set last")
    log = k.new()
    stale = [line for line in log if "on media," in line]
    assert not seen, f"owner or mode changed behind the setattr that set it ({len(seen)} times):\n" + "\n".join(seen[:10])
    assert not wrong, "owner or mode lost to a racing fsync or writeback:\n" + "\n".join(wrong)
    assert not stale, stale
    assert counts["setattr"] > 100 and counts["fsync"] > 100 and counts["refresh"] > 10, counts
    os.chdir("/")
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    k.check("owner race")
    print(f"owner race: {counts['setattr']} chown+chmod, {counts['fsync']} fsync, {counts['refresh']} "
          f"refreshes on {NFILES} files in {time.time() - t0:.0f}s; owner and mode as set, on media too")
    S.summary("owner-race", **counts)


if __name__ == "__main__":
    main()
