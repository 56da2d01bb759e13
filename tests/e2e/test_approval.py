"""Issue 14: the approval watch in the real window. Finish the guide, see "waiting" (the first check
goes out as the link completes), approve in the sandbox, *Check now*, see the approved state and the
desktop notification (a stand-in notification server on the session bus records it); restart and see
it kept, with no second notification. And a USPS password reset while the app runs turns the link to
"reconnect" with a notification, without the owner doing anything."""

import json
import pathlib
import subprocess
import sys
import time

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from conftest import by_testid, present, sandbox_helper, wait_for, wait_gone, wait_step
from test_identifiers import sign_in_after_the_usps_steps, stamps_account
from test_link import clear_tokens, with_browser

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture
def notifications(tmp_path):
    """The notification server for the test's length; yields a function returning what it got."""
    log = tmp_path / "notifications.jsonl"
    proc = subprocess.Popen([sys.executable, str(HERE / "notification_server.py"), str(log)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"

    def received() -> list[dict]:
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []

    yield received
    proc.terminate()
    proc.wait(10)


def complete_the_guide(d, profile) -> None:
    """From a fresh profile to USPS's acceptance of the identifiers (test_identifiers covers the details)."""
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-see-instructions")).click()
    wait_for(d, "step-content")
    d.find_element(*by_testid("complete-step")).click()  # Before you start
    stamps_account(d, profile)
    sign_in_after_the_usps_steps(d)
    wait_step(d, "identifiers", timeout=30)
    wait_for(d, "identifiers-confirm").click()
    d.find_element(*by_testid("identifiers-verify")).click()
    wait_for(d, "status-banner", timeout=30)


def approval_state(d) -> str:
    return d.find_element(*by_testid("approval")).get_attribute("data-state")


def test_waiting_then_approved_with_one_notification_kept_across_a_restart(profile, notifications):
    clear_tokens()
    with_browser(profile, "authorize")
    d = profile.start()
    complete_the_guide(d, profile)
    d.find_element(*by_testid("nav-dashboard")).click()
    # The first check went out as the link completed: USPS has no approved contract yet.
    wait_for(d, "approval")
    WebDriverWait(d, 30).until(lambda _: approval_state(d) == "waiting")
    times = wait_for(d, "approval-times").text
    assert "Last checked" in times and "never" not in times, times
    record = profile.records()["approval"]
    assert record["history"]["last_check"] and record["next_check"] - record["history"]["last_check"] > 3 * 3600
    assert "Please wait for approval from USPS" in d.find_element(*by_testid("status-banner")).text
    assert notifications() == []

    # The sales representative approves the contract; the owner presses Check now.
    assert sandbox_helper(profile, "/sandbox/usps/approve-contract", {"crid": "20538353"}) == 204
    d.find_element(*by_testid("check-now")).click()
    approved = wait_for(d, "approval-approved", timeout=30).text
    assert "USPS approved your NSA rates on " in approved, approved
    assert not present(d, "check-now"), "once approved there is nothing to check"
    banner = d.find_element(*by_testid("status-banner")).text
    assert "USPS approved your NSA rates on" in banner and "begin printing with NSA rates" in banner, banner
    WebDriverWait(d, 15).until(lambda _: len(notifications()) == 1)
    note = notifications()[0]
    assert note["summary"] == "USPS approved your NSA rates" and "begin printing with NSA rates" in note["body"], note
    WebDriverWait(d, 10).until(lambda _: profile.records_or_empty().get("approval", {}).get("notified") is True)
    profile.screenshot("approved")

    # Kept across a restart, and said only once.
    profile.stop()
    d = profile.start()
    assert "USPS approved your NSA rates on" in wait_for(d, "status-banner").text
    assert "USPS approved your NSA rates on" in wait_for(d, "approval-approved").text
    time.sleep(2)  # give a wrongly repeated notification the time to arrive
    assert len(notifications()) == 1, notifications()
    # The banner rule of the guide still holds: dismissed, it does not come back.
    d.find_element(*by_testid("dismiss-status-banner")).click()
    wait_gone(d, "status-banner")
    assert present(d, "approval-approved")
    clear_tokens()


def test_a_password_reset_shows_reconnect_without_the_owner_doing_anything(profile, notifications):
    clear_tokens()
    with_browser(profile, "authorize")
    # Checks every few seconds instead of hours (the schedule is configurable for USPS's quota).
    profile.extra_env["USPSLINK_APPROVAL_SCHEDULE"] = json.dumps({"interval_secs": 3, "jitter_secs": 0})
    d = profile.start()
    complete_the_guide(d, profile)
    d.find_element(*by_testid("nav-dashboard")).click()
    WebDriverWait(d, 30).until(lambda _: approval_state(d) == "waiting")
    assert not present(d, "reconnect-banner")

    assert sandbox_helper(profile, "/sandbox/usps/revoke-user", {"username": "merchant"}) == 204
    # Nothing clicked: the next check finds the token refused, the refresh refused, and says so.
    wait_for(d, "reconnect-banner", timeout=30)
    WebDriverWait(d, 15).until(lambda _: any(n["summary"] == "Reconnect your USPS business account" for n in notifications()))
    assert profile.records()["usps_link"]["needs_reconnecting"] is True
    assert "needs reconnecting" in profile.log()
    profile.screenshot("reconnect")
    clear_tokens()
