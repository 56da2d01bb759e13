"""Secrets go to the real Secret Service (gnome-keyring in this D-Bus session) and nowhere else; with
no Secret Service the UI says what to install."""

import os
import subprocess
import textwrap

from conftest import by_testid, keyring_clear, keyring_lookup as lookup, wait_for, wait_gone

KEY = "sandbox_e2eSecretKey987"


def store_key_in_settings(profile):
    """Start, close the pop-up, and save the API key in Settings as a user does."""
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")  # saved first (atomically), then closed: it covers the page until then
    d.find_element(*by_testid("nav-settings")).click()
    wait_for(d, "keyring-ready")
    field = d.find_element("id", "shipengine_api_key")
    field.send_keys(KEY)
    field.find_element("xpath", "following-sibling::button[1]").click()
    wait_for(d, "keyring-ready")
    return d


def test_api_key_is_stored_in_the_keyring_only(profile):
    d = store_key_in_settings(profile)
    for _ in range(50):
        if lookup("shipengine-api-key") == KEY:
            break
        import time

        time.sleep(0.1)
    assert lookup("shipengine-api-key") == KEY
    assert d.find_element("id", "shipengine_api_key").get_attribute("value") == "", "UI state is cleared"
    profile.stop()
    hits = [p for p in profile.home.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert hits == [], f"the key leaked into {hits}"
    assert KEY not in profile.log()
    keyring_clear("shipengine-api-key")


def test_without_secret_service_the_ui_says_what_to_install(profile, tmp_path):
    # A bus with no service files: nothing can provide org.freedesktop.secrets.
    conf = tmp_path / "bus.conf"
    conf.write_text(textwrap.dedent(f"""\
        <busconfig>
          <type>session</type>
          <listen>unix:dir={tmp_path}</listen>
          <policy context="default">
            <allow send_destination="*" eavesdrop="true"/>
            <allow eavesdrop="true"/>
            <allow own="*"/>
          </policy>
        </busconfig>"""))
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--print-address", "--nofork"], stdout=subprocess.PIPE, text=True)
    try:
        profile.extra_env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        d = profile.start()
        wait_for(d, "popup")
        d.find_element(*by_testid("popup-not-now")).click()
        wait_gone(d, "popup")
        d.find_element(*by_testid("nav-settings")).click()
        problem = wait_for(d, "keyring-problem")
        assert "gnome-keyring" in problem.text
        assert "never stores secrets in plain files" in problem.text
    finally:
        profile.stop()
        bus.terminate()


def test_about_says_where_things_are_and_its_diagnostics_hold_no_secret(profile):
    d = store_key_in_settings(profile)
    d.find_element(*by_testid("nav-dashboard")).click()
    d.find_element(*by_testid("nav-settings")).click()  # About is read when Settings opens
    assert wait_for(d, "about-version").text == "0.1.0"
    assert wait_for(d, "about-data-folder").text == str(profile.data_dir)
    log_file = wait_for(d, "about-log").text
    assert log_file == str(profile.data_dir / "logs" / "uspslink.log")
    import pathlib
    assert "sandbox listening on" in pathlib.Path(log_file).read_text(), "the log file has what stderr has"
    text = d.find_element(*by_testid("diagnostics-text")).get_attribute("value")
    assert "Environment: Sandbox" in text and "uspslink 0.1.0" in text and "Tauri 2." in text
    assert KEY not in text, "never a secret in the diagnostics"
    d.find_element(*by_testid("copy-diagnostics")).click()
    assert wait_for(d, "diagnostics-status").text
    assert KEY not in pathlib.Path(log_file).read_text()
    keyring_clear("shipengine-api-key")
