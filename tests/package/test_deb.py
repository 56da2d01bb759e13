"""The .deb as a user installs it (issue 11): apt-get install, the menu entry and the uspslink://
handler, gio open cold-starting the installed app and reaching a running one, the whole sandbox
sign-in with the installed app, and apt-get remove taking the handler away.

Run by scripts/test after `scripts/package`, inside scripts/with-desktop, as root."""

import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEB_DIR = ROOT / "target" / "release" / "bundle" / "deb"
INSTALLED = pathlib.Path("/usr/bin/uspslink")
DESKTOP = pathlib.Path("/usr/share/applications/uspslink.desktop")
STATE = "packageTestState0123456789"


def run(*cmd, env=None, timeout=120, check=True):
    return subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=timeout, check=check)


def user_env(home: pathlib.Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "LANG")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"))
    return env


def gio_open(url: str, env) -> None:
    """`gio open` as a browser does it. The app it starts inherits gio's output: not a pipe, or this
    would wait for the app to exit."""
    subprocess.run(["gio", "open", url], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60, check=True)


def handler(env) -> str:
    return run("xdg-mime", "query", "default", "x-scheme-handler/uspslink", env=env, check=False).stdout.strip()


def installed_pids() -> list[int]:
    """The installed app, started by path (WebDriver) or by name (the .desktop entry's Exec)."""
    out = run("pgrep", "-f", "-x", f"({INSTALLED}|uspslink)( .*)?", check=False).stdout
    return [int(p) for p in out.split()]


def wait_until(check, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def deb():
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root; the test command runs as root")
    debs = sorted(DEB_DIR.glob("uspslink_*_amd64.deb"))
    assert debs, f"build the package first (bash scripts/package): nothing in {DEB_DIR}"
    path = debs[-1]
    t0 = time.monotonic()
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", str(path), timeout=600,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    took = time.monotonic() - t0
    print(f"\n.deb: {path.name}, {path.stat().st_size / 1e6:.2f} MB, installed in {took:.1f} s")
    yield path
    for pid in installed_pids():
        os.kill(pid, 9)
    run("apt-get", "remove", "-y", "-qq", "uspslink", check=False, timeout=300,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def test_menu_entry_and_scheme_handler(deb, tmp_path):
    assert INSTALLED.exists()
    entry = DESKTOP.read_text()
    assert re.search(r"^Exec=uspslink %u$", entry, re.M), entry
    assert re.search(r"^MimeType=x-scheme-handler/uspslink;$", entry, re.M), entry
    assert re.search(r"^Icon=uspslink$", entry, re.M), entry
    assert re.search(r"^Categories=.+", entry, re.M), entry
    assert re.search(r"^Name=uspslink$", entry, re.M), entry
    icons = list(pathlib.Path("/usr/share/icons/hicolor").glob("*/apps/uspslink.png"))
    assert icons, "the icon is installed"
    run("desktop-file-validate", str(DESKTOP))
    assert handler(user_env(tmp_path)) == "uspslink.desktop", "xdg-mime names the package's entry"


def test_gio_open_cold_starts_the_installed_app_and_reaches_the_running_one(deb, tmp_path):
    env = user_env(tmp_path)
    log = tmp_path / ".local/share/org.uspslink.desktop/logs/uspslink.log"
    url = f"uspslink://oauth/callback?code=abc&state={STATE}"
    t0 = time.monotonic()
    gio_open(url, env)
    wait_until(lambda: log.exists() and "refused a uspslink:// link" in log.read_text(), what="the cold start to take the URL")
    print(f"gio open cold start: the installed app took the URL after {time.monotonic() - t0:.2f} s")
    assert len(installed_pids()) == 1
    gio_open(url, env)
    wait_until(lambda: log.read_text().count("refused a uspslink:// link") >= 2, what="the running app to take the URL")
    time.sleep(0.5)
    assert len(installed_pids()) == 1, "the second open reached the running app instead of starting another"
    assert STATE not in log.read_text()


@pytest.fixture(autouse=True)
def no_installed_app_left():
    """Each test starts and ends with no installed uspslink running (a left one would take the next
    test's launch over single-instance)."""
    yield
    for sig in (15, 9):
        for pid in installed_pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            wait_until(lambda: not installed_pids(), timeout=5, what="the installed app to close")
            return
        except AssertionError:
            continue


def test_the_installed_app_runs_the_whole_sandbox_sign_in(deb):
    """The link test of the end-to-end suite, with the installed binary: it does not register the
    scheme itself (its package did), so the scripted browser's `gio open` must reach it through the
    package's handler."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short",
         str(ROOT / "tests/e2e/test_link.py::test_link_succeeds_tokens_only_in_the_keyring")],
        env={**os.environ, "USPSLINK_BINARY": str(INSTALLED)}, capture_output=True, text=True, timeout=300)
    print(r.stdout[-3000:], r.stderr[-2000:])
    assert r.returncode == 0


def test_removing_the_package_removes_the_handler(deb, tmp_path):
    run("apt-get", "remove", "-y", "-qq", "uspslink", timeout=300, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert not DESKTOP.exists() and not INSTALLED.exists()
    assert handler(user_env(tmp_path)) != "uspslink.desktop"
