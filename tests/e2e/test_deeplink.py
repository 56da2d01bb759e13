"""Issue 2 acceptance: a second launch with a uspslink:// URL reaches the running window; hostile
links are refused and change nothing; a cold-start URL is shown too."""

import time

from conftest import by_testid, present, wait_for, wait_gone

STATE = "e2eState0123456789"


def test_second_launch_forwards_url_to_running_window(profile):
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")

    hostile = [
        "uspslink://evil/callback?code=x&state=" + STATE,
        "uspslink://oauth/callback?code=x&state=" + STATE + "&redirect=https://evil.example",
        "uspslink://oauth/callback?code=" + "A" * 5000 + "&state=" + STATE,
        "uspslink://oauth/callback?code=%3Cscript%3E&state=" + STATE,
    ]
    for url in hostile:
        r = profile.launch_again(url)
        assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    assert not present(d, "deep-link-notice"), "a refused link must change nothing"
    assert profile.log().count("refused a uspslink:// link") >= len(hostile)

    url = f"uspslink://oauth/callback?code=ABCD1234&state={STATE}"
    t0 = time.monotonic()
    r = profile.launch_again(url)
    second_exit = time.monotonic() - t0
    notice = wait_for(d, "deep-link-notice")
    shown = time.monotonic() - t0
    assert notice.get_attribute("data-state") == STATE
    assert "ABCD1234" not in notice.text, "the code itself is never shown"
    print(f"deep link: second process exited after {second_exit * 1000:.0f} ms, UI updated after {shown * 1000:.0f} ms")
    assert r.returncode == 0
    assert "ABCD1234" not in profile.log(), "the code never reaches the log"
    profile.screenshot("deep-link")


def test_cold_start_url_is_received(profile):
    d = profile.start(args=[f"uspslink://oauth/callback?error=access_denied&state={STATE}"])
    notice = wait_for(d, "deep-link-notice")
    assert notice.get_attribute("data-state") == STATE
    assert "access_denied" in notice.text
