"""Issue 3: link the USPS Business Account through the system browser (a scripted one walking the
sandbox's real HTML pages) and the uspslink:// redirect handed to the OS with `gio open`."""

import os
import pathlib
import re
import sys
import time
import urllib.parse

from conftest import by_testid, keyring_clear, keyring_lookup as lookup, present, wait_for, wait_gone

HERE = pathlib.Path(__file__).resolve().parent


def clear_tokens() -> None:
    for u in ("usps-access-token", "usps-refresh-token"):
        keyring_clear(u, check=False)


def with_browser(profile, *plan: str) -> pathlib.Path:
    plan_file = profile.root / "browser-plan"
    plan_file.write_text("".join(p + "\n" for p in plan))
    browser_log = profile.root / "browser.log"
    profile.extra_env.update(
        USPSLINK_BROWSER=f"{sys.executable} {HERE / 'scripted_browser.py'}",
        USPSLINK_SCRIPT_PLAN=str(plan_file),
        USPSLINK_SCRIPT_LOG=str(browser_log),
    )
    return browser_log


def to_link_step(d) -> None:
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-see-instructions")).click()
    wait_for(d, "guidelines")
    d.find_element(*by_testid("complete-step")).click()  # Before you start
    wait_for(d, "step-usps_business_account").click()
    WAIT = 10
    end = time.monotonic() + WAIT
    while wait_for(d, "step-content").get_attribute("data-step") != "usps_business_account" and time.monotonic() < end:
        time.sleep(0.05)
    d.find_element(*by_testid("complete-step")).click()
    wait_for(d, "payment-confirm").click()
    d.find_element(*by_testid("complete-step")).click()
    wait_for(d, "link-step")


def test_link_succeeds_tokens_only_in_the_keyring(profile):
    clear_tokens()
    browser_log = with_browser(profile, "authorize")
    d = profile.start()
    to_link_step(d)
    assert "last resort" in wait_for(d, "password-warning").text
    d.find_element(*by_testid("link-start")).click()
    wait_for(d, "link-linked", timeout=30)
    profile.screenshot("linked")
    assert d.find_element(*by_testid("step-link_business_account")).get_attribute("data-status") == "done"

    opened = browser_log.read_text()
    assert "code_challenge_method=S256" in opened and "wf=apis_merchant_user" in opened
    # The default way: through the sign-in service. USPS redirects to its https-style callback (here
    # the in-process service on loopback), which hands a sealed code on to uspslink://.
    assert re.search(r"redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fusps%2Fcallback", opened), opened
    assert re.search(r"^service http://127\.0\.0\.1:\d+/usps/callback$", opened, re.M), opened
    handoff = re.search(r"^handoff (uspslink://\S+)$", opened, re.M).group(1)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(handoff).query)["code"][0]
    assert len(code) > 30, f"the code the app got is sealed, not USPS's own: {code}"
    access, refresh = lookup("usps-access-token"), lookup("usps-refresh-token")
    assert access.count(".") == 2 and len(refresh) > 8, "both tokens are in the Secret Service"
    stored = profile.records()
    assert stored["usps_link"]["linked"] is True
    assert stored["usps_link"]["issued_via"] == "service"
    assert stored["usps_link"]["hints"]["crids"] == ["20538353"]
    profile.stop()
    for path in [p for p in profile.home.rglob("*") if p.is_file()]:
        data = path.read_bytes()
        assert access.encode() not in data and refresh.encode() not in data, f"a token leaked into {path}"
    assert access not in profile.log() and refresh not in profile.log()

    # After a restart the link is still there (record in the store, tokens in the keyring).
    d = profile.start()
    d.find_element(*by_testid("nav-settings")).click()
    assert wait_for(d, "settings-link-state").text == "Linked."
    d.find_element(*by_testid("disconnect")).click()
    wait_for(d, "settings-link-state")
    end = time.monotonic() + 10
    while lookup("usps-refresh-token") and time.monotonic() < end:
        time.sleep(0.1)
    assert lookup("usps-refresh-token") == "" and lookup("usps-access-token") == "", "disconnect clears the tokens"
    assert wait_for(d, "settings-link-state").text == "Not linked."


