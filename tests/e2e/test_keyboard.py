"""Issue 15: the whole flow with the keyboard alone (Tab, Space, Enter and typing: no mouse, no
arrow keys), from the connection pop-up to the approval dashboard, with axe-core (from npm) run in
the webview on every screen on the way, finding no violation. The screenshots of each step are the
ones in docs/screens (USPSLINK_SCREENSHOTS_TO=docs/screens writes them there)."""

import os
import pathlib
import shutil

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import OUT, assert_accessible, by_testid, present, sandbox_helper, wait_for, wait_step
from test_link import clear_tokens, with_browser

KEY = "sandbox_e2eKeyboardKey9"


def keys(d, *k) -> None:
    ActionChains(d).send_keys(*k).perform()


def tab_to(d, testid: str | None = None, field: str | None = None, limit: int = 90):
    """Press Tab until the focus is on the element named by `data-testid` or `data-field`."""
    for _ in range(limit):
        keys(d, Keys.TAB)
        el = d.switch_to.active_element
        if testid and el.get_attribute("data-testid") == testid:
            return el
        if field and el.get_attribute("data-field") == field:
            return el
    raise AssertionError(f"Tab never reached {testid or field}; the focus is on "
                         f"{d.switch_to.active_element.get_attribute('outerHTML')[:200]}")


def activate(d, testid: str, key=Keys.ENTER) -> None:
    """Tab to a control and press Enter (a button) or Space (a checkbox) on it."""
    tab_to(d, testid)
    keys(d, key)


def type_into(d, field: str, text: str) -> None:
    tab_to(d, field=field)
    keys(d, text)


def focused_heading(d) -> str:
    el = d.switch_to.active_element
    return el.text if el.get_attribute("data-testid") == "step-heading" else ""


def test_the_whole_flow_by_keyboard_with_no_axe_violation(profile):
    clear_tokens()
    with_browser(profile, "authorize")
    d = profile.start()
    shots = []

    def screen(name: str) -> None:
        assert_accessible(d, name)
        profile.screenshot(name)
        shots.append(name)

    # The pop-up takes the focus; Enter on "See Instructions".
    wait_for(d, "popup")
    assert d.switch_to.active_element.get_attribute("data-testid") == "popup-see-instructions"
    screen("01-popup")
    keys(d, Keys.ENTER)
    wait_for(d, "guidelines")
    screen("02-before-you-start")
    activate(d, "checklist-crid", Keys.SPACE)
    activate(d, "complete-step")

    # Stamps.com: the focus moves to the new step's heading.
    wait_step(d, "stamps_account")
    WebDriverWait(d, 5).until(lambda drv: focused_heading(drv) != "")
    tab_to(d, "stamps-key")
    keys(d, KEY)
    keys(d, Keys.TAB, Keys.ENTER)  # Check and save
    wait_for(d, "stamps-form", timeout=20)
    screen("03-stamps-registration")
    for field, text in [
        ("email", "john.doe@example.com"), ("address.name", "John Doe"), ("address.phone", "111-111-1111"),
        ("address.address_line1", "4009 Marathon Blvd"), ("address.city_locality", "Austin"),
    ]:
        type_into(d, field, text)
    tab_to(d, field="address.state_province")
    keys(d, "Texas")  # a select picks the option whose name starts with what is typed
    WebDriverWait(d, 5).until(
        lambda drv: drv.find_element("css selector", '[data-field="address.state_province"]').get_attribute("value") == "TX")
    type_into(d, "address.postal_code", "78756")
    type_into(d, "credit_card.name", "John Doe")
    type_into(d, "credit_card.number", "4111111111111111")
    card = d.switch_to.active_element
    assert card.get_attribute("value") == "4111 1111 1111 1111", "grouped as typed"
    assert "Visa" in wait_for(d, "card-brand").text
    type_into(d, "credit_card.expiry", "0730")
    assert d.switch_to.active_element.get_attribute("value") == "07/30"
    number = d.find_element("css selector", '[data-field="credit_card.number"]').get_attribute("value")
    assert number == "•••• 1111", f"masked once left: {number!r}"
    tab_to(d, field="agree_to_carrier_terms")
    keys(d, Keys.SPACE)
    screen("04-stamps-filled")
    activate(d, "stamps-register")
    wait_for(d, "sms-send", timeout=30)
    activate(d, "sms-send")
    wait_for(d, "sms-code")
    inbox = sandbox_helper(profile, "/sandbox/phone-inbox/1111111111")
    screen("05-stamps-sms")
    tab_to(d, "sms-code")
    keys(d, inbox["code"])
    keys(d, Keys.TAB, Keys.ENTER)  # Verify

    # The USPS steps.
    wait_step(d, "usps_business_account")
    WebDriverWait(d, 5).until(lambda drv: focused_heading(drv) != "")
    screen("06-usps-business-account")
    activate(d, "complete-step")
    wait_step(d, "payment_account")
    screen("07-payment-account")
    activate(d, "payment-confirm", Keys.SPACE)
    activate(d, "complete-step")

    # The link: Enter on Link, the (scripted) browser signs in, the app is linked.
    wait_step(d, "link_business_account")
    screen("08-link")
    activate(d, "link-start")
    # Linked: the guidelines move on to the identifiers by themselves (the Stamps.com step is done).
    wait_step(d, "identifiers", timeout=30)
    wait_for(d, "identifiers-form")
    activate(d, "step-link_business_account")
    wait_for(d, "link-linked")
    screen("09-linked")
    shown = d.find_element("tag name", "body").text
    for oauth_text in ("state", "code=", "authorization code", "callback", "uspslink://"):
        assert oauth_text not in shown, f"{oauth_text!r} is shown to the user"
    activate(d, "continue-to-identifiers")

    # The identifiers, pre-filled from the sign-in: confirm and verify.
    wait_step(d, "identifiers")
    wait_for(d, "identifiers-form")
    screen("10-identifiers")
    activate(d, "identifiers-confirm", Keys.SPACE)
    activate(d, "identifiers-verify")
    wait_step(d, "waiting_for_approval", timeout=30)
    wait_for(d, "status-banner")
    screen("11-waiting-for-approval")

    # The dashboard: every part with its state, the next action.
    activate(d, "nav-dashboard")
    wait_for(d, "dashboard-parts")
    for part in ("stamps", "link", "identifiers"):
        assert wait_for(d, f"part-{part}").get_attribute("data-tone") == "done", part
    WebDriverWait(d, 30).until(lambda drv: drv.find_element(*by_testid("part-approval")).get_attribute("data-tone") == "waiting")
    screen("12-dashboard")

    # Settings, with the advanced part open.
    activate(d, "nav-settings")
    wait_for(d, "settings")
    screen("13-settings")
    activate(d, "settings-advanced-toggle")
    wait_for(d, "sign-in-own-app")
    assert present(d, "sign-in-service")
    screen("14-settings-advanced")

    target = os.environ.get("USPSLINK_SCREENSHOTS_TO")
    if target:
        out = pathlib.Path(target)
        out.mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copy(OUT / f"{profile.name}-{name}.png", out / f"{name}.png")
    clear_tokens()


