"""The Windows installer and the Windows exe, under Wine (scripts/test runs this after
`scripts/package windows`, under Xvfb).

Each test gets a fresh Wine prefix (a fresh "Windows user") with the test-only bcryptprimitives.dll
shim (prefix.sh). What only a real Windows shows is not claimed here: Wine has no WebView2 Runtime,
so the window itself never opens; the GUI start is tested up to the point where it says so.
"""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUNDLE = REPO / "target/x86_64-pc-windows-gnu/release/bundle/nsis"
HERE = pathlib.Path(__file__).resolve().parent
IDENTIFIER = "org.uspslink.desktop"
SCHEME_KEY = r"HKCU\Software\Classes\uspslink"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\uspslink"
WEBVIEW2_TITLE = "uspslink needs Microsoft Edge WebView2"
EXIT_WEBVIEW_MISSING = 3


def installer() -> pathlib.Path:
    found = sorted(BUNDLE.glob("uspslink_*_x64-setup.exe"))
    assert found, f"no installer in {BUNDLE}: run `bash scripts/package windows` first"
    return found[-1]


class Wine:
    """One Wine prefix: its environment, its registry, its paths as Linux sees them."""

    def __init__(self, prefix: pathlib.Path):
        self.prefix = prefix
        subprocess.run([str(HERE / "prefix.sh"), str(prefix)], check=True, timeout=120)
        self.env = dict(os.environ, WINEPREFIX=str(prefix), WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
        user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        self.home = prefix / "drive_c/users" / user
        self.windows_home = rf"C:\users\{user}"

    def run(self, *args, timeout=60, check=True, env=None) -> subprocess.CompletedProcess:
        done = subprocess.run(["wine", *args], env=env or self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def wait(self):
        """Until every process of the prefix has ended (an uninstaller runs on from a copy in TEMP)."""
        subprocess.run(["wineserver", "--wait"], env=self.env, timeout=120, check=True)

    def reg_value(self, key: str, name: str | None = None) -> str | None:
        """A value as `reg query` prints it (`    NAME    REG_SZ    DATA`); None when absent."""
        args = ["reg", "query", key] + (["/v", name] if name is not None else ["/ve"])
        done = self.run(*args, check=False)
        if done.returncode != 0:
            return None
        for line in done.stdout.splitlines():
            m = re.match(r"^\s{4}(.*?)\s{4}(REG_\w+)(?:\s{4}(.*))?$", line)
            if m and m.group(1) == (name if name is not None else "(Default)"):
                return m.group(3) or ""
        return None

    def key_exists(self, key: str) -> bool:
        return self.run("reg", "query", key, check=False).returncode == 0

    @property
    def install_dir(self) -> pathlib.Path:
        return self.home / "AppData/Local/Programs/uspslink"

    @property
    def windows_exe(self) -> str:
        return rf"{self.windows_home}\AppData\Local\Programs\uspslink\uspslink.exe"

    @property
    def shortcut(self) -> pathlib.Path:
        return self.home / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs/uspslink.lnk"

    @property
    def data_dir(self) -> pathlib.Path:
        return self.home / "AppData/Roaming" / IDENTIFIER

    @property
    def local_dir(self) -> pathlib.Path:
        return self.home / "AppData/Local" / IDENTIFIER

    def install(self):
        self.run(str(installer()), "/S", timeout=120)
        self.wait()

    def uninstall(self, *args):
        self.run(rf"{self.windows_home}\AppData\Local\Programs\uspslink\uninstall.exe", "/S", *args, timeout=120)
        self.wait()


@pytest.fixture
def wine(tmp_path):
    w = Wine(tmp_path / "prefix")
    yield w
    subprocess.run(["wineserver", "-k"], env=w.env, timeout=60)
    shutil.rmtree(tmp_path / "prefix", ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_installs_for_the_user_registers_the_scheme_runs_and_uninstalls_keeping_the_data(wine):
    size = installer().stat().st_size
    print(f"installer: {installer().name}, {size / 1e6:.2f} MB")
    wine.install()

    # The files, per user, without administrator rights.
    for name in ["uspslink.exe", "WebView2Loader.dll", "uninstall.exe"]:
        assert (wine.install_dir / name).is_file(), name
    exe_bytes = (wine.install_dir / "uspslink.exe").read_bytes()
    assert exe_bytes[:2] == b"MZ"
    # Version information (tauri-build's resource): readable in Explorer's Properties > Details.
    assert "ProductVersion".encode("utf-16-le") in exe_bytes
    assert "uspslink".encode("utf-16-le") in exe_bytes

    # The Start-menu entry points at the installed exe.
    assert wine.shortcut.is_file()
    assert b"uspslink.exe" in wine.shortcut.read_bytes()

    # uspslink:// for this user, as the browser's redirect needs it.
    assert wine.reg_value(SCHEME_KEY, "URL Protocol") == ""
    assert wine.reg_value(SCHEME_KEY + r"\shell\open\command") == f'"{wine.windows_exe}" "%1"'
    assert wine.reg_value(UNINSTALL_KEY, "DisplayVersion") is not None
    # Wine has no WebView2 Runtime, and the installer noticed (a silent install goes on).
    assert wine.reg_value(r"HKCU\Software\uspslink", "WebView2AtInstall") == "missing"

    # The installed exe runs: its sandbox answers over HTTP.
    port = free_port()
    server = subprocess.Popen(
        ["wine", str(wine.install_dir / "uspslink.exe"), "sandbox", "--port", str(port)],
        env=wine.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/carriers", headers={"API-Key": "sandbox_windows1"}
                )
                with urllib.request.urlopen(req, timeout=5) as answer:
                    assert answer.status == 200
                    assert b"carriers" in answer.read()
                break
            except OSError:
                assert server.poll() is None, f"the sandbox exited with {server.returncode}"
                assert time.monotonic() < deadline, "the sandbox did not answer within 60 s"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The user's progress, as the app writes it.
    wine.data_dir.mkdir(parents=True, exist_ok=True)
    (wine.data_dir / "uspslink.json").write_text('{"sandbox/progress": {}}')
    (wine.local_dir / "logs").mkdir(parents=True, exist_ok=True)
    (wine.local_dir / "logs/uspslink.log").write_text("a log line\n")

    wine.uninstall()
    assert not wine.install_dir.exists(), list(wine.install_dir.iterdir())
    assert not wine.shortcut.exists()
    assert not wine.key_exists(SCHEME_KEY)
    assert not wine.key_exists(UNINSTALL_KEY)
    assert not wine.key_exists(r"HKCU\Software\uspslink")
    # Kept unless asked: a reinstall carries on where the user left off.
    assert (wine.data_dir / "uspslink.json").read_text() == '{"sandbox/progress": {}}'
    assert (wine.local_dir / "logs/uspslink.log").is_file()

    # Asked: the data goes too.
    wine.install()
    assert (wine.data_dir / "uspslink.json").is_file(), "an install never touches the data"
    wine.uninstall("/DELETEUSERDATA")
    assert not wine.data_dir.exists()
    assert not wine.local_dir.exists()
    assert not wine.install_dir.exists()


def test_uninstall_leaves_a_scheme_another_uspslink_took_over(wine):
    wine.install()
    other = r'"C:\src\uspslink\target\release\uspslink.exe" "%1"'
    wine.run("reg", "add", SCHEME_KEY + r"\shell\open\command", "/ve", "/d", other, "/f")
    wine.uninstall()
    assert not wine.install_dir.exists()
    assert wine.reg_value(SCHEME_KEY + r"\shell\open\command") == other


def window_named(title: str, env, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--name", title], env=env, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.split():
            return found.stdout.split()[0]
        time.sleep(0.3)
    return None


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display (scripts/test runs this under Xvfb)")
def test_the_app_without_webview2_says_what_to_install_and_exits(wine):
    """The path a user on a Windows without WebView2 takes: open uspslink from the Start menu."""
    wine.install()
    # The browser the app opens for "Open the download page?": a recorder that files the URL in the
    # registry (its last argument), in place of the system browser.
    env = dict(wine.env, USPSLINK_BROWSER=r"reg add HKCU\Software\uspslink-test /f /v opened /d")
    app = subprocess.Popen(["wine", wine.windows_exe], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        box = window_named(WEBVIEW2_TITLE, env, timeout=60)
        assert box, f"no message box titled {WEBVIEW2_TITLE!r} (exit {app.poll()})"
        assert app.poll() is None, "the app waits for the user's answer"
        # Yes (the default button): open the download page.
        subprocess.run(["xdotool", "key", "--window", box, "Return"], env=env, check=True, timeout=10)
        code = app.wait(timeout=60)
    finally:
        if app.poll() is None:
            app.kill()
    assert code == EXIT_WEBVIEW_MISSING, app.stdout.read().decode(errors="replace") if app.stdout else ""
    wine.wait()
    log = (wine.local_dir / "logs/uspslink.log").read_text()
    assert "WebView2 Runtime is missing" in log, log
    assert "panicked" not in log and "bug" not in log
    assert wine.reg_value(r"HKCU\Software\uspslink-test", "opened") == (
        "https://developer.microsoft.com/microsoft-edge/webview2/"
    )