def test_deny_says_login_failed_and_retry_succeeds(profile):
    clear_tokens()
    with_browser(profile, "deny", "authorize")
    d = profile.start()
    to_link_step(d)
    d.find_element(*by_testid("link-start")).click()
    failed = wait_for(d, "link-failed", timeout=30)
    assert failed.text.startswith("Login failed")
    assert failed.get_attribute("data-kind") == "login_failed"
    profile.screenshot("login-failed")
    retry = d.find_element(*by_testid("link-start"))
    assert retry.text == "Try again"
    retry.click()
    wait_for(d, "link-linked", timeout=30)
    clear_tokens()


def test_wrong_password_gives_the_reason(profile):
    with_browser(profile, "wrong-password")
    d = profile.start()
    to_link_step(d)
    d.find_element(*by_testid("link-start")).click()
    failed = wait_for(d, "link-failed", timeout=30)
    assert "Login failed" in failed.text and "username or password is incorrect" in failed.text


def test_forged_callback_with_foreign_state_is_ignored(profile):
    clear_tokens()
    with_browser(profile, "ignore")
    d = profile.start()
    to_link_step(d)
    d.find_element(*by_testid("link-start")).click()
    wait_for(d, "link-waiting")
    r = profile.launch_again("uspslink://oauth/callback?code=FORGED12&state=attackerState0123456789")
    assert r.returncode == 0
    end = time.monotonic() + 10
    while "refused a uspslink:// link" not in profile.log() and time.monotonic() < end:
        time.sleep(0.1)
    assert "refused a uspslink:// link" in profile.log()
    assert "attackerState0123456789" not in profile.log() and "FORGED12" not in profile.log()
    assert present(d, "link-waiting"), "a forged callback changes nothing: still waiting for the real one"
    assert not present(d, "link-failed") and not present(d, "link-linked")
    assert lookup("usps-access-token") == ""
    d.find_element(*by_testid("link-cancel")).click()
    wait_gone(d, "link-waiting")
    assert wait_for(d, "link-start").text == "Link your business account"


def test_link_with_the_businesss_own_developer_app(profile):
    """The other way in Settings: the business's own USPS app (here the sandbox's credentials), its
    redirect straight to uspslink://, no sign-in service in between."""
    clear_tokens()
    browser_log = with_browser(profile, "authorize")
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    d.find_element(*by_testid("nav-settings")).click()
    wait_for(d, "settings-advanced-toggle").click()  # the developer-app way is under Advanced
    wait_for(d, "sign-in-own-app").click()
    assert wait_for(d, "redirect-uri").get_attribute("value") == "uspslink://oauth/callback"
    d.find_element(*by_testid("save-preferences")).click()
    assert wait_for(d, "preferences-message").text == "Saved."
    d.find_element(*by_testid("nav-guidelines")).click()
    wait_for(d, "guidelines")
    d.find_element(*by_testid("complete-step")).click()  # Before you start
    wait_for(d, "step-usps_business_account").click()
    end = time.monotonic() + 10
    while wait_for(d, "step-content").get_attribute("data-step") != "usps_business_account" and time.monotonic() < end:
        time.sleep(0.05)
    d.find_element(*by_testid("complete-step")).click()
    wait_for(d, "payment-confirm").click()
    d.find_element(*by_testid("complete-step")).click()
    wait_for(d, "link-start").click()
    wait_for(d, "link-linked", timeout=30)
    opened = browser_log.read_text()
    assert "redirect_uri=uspslink%3A%2F%2Foauth%2Fcallback" in opened, opened
    assert not re.search(r"^service ", opened, re.M), "no sign-in service in between"
    assert profile.records()["usps_link"]["issued_via"] == "own_app"
    clear_tokens()


