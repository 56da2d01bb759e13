"""The measuring half of scripts/bench (run inside scripts/with-desktop)."""

import gzip
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARY = pathlib.Path(os.environ.get("USPSLINK_BINARY", ROOT / "target" / "release" / "uspslink"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
IDLE_SECONDS = 3.0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in pathlib.Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo.extend(children.get(q, []))
    return out


def pss_kib(pid: int) -> int:
    try:
        for line in (pathlib.Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_run() -> tuple[float, int, float, float]:
    home = pathlib.Path(tempfile.mkdtemp(prefix="uspslink-bench-"))
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "d"), XDG_CONFIG_HOME=str(home / "c"),
               XDG_CACHE_HOME=str(home / "k"))
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BINARY)], env=env, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    linked = threading.Event()
    lines: list[str] = []
    app_ms = [0.0]
    stamps = {}

    def reader():
        for line in proc.stderr:
            lines.append(line)
            m = re.search(r"interactive after (\d+) ms", line)
            if m and not ready.is_set():
                stamps["ready"] = time.monotonic()
                app_ms[0] = float(m.group(1))
                ready.set()
            if "OAuth callback received" in line:
                stamps["link"] = time.monotonic()
                linked.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the app never became interactive:\n" + "".join(lines[-20:]))
        wall = stamps["ready"] - t0
        time.sleep(IDLE_SECONDS)
        pss = sum(pss_kib(p) for p in descendants(proc.pid))
        t1 = time.monotonic()
        subprocess.run([str(BINARY), "uspslink://oauth/callback?code=BENCH123&state=benchState01234567"], env=env,
                       capture_output=True, timeout=15)
        if not linked.wait(10):
            raise RuntimeError("the deep link never arrived")
        link_ms = (stamps["link"] - t1) * 1000
        return wall, pss, app_ms[0], link_ms
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    results = [one_run() for _ in range(RUNS)]
    walls = [r[0] for r in results]
    psss = [r[1] for r in results]
    mains = [r[2] for r in results]
    links = [r[3] for r in results]
    js = b"".join(p.read_bytes() for p in sorted((ROOT / "ui" / "dist" / "assets").glob("*.js")))
    print(f"runs: {RUNS} (fresh profile each), Xvfb, {os.cpu_count()} cores")
    print(f"start to interactive (launch -> first paint + 2 frames): median {statistics.median(walls):.3f} s "
          f"[{min(walls):.3f}..{max(walls):.3f}]")
    print(f"  of which main() -> interactive: median {statistics.median(mains):.0f} ms")
    print(f"memory at idle dashboard (summed PSS, app + WebKit processes): median {statistics.median(psss) / 1024:.1f} MiB "
          f"[{min(psss) / 1024:.1f}..{max(psss) / 1024:.1f}]")
    print(f"deep link, second launch -> running app has it: median {statistics.median(links):.0f} ms")
    print(f"release binary: {BINARY.stat().st_size / 1e6:.2f} MB")
    print(f"UI JavaScript gzipped: {len(gzip.compress(js, 9)) / 1024:.1f} KiB ({len(js) / 1024:.1f} KiB raw)")


if __name__ == "__main__":
    main()
