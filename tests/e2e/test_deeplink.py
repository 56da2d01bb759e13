"""Deep links: a second launch with a uspslink:// URL reaches the running window; links that answer no
sign-in of this app (hostile, forged, replayed, cold-started) are refused before anything is shown,
emitted or focused, and no state, code or sender text reaches the log; a sign-in started before a
restart is explained."""

import hashlib
import re
import time

from selenium.webdriver.support.ui import WebDriverWait

from conftest import by_testid, present, wait_for, wait_gone
from test_link import to_link_step, with_browser

STATE = "e2eState0123456789"


def fingerprint(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()[:8]


def opened_state(browser_log) -> str:
    """The state of the sign-in the app opened in the (scripted) browser."""
    end = time.monotonic() + 15
    while time.monotonic() < end:
        found = re.findall(r"[?&]state=([A-Za-z0-9_.~-]+)", browser_log.read_text() if browser_log.exists() else "")
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError("the app opened no sign-in")


def link_state(d, state: str, timeout: float = 15) -> None:
    WebDriverWait(d, timeout).until(lambda _: d.find_element(*by_testid("link-step")).get_attribute("data-link-state") == state)


def open_sign_in(profile):
    """Start the app, open the link step and press Link: the (scripted) browser opens the sign-in
    and does nothing. Returns the window and the state of the sign-in the app opened."""
    browser_log = with_browser(profile, "ignore")
    d = profile.start()
    to_link_step(d)
    d.find_element(*by_testid("link-start")).click()
    link_state(d, "waiting")
    return d, opened_state(browser_log)


def test_links_that_answer_no_sign_in_change_nothing(profile):
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")

    refused = [
        "uspslink://evil/callback?code=x&state=" + STATE,
        "uspslink://oauth/callback?code=x&state=" + STATE + "&redirect=https://evil.example",
        "uspslink://oauth/callback?code=" + "A" * 5000 + "&state=" + STATE,
        "uspslink://oauth/callback?code=%3Cscript%3E&state=" + STATE,
        "uspslink://oauth/callback?code=x&state=" + STATE + "&%0Afake%20log%20line=1",
        # Well-formed, but answering no sign-in this app opened (a forged or stale link).
        f"uspslink://oauth/callback?code=ABCD1234&state={STATE}",
        f"uspslink://oauth/callback?error=access_denied&error_description=Click%20evil.example&state={STATE}",
    ]
    for url in refused:
        r = profile.launch_again(url)
        assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    assert not present(d, "link-signed-in"), "a refused link must change nothing"
    assert not present(d, "link-failed-banner")
    log = profile.log()
    assert log.count("refused a uspslink:// link") >= len(refused)
    for secret_or_sender_text in (STATE, "ABCD1234", "evil.example", "fake log line"):
        assert secret_or_sender_text not in log, f"{secret_or_sender_text!r} reached the log"
    assert fingerprint(STATE) in log, "a short fingerprint of the state is logged instead"


def test_second_launch_answers_the_running_sign_in(profile):
    d, state = open_sign_in(profile)

    url = f"uspslink://oauth/callback?error=access_denied&state={state}"
    t0 = time.monotonic()
    r = profile.launch_again(url)
    second_exit = time.monotonic() - t0
    failed = wait_for(d, "link-failed")
    shown = time.monotonic() - t0
    assert state not in d.page_source, "nothing of the OAuth answer is in the UI"
    assert "access was not granted" in failed.text
    print(f"deep link: second process exited after {second_exit * 1000:.0f} ms, UI updated after {shown * 1000:.0f} ms")
    assert r.returncode == 0
    link_state(d, "failed")
    assert "access was not granted" in d.find_element(*by_testid("link-failed")).text
    assert state not in profile.log(), "the state never reaches the log"
    # The same answer again is a replay: refused, nothing changes.
    assert profile.launch_again(url).returncode == 0
    time.sleep(0.5)
    assert profile.log().count("refused a uspslink:// link") >= 1
    profile.screenshot("deep-link")


def test_a_sign_in_from_before_a_restart_is_explained(profile):
    d, state = open_sign_in(profile)
    profile.stop()
    # USPS answers after uspslink was closed: the OS starts it with the URL (a cold start).
    d = profile.start(args=[f"uspslink://oauth/callback?code=ABCD1234&state={state}"])
    banner = wait_for(d, "link-failed-banner")
    assert "started before uspslink restarted" in banner.text and "link again" in banner.text
    assert state not in profile.log() and "ABCD1234" not in profile.log()


def test_cold_start_with_an_unknown_state_shows_nothing(profile):
    d = profile.start(args=[f"uspslink://oauth/callback?error=access_denied&state={STATE}"])
    wait_for(d, "popup")
    time.sleep(0.5)
    assert not present(d, "link-signed-in") and not present(d, "link-failed-banner")
    assert "refused a uspslink:// link" in profile.log()
