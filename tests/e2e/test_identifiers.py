"""Issue 5: from a fresh profile all the way to the approval banner: Stamps.com, the USPS link through
the scripted browser, the identifiers checked as typed and refused by USPS field by field, a restart
that resumes the step with the values kept, a USPS password reset that breaks the link and the
reconnect from the step, then USPS's acceptance, the
summary, and the status banner across restarts until dismissed, and never again after."""

import time
import urllib.parse

from selenium.webdriver.support.ui import WebDriverWait

from conftest import by_testid, fill, keyring_clear, keyring_lookup as lookup, present, sandbox_helper, wait_for, wait_gone, wait_step
from test_link import clear_tokens, with_browser

KEY = "sandbox_e2eIdentifiersKey7"


def stamps_account(d, profile, key: str = KEY) -> None:
    """The Stamps.com step, straight through (test_stamps covers its errors)."""
    wait_for(d, "stamps-key").send_keys(key)
    d.find_element(*by_testid("stamps-save-key")).click()
    wait_for(d, "stamps-form")
    values = {
        "email": "john.doe@example.com", "address.name": "John Doe", "address.phone": "111-111-1111",
        "address.address_line1": "4009 Marathon Blvd", "address.city_locality": "Austin",
        "address.state_province": "TX", "address.postal_code": "78756", "credit_card.name": "John Doe",
        "credit_card.number": "4111111111111111", "credit_card.expiry": "07/30",
    }
    for f, v in values.items():
        fill(d, f, v)
    d.find_element("css selector", '[data-field="agree_to_carrier_terms"]').click()
    d.find_element(*by_testid("stamps-register")).click()
    wait_for(d, "sms-send", timeout=30).click()
    code = wait_for(d, "sms-code")
    inbox = sandbox_helper(profile, "/sandbox/phone-inbox/1111111111")
    code.send_keys(inbox["code"])
    d.find_element(*by_testid("sms-verify")).click()
    wait_step(d, "usps_business_account")


def sign_in_after_the_usps_steps(d) -> None:
    """From the USPS Business Account step: both USPS steps done, then *Link* (the browser signs in)."""
    d.find_element(*by_testid("complete-step")).click()  # USPS Business Account
    wait_for(d, "payment-confirm").click()
    d.find_element(*by_testid("complete-step")).click()
    wait_for(d, "link-start").click()


def value(d, field: str) -> str:
    return d.find_element("css selector", f'[data-field="{field}"]').get_attribute("value")


def problem(d, field: str, timeout: float = 15) -> str:
    sel = f'[data-problem="{field}"]'
    WebDriverWait(d, timeout).until(lambda drv: drv.find_elements("css selector", sel))
    return d.find_element("css selector", sel).text


