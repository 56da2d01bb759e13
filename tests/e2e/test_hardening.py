"""Issue 9 in the real window: pasted text cannot kill the app; a damaged progress file is restored
(or the app starts fresh) and says so once; a full disk changes nothing and says so; kill -9 while a
form is typed never leaves an unreadable file; each environment keeps its own progress; a newer
version's file is never written over (issue 23)."""

import json
import os
import random
import subprocess
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import assert_accessible, by_testid, fill, keyring_clear, present, wait_for, wait_gone

KEY = "sandbox_e2eHardening42"


def to_stamps_form(d) -> None:
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-see-instructions")).click()
    wait_for(d, "complete-step").click()
    key = wait_for(d, "stamps-key")
    key.send_keys(KEY)
    d.find_element(*by_testid("stamps-save-key")).click()
    wait_for(d, "stamps-form")


def test_pasted_dashes_and_accents_are_refused_and_the_app_stays_up(profile):
    d = profile.start()
    to_stamps_form(d)
    for pasted in ("78756–12", "1234é5678", "78756—1234", "７８７５６"):
        fill(d, "address.postal_code", pasted)
        d.find_element(By.CSS_SELECTOR, '[data-field="address.city_locality"]').click()  # leave the field
        WebDriverWait(d, 10).until(
            lambda drv: "5 digits" in (drv.find_elements(By.CSS_SELECTOR, '[data-problem="address.postal_code"]') or [None])[0].text
            if drv.find_elements(By.CSS_SELECTOR, '[data-problem="address.postal_code"]') else False)
    fill(d, "address.postal_code", "78756-1234")
    d.find_element(By.CSS_SELECTOR, '[data-field="address.city_locality"]').click()
    WebDriverWait(d, 10).until(lambda drv: not drv.find_elements(By.CSS_SELECTOR, '[data-problem="address.postal_code"]'))
    assert profile.app_pids(), "the app is still running"
    assert "panicked" not in profile.log() and "a bug at" not in profile.log()
    keyring_clear("shipengine-api-key")


def write_store(profile, name: str, content: bytes) -> None:
    profile.data_dir.mkdir(parents=True, exist_ok=True)
    (profile.data_dir / name).write_bytes(content)


GOOD = {
    "preferences": {"environment": "sandbox", "usps_consumer_key": "", "redirect_uri": "uspslink://oauth/callback"},
    "sandbox/progress": {"popup_dismissed": True, "current_step": "stamps_account", "completed": ["before_you_start"]},
}