class ListeningStandIn:
    """Something listening at an address typed in Settings: it counts every connection made to it,
    so anything a token could reach is seen."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = 0

        def serve():
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.connections += 1
                conn.close()

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.sock.close()


def test_an_address_typed_after_linking_never_receives_a_token(profile):
    """Issue 21, reproduced in this window before: a sign-in service address typed in Settings after
    linking received the link's token at *Disconnect*. Here a live-like environment (USPS test) signs
    in through the vendor's real `uspslink-broker` in front of the sandbox, as an installed copy
    does; another address is typed afterwards; the link keeps to the service that issued it."""
    from conftest import BINARY, free_port, wait_port
    import subprocess
    sandbox_port, broker_port = free_port(), free_port()
    # The sandbox alone (`uspslink sandbox`), started through a link of another name: the harness
    # counts every process running the app's own path as an app still running.
    sandbox_cli = profile.root / "uspslink-sandbox-cli"
    sandbox_cli.symlink_to(BINARY)
    sandbox = subprocess.Popen([str(sandbox_cli), "sandbox", "--port", str(sandbox_port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    secret, key = profile.root / "client-secret", profile.root / "broker-key"
    secret.write_text("sandbox-consumer-secret\n")
    key.write_bytes(bytes(range(32)))
    sandbox_url, broker_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{broker_port}"
    broker_log = open(profile.root / "broker.log", "wb")
    broker = subprocess.Popen(
        [str(BINARY.parent / "uspslink-broker"), "--port", str(broker_port)],
        env=dict(os.environ, USPSLINK_BROKER_CLIENT_ID="sandbox-consumer-key",
                 USPSLINK_BROKER_CLIENT_SECRET_FILE=str(secret), USPSLINK_BROKER_KEY_FILE=str(key),
                 USPSLINK_BROKER_PUBLIC_URL=broker_url, USPSLINK_BROKER_USPS_API_BASE=sandbox_url,
                 USPSLINK_BROKER_USPS_AUTHORIZE_URL=sandbox_url + "/cop-navigator"),
        stdout=broker_log, stderr=subprocess.STDOUT)
    stand_in = ListeningStandIn()
    try:
        wait_port(sandbox_port)
        wait_port(broker_port)
        browser_log = with_browser(profile, "authorize")
        profile.extra_env.update(
            USPSLINK_ENVIRONMENT="usps_test", USPSLINK_USPS_API_BASE=sandbox_url,
            USPSLINK_USPS_AUTHORIZE_URL=sandbox_url + "/cop-navigator", USPSLINK_SHIPENGINE_API_BASE=sandbox_url,
            USPSLINK_SIGN_IN_SERVICE_URL=broker_url)
        for u in ("usps-access-token", "usps-refresh-token"):
            keyring_clear(u, check=False, env="usps_test")
        d = profile.start()
        to_link_step(d)
        d.find_element(*by_testid("link-start")).click()
        wait_for(d, "link-linked", timeout=30)
        assert f"service {broker_url}/usps/callback" in browser_log.read_text()
        assert profile.records("usps_test")["usps_link"]["issued_by"] == broker_url
        assert lookup("usps-refresh-token", env="usps_test")

        # Another address typed in Settings: the window says the link stays with its service.
        d.find_element(*by_testid("nav-settings")).click()
        from selenium.webdriver.support.ui import Select
        Select(wait_for(d, "env-select")).select_by_value("usps_test")  # where this owner works
        wait_for(d, "settings-advanced-toggle").click()
        field = wait_for(d, "sign-in-service-url")
        field.clear()
        field.send_keys(stand_in.url)
        d.find_element(*by_testid("save-preferences")).click()
        assert wait_for(d, "preferences-message").text == "Saved."
        banner = wait_for(d, "sign-in-moved-banner")
        assert broker_url in banner.text and "reconnect" in banner.text.lower()
        assert broker_url in wait_for(d, "settings-sign-in-moved").text, "said where the owner is, too"
        profile.screenshot("sign-in-moved")

        # Disconnect: the tokens are revoked where they came from, and the typed address hears nothing.
        d.find_element(*by_testid("disconnect")).click()
        end = time.monotonic() + 15
        while lookup("usps-refresh-token", env="usps_test") and time.monotonic() < end:
            time.sleep(0.1)
        assert lookup("usps-refresh-token", env="usps_test") == ""
        assert wait_for(d, "settings-link-state").text == "Not linked."
        assert stand_in.connections == 0, "a token was sent to the address typed after linking"
        assert not present(d, "sign-in-moved-banner")
        broker_log.flush()
        revokes = (profile.root / "broker.log").read_text().count("/v1/usps/revoke")
        assert revokes == 2, f"the refresh and the access token revoked at the issuing service ({revokes})"
    finally:
        stand_in.close()
        for p in (broker, sandbox):
            p.terminate()
            p.wait(10)
