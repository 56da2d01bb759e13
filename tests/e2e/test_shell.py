"""Issue 2 acceptance: the pop-up, See Instructions, the guidelines, and resume after a restart."""

import pathlib
import subprocess
import sys

from conftest import SINGLE_INSTANCE_NAME, by_testid, present, wait_for, wait_gone

BANNER = "Connect your USPS business account to Stamps.com to access NSA rates"


def test_popup_see_instructions_opens_guidelines_and_progress_survives_restart(profile):
    d = profile.start()
    popup = wait_for(d, "popup")
    assert "Connect your USPS business account" in popup.text
    assert BANNER in wait_for(d, "connect-banner").text
    assert wait_for(d, "env-badge").text == "Sandbox"
    profile.screenshot("popup")

    d.find_element(*by_testid("popup-see-instructions")).click()
    guidelines = wait_for(d, "guidelines")
    wait_gone(d, "popup")
    steps = guidelines.find_elements("css selector", "[data-testid^='step-'][data-status]")
    assert [s.find_element("css selector", "span:last-child").text for s in steps] == [
        "Before you start",
        "Stamps.com account",
        "USPS Business Account",
        "Payment account (EPA)",
        "Link your business account",
        "CRID, MID and EPS",
        "Waiting for USPS approval",
    ]
    assert wait_for(d, "step-content").get_attribute("data-step") == "before_you_start"
    assert "last resort" in wait_for(d, "password-warning").text
    # The banner cannot be dismissed while not linked: it has no dismiss control.
    assert not present(d, "dismiss-connect-banner")
    d.find_element(*by_testid("complete-step")).click()
    d.implicitly_wait(0)
    wait_for(d, "step-stamps_account")
    assert d.find_element(*by_testid("step-before_you_start")).get_attribute("data-status") == "done"
    assert wait_for(d, "step-content").get_attribute("data-step") == "stamps_account"
    profile.screenshot("guidelines")

    stored = profile.records()
    assert stored["progress"]["popup_dismissed"] is True
    assert stored["progress"]["current_step"] == "stamps_account"
    profile.stop()

    # Restart: no pop-up again, banner still there, the guidelines resume where the user was.
    d = profile.start()
    wait_for(d, "connect-banner")
    assert not present(d, "popup")
    d.find_element(*by_testid("banner-see-guidelines")).click()
    assert wait_for(d, "step-content").get_attribute("data-step") == "stamps_account"


def test_not_now_closes_popup_and_settings_rejects_bad_redirect(profile):
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")
    assert present(d, "connect-banner")
    d.find_element(*by_testid("nav-settings")).click()
    assert not present(d, "redirect-uri"), "developer fields only for the own-app way"
    wait_for(d, "settings-advanced-toggle").click()  # the developer-app way is under Advanced
    wait_for(d, "sign-in-own-app").click()
    field = wait_for(d, "redirect-uri")
    field.clear()
    field.send_keys("http://evil.example/cb")
    d.find_element(*by_testid("save-preferences")).click()
    msg = wait_for(d, "preferences-message")
    assert "https://" in msg.text and "uspslink://oauth/callback" in msg.text
    # Nothing was saved.
    assert "evil.example" not in (profile.store_file.read_text() if profile.store_file.exists() else "")


def test_launch_while_an_earlier_instance_is_closing(profile):
    """Reopening right after closing: the launch meets the earlier instance still holding the
    single-instance name and vanishing without taking the arguments. It must start anyway (before, it
    printed 'failed to forward arguments' and exited, and nothing opened)."""
    marker = profile.root / "closing-instance"
    closing = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).parent / "closing_instance.py"),
                                SINGLE_INSTANCE_NAME, str(marker)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert closing.stdout.readline().strip() == "ready"
        d = profile.start()
        assert "Connect your USPS business account" in wait_for(d, "popup").text
        assert marker.read_text() == "forwarded\n", "the launch never met the closing instance"
        assert closing.wait(10) == 0
        log = profile.log()
        assert "an earlier uspslink is still closing" in log, log[-2000:]
        assert "could not start" not in log
    finally:
        closing.kill()