def test_a_damaged_progress_file_is_restored_and_said_once(profile):
    write_store(profile, "uspslink.json.last-good", json.dumps(GOOD).encode())
    truncated = json.dumps(GOOD).encode()[:37]
    write_store(profile, "uspslink.json", truncated)
    d = profile.start()
    notice = wait_for(d, "storage-notice")
    assert notice.get_attribute("data-kind") == "restored"
    assert "restored the last good copy" in notice.text
    assert not present(d, "popup"), "the progress came back (the pop-up was dismissed in it)"
    assert "1 of" in d.find_element(*by_testid("dashboard-progress")).text
    aside = [p for p in profile.data_dir.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == truncated, "the damaged file is kept as it was"
    assert aside[0].name in notice.text
    assert json.loads(profile.store_file.read_text())["sandbox/progress"]["popup_dismissed"] is True
    profile.screenshot("storage-restored")
    d.find_element(*by_testid("dismiss-storage-notice")).click()
    wait_gone(d, "storage-notice")
    profile.stop()
    d = profile.start()
    wait_for(d, "dashboard")
    time.sleep(0.5)
    assert not present(d, "storage-notice"), "said once"


def test_nothing_to_restore_starts_fresh_and_says_so(profile):
    write_store(profile, "uspslink.json", b"\x00\x00garbage{")
    d = profile.start()
    notice = wait_for(d, "storage-notice")
    assert notice.get_attribute("data-kind") == "started_fresh"
    assert "starts fresh" in notice.text
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")
    WebDriverWait(d, 10).until(lambda _: profile.records_or_empty().get("progress", {}).get("popup_dismissed") is True)
    assert [p.read_bytes() for p in profile.data_dir.iterdir() if ".damaged-" in p.name] == [b"\x00\x00garbage{"]


def test_a_newer_versions_file_is_never_written_until_the_owner_starts_over(profile):
    """Issue 23: a progress file a newer uspslink wrote (format 2) is neither read nor written;
    the owner's choice keeps it aside, untouched, and saving starts again."""
    newer = json.dumps({**GOOD, "format": 2, "sandbox/progress": {"popup_dismissed": True, "steps_v2": ["a newer shape"]}}).encode()
    write_store(profile, "uspslink.json", newer)
    write_store(profile, "uspslink.json.last-good", newer)
    d = profile.start()
    notice = wait_for(d, "storage-notice")
    assert notice.get_attribute("data-kind") == "newer_file"
    assert "newer version of uspslink (format 2" in notice.text
    assert not present(d, "dismiss-storage-notice"), "no OK: it stays until the owner chooses"
    # Nothing of it was read (a fresh start), and a save is refused and said. The pop-up, whose
    # buttons would only fail to save, waits for the choice.
    assert not present(d, "popup")
    wait_for(d, "banner-see-guidelines").click()
    assert "newer version" in wait_for(d, "save-problem").text
    assert profile.store_file.read_bytes() == newer, "never written over"
    assert_accessible(d, "a newer version's file")
    profile.screenshot("storage-newer-file")

    d.find_element(*by_testid("start-over-here")).click()
    WebDriverWait(d, 10).until(lambda drv: "Started over" in drv.find_element(*by_testid("storage-notice")).text)
    kept = [p for p in profile.data_dir.iterdir() if p.name.startswith("uspslink.json.newer-")]
    assert len(kept) == 1 and kept[0].read_bytes() == newer, "kept aside as it was"
    kept_good = [p for p in profile.data_dir.iterdir() if p.name.startswith("uspslink.json.last-good.newer-")]
    assert len(kept_good) == 1 and kept_good[0].read_bytes() == newer, "its last good copy too: never restored over a fresh file"
    assert kept[0].name in d.find_element(*by_testid("storage-notice")).text
    wait_gone(d, "save-problem")
    assert profile.store()["format"] == 1, "the file is this version's now"
    # The pop-up comes back now that its buttons can save.
    wait_for(d, "popup-not-now").click()
    WebDriverWait(d, 10).until(lambda _: profile.records_or_empty().get("progress", {}).get("popup_dismissed") is True)
    d.find_element(*by_testid("dismiss-storage-notice")).click()
    wait_gone(d, "storage-notice")
    assert profile.store()["format"] == 1
    profile.stop()
    d = profile.start()
    wait_for(d, "dashboard")
    time.sleep(0.5)
    assert not present(d, "storage-notice") and not present(d, "popup"), "a normal start, its progress kept"


@pytest.fixture
def small_disk(profile):
    """The app's data folder on a small tmpfs (root only: mount). WebKit keeps its own files there too."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the test command runs as root")
    profile.data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(profile.data_dir)], check=True, timeout=20)
    yield profile.data_dir
    profile.stop()
    subprocess.run(["umount", "-l", str(profile.data_dir)], check=False, timeout=20)


def fill_disk(folder) -> None:
    """Fill the tmpfs to its last byte."""
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    assert os.statvfs(folder).f_bavail == 0, "the disk is full"


def test_a_full_disk_changes_nothing_and_says_so(profile, small_disk):
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-see-instructions")).click()
    wait_for(d, "guidelines")
    WebDriverWait(d, 10).until(lambda _: profile.records_or_empty().get("progress", {}).get("popup_dismissed") is True)
    before = profile.store_file.read_bytes()
    fill_disk(small_disk)
    d.find_element(*by_testid("complete-step")).click()  # Before you start: a save that cannot happen
    problem = wait_for(d, "save-problem")
    assert "disk is full" in problem.text and "Nothing was changed" in problem.text
    profile.screenshot("disk-full")
    assert wait_for(d, "step-content").get_attribute("data-step") == "before_you_start", "nothing changed on screen"
    assert profile.store_file.read_bytes() == before, "nothing changed on disk"
    assert not [p for p in small_disk.iterdir() if p.name.endswith(".tmp")], "no half-written file is left"
    (small_disk / "filler").unlink(missing_ok=True)
    d.find_element(*by_testid("complete-step")).click()
    wait_gone(d, "save-problem")
    WebDriverWait(d, 10).until(lambda _: "before_you_start" in profile.records_or_empty().get("progress", {}).get("completed", []))


def test_kill_9_while_a_form_is_typed_leaves_a_readable_file(profile):
    """The real app killed at random moments while the registration form is typed (each keystroke
    pause saves the draft). The Rust test `durable_kill` does the same 50 times to the writer alone."""
    rounds, typed_total = 5, 0
    rng = random.Random()
    d = profile.start()
    to_stamps_form(d)
    for n in range(rounds):
        if n:
            d = profile.start()
            wait_for(d, "nav-guidelines", timeout=20).click()
            wait_for(d, "stamps-form", timeout=20)
        city = f"Austin round {n} " + "x" * rng.randint(5, 40)
        el = d.find_element(By.CSS_SELECTOR, '[data-field="address.city_locality"]')
        el.clear()
        for i, ch in enumerate(city):
            el.send_keys(ch)
            if i % 7 == 0:
                time.sleep(0.3)  # past the 250 ms pause: a save starts
        time.sleep(rng.uniform(0.0, 0.4))
        for pid in profile.app_pids():
            os.kill(pid, 9)
        typed_total += len(city)
        profile.stop()
        stored = json.loads(profile.store_file.read_text())  # always parses
        kept = stored["sandbox/stamps"]["draft"]["address"]["city_locality"]
        # What was saved last before the kill: some prefix of what was typed, never a torn file.
        assert kept and city.startswith(kept), f"round {n}: kept {kept!r} of {city!r}"
    print(f"kill -9 while typing: {rounds} kills, {typed_total} characters typed, the file parsed every time")
    keyring_clear("shipengine-api-key")


def switch_environment(d, value: str, label: str) -> None:
    """Settings → Environment → Save, as a user does; waits for the badge to say it."""
    d.find_element(*by_testid("nav-settings")).click()
    Select(wait_for(d, "env-select")).select_by_value(value)
    d.find_element(*by_testid("save-preferences")).click()
    WebDriverWait(d, 10).until(lambda drv: drv.find_element(*by_testid("env-badge")).text == label)


def test_each_environment_keeps_its_own_progress(profile):
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")
    switch_environment(d, "production", "Production")
    wait_for(d, "popup")  # Production has its own progress: nothing done in the Sandbox counts there
    assert profile.records("production") == {}
    assert profile.records("sandbox")["progress"]["popup_dismissed"] is True
    d.find_element(*by_testid("popup-not-now")).click()
    wait_gone(d, "popup")
    switch_environment(d, "sandbox", "Sandbox")
    assert not present(d, "popup")
    assert profile.records("production")["progress"]["popup_dismissed"] is True
