"""End-to-end harness: the release app in a real window (Xvfb), driven by WebDriver through
tauri-driver + WebKitWebDriver, each test in its own profile (HOME / XDG dirs).

Run inside scripts/with-desktop (a D-Bus session with gnome-keyring, and Xvfb)."""

import json
import os
import pathlib
import socket
import subprocess
import time

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.remote_connection import RemoteConnection
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("USPSLINK_BINARY", ROOT / "target" / "release" / "uspslink"))
OUT = ROOT / "tests" / "out"
IDENTIFIER = "org.uspslink.desktop"
# The D-Bus name tauri-plugin-single-instance holds while an instance runs.
SINGLE_INSTANCE_NAME = IDENTIFIER + ".SingleInstance"
# Every socket the tests open (urllib to the sandbox) gives up instead of waiting forever.
socket.setdefaulttimeout(30)
# A WebDriver command gets this long; selenium's default is to wait forever, so one call into a stuck
# webview would hang the whole run.
WEBDRIVER_TIMEOUT = 60


def single_instance_owned() -> bool:
    """Whether some uspslink holds the single-instance name on this session bus."""
    out = subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                          "--object-path", "/org/freedesktop/DBus", "--method",
                          "org.freedesktop.DBus.NameHasOwner", SINGLE_INSTANCE_NAME],
                         capture_output=True, text=True, timeout=20)
    return "true" in out.stdout


def keyring_lookup(username: str, env: str = "sandbox") -> str:
    """The uspslink secret of environment `env` stored under `username` in the Secret Service ("" when
    there is none). Each environment's secrets have their own names: `sandbox/usps-access-token`."""
    return subprocess.run(["secret-tool", "lookup", "service", "uspslink", "username", f"{env}/{username}"],
                          capture_output=True, text=True, timeout=20).stdout


