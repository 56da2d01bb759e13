"""The measuring half of scripts/bench (run inside scripts/with-desktop).

uspslink and a bare Tauri window (bench/bare: same Tauri, same window size, a one-line page) are
started alternately, each in a fresh profile; "interactive" is the same for both: the page's first
paint, two more frames and one IPC round trip, timed from the launch to the line the app prints.
Memory is the summed PSS of the process and its WebKit processes after 3 s at idle. Also printed:
uspslink's start-up timeline (USPSLINK_LOG=debug), deep-link receipt, start-up and memory with 50
businesses in the progress file (USPSLINK_BENCH_BUSINESSES), binary and UI sizes, and the
background: uspslink started as at login (`--background`, straight into the tray, a stand-in tray host
on the session bus), its summed PSS, and its CPU time and wake-ups over USPSLINK_BENCH_IDLE_MINUTES
(default 10) idle minutes."""

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
BARE = pathlib.Path(os.environ.get("USPSLINK_BARE_BINARY", ROOT / "target" / "release" / "uspslink-bare-window"))
PAIRS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
IDLE_SECONDS = 3.0
BUSINESSES = int(os.environ.get("USPSLINK_BENCH_BUSINESSES", "50"))
READY = re.compile(r"interactive after (\d+) ms")
PHASE = re.compile(r"uspslink_app::startup: (.+?) at (\d+) ms")


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


