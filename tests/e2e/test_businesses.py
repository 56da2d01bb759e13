"""Issue 24: several businesses in one install, in the real window. The first business finishes its
guide as the sandbox's `merchant`; *Add a business* names a second, which starts fresh, signs in to
USPS as another user (`merchant2`, another CRID) and finishes its own guide; switching back shows the
first business as it was, nothing mixed up: its identifiers, its keyring entries, its records. The
business shown is kept across a restart, and removing the second (asked twice) deletes its keyring
entries and records and leaves the first untouched."""

import subprocess

from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import assert_accessible, by_testid, keyring_lookup, present, wait_for, wait_gone
from test_approval import complete_the_guide
from test_identifiers import sign_in_after_the_usps_steps, stamps_account, value
from test_link import clear_tokens, with_browser

SECOND_KEY = "sandbox_e2eSecondBusiness3"
FIRST_CRID, SECOND_CRID = "20538353", "20538360"


def clear_second_business_tokens() -> None:
    clear_tokens()
    for slot in ("usps-access-token", "usps-refresh-token", "shipengine-api-key"):
        subprocess.run(["secret-tool", "clear", "service", "uspslink", "username", f"business-2/sandbox/{slot}"],
                       check=False, timeout=20)


def switcher(d) -> Select:
    return Select(wait_for(d, "business-switcher"))


def shown(d) -> str:
    """The business the switcher shows (read in one call: its options are redrawn as businesses change)."""
    wait_for(d, "business-switcher")
    return d.execute_script(
        "const s = document.querySelector('[data-testid=\"business-switcher\"]');"
        " return s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text;")


def text_of(d, testid: str) -> str:
    """An element's text, read in one call: a switch draws the page again, so an element found a
    moment before may be gone when its text is asked for."""
    return d.execute_script(f"return document.querySelector('[data-testid=\"{testid}\"]')?.textContent ?? '';")


def options(d) -> int:
    return d.execute_script("return document.querySelector('[data-testid=\"business-switcher\"]').options.length;")


def test_two_businesses_side_by_side_nothing_mixed_up(profile):
    clear_second_business_tokens()
    with_browser(profile, "authorize", "authorize-as:merchant2")
    d = profile.start()
    assert shown(d) == "My business"
    complete_the_guide(d, profile)
    d.find_element(*by_testid("nav-dashboard")).click()
    assert FIRST_CRID in wait_for(d, "dashboard-linked").text
    assert not present(d, "overview"), "one business: no overview"

    # Add a business: a refused name is said and changes nothing; then it is added and shown, fresh.
    d.find_element(*by_testid("add-business")).click()
    name = wait_for(d, "new-business-name")
    assert d.switch_to.active_element == name, "the name field has the focus"
    name.send_keys("my BUSINESS")
    d.find_element(*by_testid("add-business-save")).click()
    assert "already called" in wait_for(d, "add-business-error").text
    assert options(d) == 1
    assert_accessible(d, "add a business")
    name.clear()
    name.send_keys("Second Shop")
    d.find_element(*by_testid("add-business-save")).click()
    wait_gone(d, "new-business-name")
    WebDriverWait(d, 15).until(lambda _: shown(d) == "Second Shop")
    # A fresh guide: the connection pop-up and the connect banner, nothing of the first business.
    wait_for(d, "popup")
    assert present(d, "connect-banner") and not present(d, "status-banner")

    # Its own guide, its own Stamps.com account, its own USPS user.
    d.find_element(*by_testid("popup-see-instructions")).click()
    wait_for(d, "step-content")
    d.find_element(*by_testid("complete-step")).click()  # Before you start
    stamps_account(d, profile, SECOND_KEY)
    sign_in_after_the_usps_steps(d)
    WebDriverWait(d, 30).until(lambda _: value(d, "crid") == SECOND_CRID)
    wait_for(d, "identifiers-confirm").click()
    d.find_element(*by_testid("identifiers-verify")).click()
    wait_for(d, "status-banner", timeout=30)
    d.find_element(*by_testid("nav-dashboard")).click()
    assert SECOND_CRID in wait_for(d, "dashboard-linked").text
    rows = d.find_elements(*by_testid("overview-row"))
    assert [r.find_element("css selector", "th").text for r in rows] == ["My business", "Second Shop"]
    assert_accessible(d, "overview of two businesses")
    profile.screenshot("overview")

    # Apart in the keyring and in the progress file.
    first_token, second_token = keyring_lookup("usps-access-token"), keyring_lookup("usps-access-token", "business-2/sandbox")
    assert first_token and second_token and first_token != second_token
    assert keyring_lookup("shipengine-api-key", "business-2/sandbox") == SECOND_KEY
    store = profile.store()
    assert store["sandbox/identifiers"]["summary"]["crid"] == FIRST_CRID
    assert store["business-2/sandbox/identifiers"]["summary"]["crid"] == SECOND_CRID

    # Switch back: the first business as it was.
    switcher(d).select_by_visible_text("My business")
    WebDriverWait(d, 15).until(lambda _: FIRST_CRID in text_of(d, "dashboard-linked"))
    assert SECOND_CRID not in text_of(d, "dashboard").split("Your businesses")[0]
    assert keyring_lookup("shipengine-api-key") != SECOND_KEY

    # The business shown is kept across a restart.
    switcher(d).select_by_visible_text("Second Shop")
    WebDriverWait(d, 15).until(lambda _: SECOND_CRID in text_of(d, "dashboard-linked"))
    profile.stop()
    d = profile.start()
    assert shown(d) == "Second Shop"
    assert SECOND_CRID in wait_for(d, "dashboard-linked").text

    # Remove it (asked first): its keyring entries and records go; the first stays as it was.
    d.find_element(*by_testid("nav-settings")).click()
    wait_for(d, "remove-business").click()
    question = wait_for(d, "remove-business-dialog").text
    assert "Second Shop" in question and "Stamps.com account" in question, question
    assert_accessible(d, "remove a business")
    d.find_element(*by_testid("remove-business-confirm")).click()
    WebDriverWait(d, 30).until(lambda _: shown(d) == "My business")
    assert options(d) == 1
    assert keyring_lookup("usps-access-token", "business-2/sandbox") == ""
    assert keyring_lookup("shipengine-api-key", "business-2/sandbox") == ""
    assert keyring_lookup("usps-access-token") == first_token
    store = profile.store()
    assert not [k for k, v in store.items() if k.startswith("business-2/") and v is not None], store.keys()
    assert store["sandbox/identifiers"]["summary"]["crid"] == FIRST_CRID
    d.find_element(*by_testid("nav-dashboard")).click()
    assert FIRST_CRID in wait_for(d, "dashboard-linked").text
    clear_second_business_tokens()