def keyring_clear(username: str, check: bool = True, env: str = "sandbox") -> None:
    subprocess.run(["secret-tool", "clear", "service", "uspslink", "username", f"{env}/{username}"], check=check,
                   timeout=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Profile:
    """An isolated user profile, and the app started in it under WebDriver."""

    def __init__(self, root: pathlib.Path, name: str):
        self.root = root
        self.name = name
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "app.log"
        self.driver_proc = None
        self.driver = None
        self.extra_env: dict[str, str] = {}

    @property
    def env(self) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "LANG", "USPSLINK_LOG")
        }
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
        )
        # No USPSLINK_REGISTER_SCHEME: the binary under test registers the uspslink:// handler the way
        # it does for a user (scheme.rs), so every sign-in here proves the user's path works.
        env.update(self.extra_env)
        return env

    @property
    def data_dir(self) -> pathlib.Path:
        return self.home / ".local" / "share" / IDENTIFIER

    @property
    def store_file(self) -> pathlib.Path:
        return self.data_dir / "uspslink.json"

    def store(self) -> dict:
        return json.loads(self.store_file.read_text())

    def store_or_empty(self) -> dict:
        """The store, or {} while it is missing or being written (for polling)."""
        try:
            return self.store()
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _records(store: dict, env: str) -> dict:
        prefix = env + "/"
        return {k[len(prefix):]: v for k, v in store.items() if k.startswith(prefix) and v is not None}

    def records(self, env: str = "sandbox") -> dict:
        """One environment's records ({"progress": …, "stamps": …}): the store keeps them as `env/name`."""
        return self._records(self.store(), env)

    def records_or_empty(self, env: str = "sandbox") -> dict:
        return self._records(self.store_or_empty(), env)

    def start(self, args: list[str] | None = None) -> webdriver.Remote:
        assert BINARY.exists(), f"build the release app first: {BINARY}"
        assert not self.app_pids(), f"an earlier uspslink is still running: {self.app_pids()}"
        port, native = free_port(), free_port()
        log = open(self.log_path, "ab")
        self.driver_proc = subprocess.Popen(
            ["tauri-driver", "--port", str(port), "--native-port", str(native)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_port(port)
        wait_port(native)  # WebKitWebDriver, started by tauri-driver
        opts = ArgOptions()
        opts.set_capability("browserName", "wry")
        opts.set_capability("tauri:options", {"application": str(BINARY), "args": args or []})
        config = ClientConfig(remote_server_addr=f"http://127.0.0.1:{port}", timeout=WEBDRIVER_TIMEOUT)
        self.driver = webdriver.Remote(command_executor=RemoteConnection(client_config=config), options=opts)
        return self.driver

    def stop(self) -> None:
        t0 = time.monotonic()
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception as e:  # a dead session or a WebDriver call that timed out
                print(f"stop: quitting the WebDriver session failed: {e!r}")
            self.driver = None
        # Ending the session asks the app to close its window; under load that message can still be
        # on its way when quit() returns, and killing tauri-driver (and WebKitWebDriver) then loses
        # it, leaving the window open. So give it time first.
        self._wait_app_gone(5)
        t1 = time.monotonic()
        if self.driver_proc is not None:
            self.driver_proc.terminate()
            try:
                self.driver_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.driver_proc.kill()
                self.driver_proc.wait(10)
            self.driver_proc = None
        # The app must be gone before the next start. Its command line vanishes from /proc early in
        # its exit, while its D-Bus connection (and the single-instance name) lives on a little: wait
        # for both, so each start here is a clean one (the app copes with the other kind too:
        # test_shell covers it).
        self._wait_app_gone(5)
        left = self.app_pids()
        if left:
            # Seen on a loaded machine: the window still open after the session ended (the close
            # never reached it). Close it the hard way; everything is saved as it changes.
            print(subprocess.run(["ps", "-o", "pid,ppid,etimes,stat,args", "-p", ",".join(map(str, left))],
                                 capture_output=True, text=True, timeout=20).stdout)
            for sig in (15, 9):
                for pid in self.app_pids():
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                self._wait_app_gone(5)
        t2 = time.monotonic()
        print(f"stop: quit and window closed {t1 - t0:.2f} s, app gone {t2 - t1:.2f} s"
              + (f" (terminated {left}: its window was still open)" if left else ""))
        assert not self.app_pids() and not single_instance_owned(), "uspslink is still running after stop()"

    def _wait_app_gone(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and (self.app_pids() or single_instance_owned()):
            time.sleep(0.05)

    def app_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-f", "-x", f"{BINARY}( .*)?"], capture_output=True, text=True, timeout=20).stdout
        return [int(p) for p in out.split()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def launch_again(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        """Launch the binary a second time, as the OS does for a uspslink:// URL."""
        return subprocess.run([str(BINARY), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def screenshot(self, label: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        if self.driver is not None:
            # WebKitWebDriver's screenshot waits for the page's next rendering update; the app paints
            # without GPU compositing (lib.rs), where a page that does not change never has one, so
            # the screenshot would wait forever. A repaint of nothing visible, soon after the
            # request, gives it one (a few, for 2 s, however late the request arrives).
            try:
                self.driver.execute_script(
                    "const s = document.body.style; let n = 0;"
                    " const t = setInterval(() => { s.outline = n++ % 2 ? '' : '1px solid transparent';"
                    " if (n > 20) { clearInterval(t); s.outline = ''; } }, 100);")
            except Exception as e:  # a page that is gone: the screenshot says so itself
                print(f"screenshot: could not ask for a repaint: {e!r}")
            self.driver.save_screenshot(str(OUT / f"{self.name}-{label}.png"))


@pytest.fixture
def profile(tmp_path, request):
    p = Profile(tmp_path, request.node.name)
    yield p
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        try:
            p.screenshot("failure")
        except Exception as e:  # the session may have ended with its window (test_background)
            print(f"no screenshot: {e!r}")
        try:
            print("page text at failure:\n" + p.driver.find_element("tag name", "body").text)
        except Exception:  # the window may be gone
            pass
        print(p.log()[-4000:])
    p.stop()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# WebKitWebDriver clicks an element below the fold without scrolling it into view first (the click
# lands on whatever is at those coordinates in the viewport, and nothing happens), where the WebDriver
# spec scrolls it. A person scrolls; the harness does it for them before every click. The app itself
# runs as users get it.
from selenium.webdriver.remote.webelement import WebElement

_webdriver_click = WebElement.click


def _click_in_view(self: WebElement) -> None:
    self.parent.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", self)
    _webdriver_click(self)


WebElement.click = _click_in_view


def by_testid(testid: str):
    return (By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def wait_for(driver, testid: str, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(EC.visibility_of_element_located(by_testid(testid)))


def wait_gone(driver, testid: str, timeout: float = 10):
    WebDriverWait(driver, timeout).until(EC.invisibility_of_element_located(by_testid(testid)))


def present(driver, testid: str) -> bool:
    return len(driver.find_elements(*by_testid(testid))) > 0


def wait_step(driver, step: str, timeout: float = 15) -> None:
    """Until the guidelines show `step`."""
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(*by_testid("step-content")).get_attribute("data-step") == step)


def fill(driver, field: str, value: str) -> None:
    el = driver.find_element(By.CSS_SELECTOR, f'[data-field="{field}"]')
    if el.tag_name.lower() == "select":
        from selenium.webdriver.support.ui import Select
        Select(el).select_by_value(value)
        return
    el.clear()
    el.send_keys(value)


def sandbox_base(profile, runs_before: int = 0) -> str:
    """The address of the sandbox the app started last (from its log, which every run appends to);
    `runs_before` earlier runs of the app in this profile are skipped."""
    import re
    end = time.monotonic() + 10
    while time.monotonic() < end:
        found = re.findall(r"sandbox listening on (http://127\.0\.0\.1:\d+)", profile.log())
        if len(found) > runs_before:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError("the app's sandbox never started")



def sandbox_helper(profile, path: str, body: dict | None = None, runs_before: int = 0):
    """One of the in-app sandbox's `/sandbox/*` helpers (approve a contract, reset a password, read
    the phone inbox): POST `body` as JSON, or GET without one; the parsed JSON answer, or the status
    when there is none. The helpers answer only with this run's token, which the app writes beside
    its progress file (readable by the user only)."""
    import urllib.request
    base = sandbox_base(profile, runs_before)
    token = (profile.data_dir / "sandbox-helpers.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req) as answer:
        raw = answer.read()
        return json.loads(raw) if raw else answer.status


AXE_JS = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(driver, label: str) -> list[dict]:
    """axe-core (from npm) run inside the webview on the page as it is now: every rule of its
    default set (WCAG 2.x A/AA and best practice). Returns the violations, each with its nodes."""
    assert AXE_JS.exists(), f"npm ci in ui/ first: {AXE_JS}"
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE_JS.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        "  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        "     nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}))))"
        "  .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
    for v in result:
        print(f"axe [{label}] {v['impact']} {v['id']}: {v['help']}")
        for n in v["nodes"][:5]:
            print(f"    {n['target']}: {n['summary']}")
    return result


def assert_accessible(driver, label: str) -> None:
    violations = axe_violations(driver, label)
    assert violations == [], f"axe found {len(violations)} violation(s) on {label}: " + ", ".join(v["id"] for v in violations)