def test_fresh_profile_to_the_approval_banner_and_its_permanent_dismissal(profile):
    clear_tokens()
    browser_log = with_browser(profile, "authorize", "authorize")
    d = profile.start()

    # Before you start: the checklist is kept in the progress.
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-see-instructions")).click()
    assert "Business Customer Gateway" in wait_for(d, "step-content").text
    wait_for(d, "checklist-crid").click()
    d.find_element(*by_testid("checklist-mid")).click()
    WebDriverWait(d, 10).until(lambda _: profile.records_or_empty().get("progress", {}).get("checklist") == ["crid", "mid"])
    d.find_element(*by_testid("complete-step")).click()

    stamps_account(d, profile)
    sign_in_after_the_usps_steps(d)
    # Linked: with the Stamps.com account done, the guidelines go straight on to the identifiers.
    wait_step(d, "identifiers", timeout=30)
    assert d.find_element(*by_testid("step-link_business_account")).get_attribute("data-status") == "done"

    # Identifiers: pre-filled from the sign-in, to be confirmed; checked as typed.
    wait_for(d, "identifiers-form")
    assert "CRID" in wait_for(d, "prefilled-note").text
    assert (value(d, "crid"), value(d, "mid"), value(d, "eps_account")) == ("20538353", "901234567", "1000000001")
    fill(d, "business_name", "Example Corp.")
    fill(d, "mid", "912345")
    d.find_element("css selector", '[data-field="eps_account"]').click()  # leave the MID field
    assert "starts with 0 to 8" in problem(d, "mid")
    assert not d.find_elements("css selector", '[data-problem="crid"]'), "a valid field shows no message"
    fill(d, "mid", "901234567")
    fill(d, "eps_account", "1000000002")  # the sandbox's inactive EPS account
    verify = d.find_element(*by_testid("identifiers-verify"))
    assert not verify.is_enabled(), "pre-filled values must be confirmed first"
    d.find_element(*by_testid("identifiers-confirm")).click()
    verify.click()
    refused = problem(d, "eps_account")
    assert "This EPS account is not active" in refused and "(USPS error 100002)" in refused
    assert not present(d, "identifiers-error"), "one refusal is said once, beside its field"
    assert present(d, "connect-banner") and not present(d, "status-banner")
    profile.screenshot("identifiers-refused")
    WebDriverWait(d, 10).until(lambda _: profile.records_or_empty().get("identifiers", {}).get("draft", {}).get("eps_account") == "1000000002")

    # Close and reopen: back on the identifiers step with what was typed.
    profile.stop()
    d = profile.start()
    assert not present(d, "popup")
    wait_for(d, "connect-banner")
    d.find_element(*by_testid("nav-guidelines")).click()
    wait_step(d, "identifiers")
    assert (value(d, "business_name"), value(d, "crid"), value(d, "eps_account")) == ("Example Corp.", "20538353", "1000000002")
    d.find_element(*by_testid("step-before_you_start")).click()
    assert wait_for(d, "checklist-crid").is_selected() and not d.find_element(*by_testid("checklist-eps")).is_selected()
    d.find_element(*by_testid("step-identifiers")).click()

    # A USPS password reset breaks every connection: the stored token is refused, the link asks to
    # reconnect, and reconnecting keeps the form.
    assert sandbox_helper(profile, "/sandbox/usps/revoke-user", {"username": "merchant"}, runs_before=1) == 204
    fill(d, "eps_account", "1000000001")
    d.find_element(*by_testid("identifiers-verify")).click()
    err = wait_for(d, "identifiers-error")
    assert err.get_attribute("data-kind") == "needs_reconnecting", err.text
    wait_for(d, "reconnect-banner")
    assert lookup("usps-access-token") == "", "the dead token is gone from the keyring"
    d.find_element(*by_testid("identifiers-reconnect")).click()
    wait_gone(d, "reconnect-banner", timeout=30)
    WebDriverWait(d, 30).until(lambda _: profile.records_or_empty().get("usps_link", {}).get("needs_reconnecting") is False)
    verify = d.find_element(*by_testid("identifiers-verify"))
    WebDriverWait(d, 10).until(lambda _: verify.is_enabled())
    assert value(d, "eps_account") == "1000000001", "reconnecting keeps the form"

    # USPS accepts: the link is complete.
    verify.click()
    wait_for(d, "status-banner", timeout=30)
    assert "Please wait for approval from USPS to begin printing with NSA rates." in d.find_element(*by_testid("status-banner")).text
    assert not present(d, "connect-banner")
    wait_step(d, "waiting_for_approval")
    summary = wait_for(d, "summary-text").get_attribute("value")
    for line in ["Business name: Example Corp.", "CRID: 20538353", "MID: 901234567", "Account type: EPS",
                 "EPS account number: 1000000001", "Linked on: "]:
        assert line in summary, summary
    profile.screenshot("approval-banner")
    granted = sandbox_helper(profile, "/sandbox/usps/payment-authorizations")["granted"]
    assert granted == 1

    d.find_element(*by_testid("summary-copy")).click()
    assert wait_for(d, "summary-status").text
    d.find_element(*by_testid("summary-email")).click()
    end = time.monotonic() + 10
    while "open mailto:" not in browser_log.read_text() and time.monotonic() < end:
        time.sleep(0.1)
    mailto = next(l for l in browser_log.read_text().splitlines() if l.startswith("open mailto:"))[5:]
    body = urllib.parse.parse_qs(urllib.parse.urlsplit(mailto).query)["body"][0]
    assert "CRID: 20538353" in body and "EPS account number: 1000000001" in body
    access, refresh = lookup("usps-access-token"), lookup("usps-refresh-token")
    assert access and refresh and access not in mailto and refresh not in mailto and KEY not in mailto

    # The banner stays across a restart, until dismissed; then never again.
    profile.stop()
    d = profile.start()
    wait_for(d, "status-banner")
    assert not present(d, "connect-banner") and not present(d, "popup")
    assert "CRID 20538353" in wait_for(d, "dashboard-linked").text
    d.find_element(*by_testid("dismiss-status-banner")).click()
    wait_gone(d, "status-banner")
    assert profile.records()["progress"]["status_banner_dismissed"] is True
    profile.stop()
    d = profile.start()
    wait_for(d, "dashboard")
    time.sleep(1)  # give a wrongly returning banner the time to show
    assert not present(d, "status-banner") and not present(d, "connect-banner") and not present(d, "popup")
    profile.stop()

    for path in [p for p in profile.home.rglob("*") if p.is_file()]:
        data = path.read_bytes()
        for secret in (access, refresh, KEY):
            assert secret.encode() not in data, f"a secret leaked into {path}"
    for secret in (access, refresh, KEY):
        assert secret not in profile.log()
    clear_tokens()
    keyring_clear("shipengine-api-key")