def test_errors_are_announced_and_tied_to_their_field(profile):
    """A bad ZIP: the message is an alert, the field points at it, and while a new value is being
    typed the old message is gone (it would be wrong about the new value)."""
    d = profile.start()
    wait_for(d, "popup")
    keys(d, Keys.ENTER)
    wait_for(d, "guidelines")
    activate(d, "complete-step")
    tab_to(d, "stamps-key")
    keys(d, KEY, Keys.TAB, Keys.ENTER)
    wait_for(d, "stamps-form", timeout=20)
    type_into(d, "address.postal_code", "787")
    keys(d, Keys.TAB)
    sel = '[data-problem="address.postal_code"]'
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements("css selector", sel))
    msg = d.find_element("css selector", sel)
    assert msg.get_attribute("role") == "alert"
    zip_field = d.find_element("css selector", '[data-field="address.postal_code"]')
    assert zip_field.get_attribute("aria-describedby") == msg.get_attribute("id")
    assert zip_field.get_attribute("aria-invalid") == "true"
    assert_accessible(d, "a field with a problem")
    # Back into the field, typing: the old message goes at once.
    zip_field.click()
    keys(d, "5")
    assert not d.find_elements("css selector", sel), "the message about '787' lingers while '7875' is typed"
    keys(d, "6", Keys.TAB)
    WebDriverWait(d, 10).until(lambda drv: drv.find_element("css selector", '[data-field="address.postal_code"]').get_attribute("aria-invalid") == "false")
    assert not d.find_elements("css selector", sel)


def test_the_axe_check_can_fail(profile):
    """The accessibility check is real: a control with no name, put into the page, is found."""
    from conftest import axe_violations
    d = profile.start()
    wait_for(d, "popup")
    assert axe_violations(d, "the pop-up") == []
    d.execute_script("const b = document.createElement('button'); b.id = 'nameless'; document.body.appendChild(b);")
    ids = [v["id"] for v in axe_violations(d, "a nameless button added")]
    assert "button-name" in ids, ids