class Run:
    """One start of a binary in a fresh profile: wall time to interactive, PSS at idle, the log."""

    def __init__(self, binary: pathlib.Path, deep_link: bool = False, businesses: int = 0):
        home = pathlib.Path(tempfile.mkdtemp(prefix="uspslink-bench-"))
        if businesses:
            write_businesses(home / "d" / "org.uspslink.desktop" / "uspslink.json", businesses)
        env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "d"), XDG_CONFIG_HOME=str(home / "c"),
                   XDG_CACHE_HOME=str(home / "k"), USPSLINK_LOG="info,uspslink_app::startup=debug")
        t0 = time.monotonic()
        proc = subprocess.Popen([str(binary)], env=env, stderr=subprocess.PIPE, text=True)
        ready, linked = threading.Event(), threading.Event()
        self.lines: list[str] = []
        stamps: dict[str, float] = {}

        def reader():
            for line in proc.stderr:
                self.lines.append(line)
                if READY.search(line) and not ready.is_set():
                    stamps["ready"] = time.monotonic()
                    ready.set()
                # The bench's callback answers no sign-in: the app refuses it, which is the moment it has it.
                if "OAuth callback received" in line or "refused a uspslink:// link" in line:
                    stamps["link"] = time.monotonic()
                    linked.set()

        threading.Thread(target=reader, daemon=True).start()
        try:
            if not ready.wait(30):
                raise RuntimeError(f"{binary.name} never became interactive:\n" + "".join(self.lines[-20:]))
            self.wall = stamps["ready"] - t0
            time.sleep(IDLE_SECONDS)
            self.by_process: dict[str, int] = {}
            for p in descendants(proc.pid):
                try:
                    name = (pathlib.Path("/proc") / str(p) / "comm").read_text().strip()
                except OSError:
                    continue
                name = "the app process" if p == proc.pid else name
                self.by_process[name] = self.by_process.get(name, 0) + pss_kib(p)
            self.pss_kib = sum(self.by_process.values())
            self.link_ms = None
            if deep_link:
                t1 = time.monotonic()
                subprocess.run([str(binary), "uspslink://oauth/callback?code=BENCH123&state=benchState01234567"],
                               env=env, capture_output=True, timeout=15)
                if not linked.wait(10):
                    raise RuntimeError("the deep link never arrived")
                self.link_ms = (stamps["link"] - t1) * 1000
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def phases(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines:
            m = PHASE.search(line)
            if m and m.group(1) not in out:
                out[m.group(1)] = int(m.group(2))
        return out


def write_businesses(path: pathlib.Path, count: int) -> None:
    """A progress file with `count` businesses in the Sandbox, as a 3PL's install has them: each part
    way through its guide (every third with its identifiers accepted, waiting for USPS's approval)."""
    import json
    steps = ["before_you_start", "stamps_account", "usps_business_account", "payment_account",
             "link_business_account", "identifiers", "waiting_for_approval"]
    store: dict = {"format": 1, "preferences": {"environment": "sandbox"},
                   "businesses": {"list": [{"id": i, "name": f"Client {i:02d}"} for i in range(1, count + 1)],
                                  "current": 1, "next_id": count + 1}}
    for i in range(1, count + 1):
        prefix = "" if i == 1 else f"business-{i}/"
        done = steps[: i % 7]
        store[f"{prefix}sandbox/progress"] = {
            "popup_dismissed": True, "current_step": steps[len(done)], "completed": done,
            "link_complete": i % 3 == 0, "checklist": [],
        }
        store[f"{prefix}sandbox/stamps"] = {"key_checked": True, "carrier_id": f"se-{100000 + i}", "verified": i % 2 == 0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(store))


def cpu_and_wakeups(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) of the process and its children so far, and the voluntary context
    switches of all its threads (each one a wake-up)."""
    ticks, switches = 0, 0
    for p in descendants(pid):
        try:
            fields = (pathlib.Path("/proc") / str(p) / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            for task in (pathlib.Path("/proc") / str(p) / "task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK"), switches


def background(minutes: float) -> None:
    """uspslink in the tray with no window, as it starts at login: memory, then CPU over `minutes`."""
    home = pathlib.Path(tempfile.mkdtemp(prefix="uspslink-bench-bg-"))
    tray_log = home / "tray.jsonl"
    watcher = subprocess.Popen([sys.executable, str(ROOT / "tests" / "e2e" / "sni_watcher.py"), str(tray_log)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT / "tests" / "e2e")
    watcher.stdout.readline()
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), USPSLINK_REGISTER_SCHEME="0")
    app = subprocess.Popen([str(BINARY), "--background"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        pids = descendants(app.pid)
        pss = sum(pss_kib(p) for p in pids) / 1024
        registered = tray_log.exists() and tray_log.read_text().strip() != ""
        cpu0, wake0 = cpu_and_wakeups(app.pid)
        time.sleep(minutes * 60)
        cpu1, wake1 = cpu_and_wakeups(app.pid)
        print(f"background (started as at login, in the tray{'' if registered else ': NOT registered'}, no window):")
        print(f"  summed PSS         {pss:.1f} MiB over {len(pids)} process(es) (budget 40 MiB)")
        print(f"  over {minutes:g} idle min:  CPU {cpu1 - cpu0:.2f} s, {wake1 - wake0} wake-ups "
              f"({(wake1 - wake0) / (minutes * 60):.2f}/s)")
    finally:
        app.terminate()
        app.wait(20)
        watcher.terminate()


def median(xs):
    return statistics.median(xs)


def main() -> None:
    bare, app = [], []
    for i in range(PAIRS):
        # Alternate which goes first, so neither always starts on a warmer machine.
        if i % 2 == 0:
            bare.append(Run(BARE))
            app.append(Run(BINARY, deep_link=True))
        else:
            app.append(Run(BINARY, deep_link=True))
            bare.append(Run(BARE))
    bw, aw = [r.wall for r in bare], [r.wall for r in app]
    bm, am = [r.pss_kib / 1024 for r in bare], [r.pss_kib / 1024 for r in app]
    print(f"pairs: {PAIRS} (alternating, fresh profile each), Xvfb, {os.cpu_count()} cores")
    print(f"interactive (launch -> first paint + 2 frames + 1 IPC round trip), median [min..max]:")
    print(f"  bare Tauri window  {median(bw):.3f} s [{min(bw):.3f}..{max(bw):.3f}]")
    print(f"  uspslink           {median(aw):.3f} s [{min(aw):.3f}..{max(aw):.3f}]")
    print(f"  ratio              {median(aw) / median(bw):.2f}x (budget 1.15x)")
    print(f"memory at idle (summed PSS, process + WebKit processes), median [min..max]:")
    print(f"  bare Tauri window  {median(bm):.1f} MiB [{min(bm):.1f}..{max(bm):.1f}]")
    print(f"  uspslink           {median(am):.1f} MiB [{min(am):.1f}..{max(am):.1f}]")
    print(f"  ratio              {median(am) / median(bm):.2f}x (budget 1.10x)")
    print("  by process (median MiB): bare | uspslink")
    for n in sorted({n for r in bare + app for n in r.by_process}):
        b = median([r.by_process.get(n, 0) / 1024 for r in bare])
        a = median([r.by_process.get(n, 0) / 1024 for r in app])
        print(f"    {n:<28} {b:7.1f} | {a:7.1f}")
    names: list[str] = []
    for r in app:
        for n in r.phases():
            if n not in names:
                names.append(n)
    print("uspslink start-up timeline (ms since main(), median of the runs):")
    for n in sorted(names, key=lambda n: median([r.phases().get(n, 0) for r in app])):
        values = [r.phases()[n] for r in app if n in r.phases()]
        print(f"  {n:<34} {median(values):>6.0f}")
    for phase in ("setup", "page load started"):
        at = [int(m.group(1)) for r in bare for l in r.lines if (m := re.search(f"bare: {phase} at (\\d+) ms", l))]
        if at:
            print(f"  (bare window: {phase} at {median(at):.0f} ms)")
    many = [Run(BINARY, businesses=BUSINESSES) for _ in range(min(PAIRS, 5))]
    mw, mm = [r.wall for r in many], [r.pss_kib / 1024 for r in many]
    assert all("sandbox listening" in "".join(r.lines) for r in many)
    print(f"{BUSINESSES} businesses in the progress file (the dashboard lists them all), median [min..max] of {len(many)}:")
    print(f"  interactive        {median(mw):.3f} s [{min(mw):.3f}..{max(mw):.3f}] ({median(mw) / median(bw):.2f}x the bare window; "
          f"{median(mw) / median(aw):.2f}x uspslink with one)")
    print(f"  summed PSS         {median(mm):.1f} MiB [{min(mm):.1f}..{max(mm):.1f}] ({median(mm) / median(bm):.2f}x the bare window)")
    links = [r.link_ms for r in app if r.link_ms is not None]
    print(f"deep link, second launch -> running app has it: median {median(links):.0f} ms")
    js = b"".join(p.read_bytes() for p in sorted((ROOT / "ui" / "dist" / "assets").glob("*.js")))
    print(f"release binary: {BINARY.stat().st_size / 1e6:.2f} MB (bare window {BARE.stat().st_size / 1e6:.2f} MB)")
    print(f"UI JavaScript gzipped: {len(gzip.compress(js, 9)) / 1024:.1f} KiB ({len(js) / 1024:.1f} KiB raw)")
    background(float(os.environ.get("USPSLINK_BENCH_IDLE_MINUTES", "10")))


if __name__ == "__main__":
    main()
