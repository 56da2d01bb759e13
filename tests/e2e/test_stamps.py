"""Issue 4: the Stamps.com step against the sandbox: API key (public test key refused), registration
with the guide's example values (kept as typed across a restart, the card excepted), SMS verification through the sandbox's phone inbox; afterwards no
card number and no API key anywhere in the profile or the log."""


from selenium.webdriver.support.ui import WebDriverWait

from conftest import by_testid, fill, keyring_clear, keyring_lookup, sandbox_helper, wait_for

KEY = "sandbox_e2eStampsKey42"
CARD = "4111 1111 1111 1111"


def test_register_and_verify_with_the_guide_values(profile):
    d = profile.start()
    wait_for(d, "popup")
    d.find_element(*by_testid("popup-see-instructions")).click()
    wait_for(d, "complete-step").click()  # the guidelines render after the click returns
    key = wait_for(d, "stamps-key")

    key.send_keys("TEST_publicKey1")
    d.find_element(*by_testid("stamps-save-key")).click()
    err = wait_for(d, "stamps-error")
    assert "public test account" in err.text and err.get_attribute("data-kind") == "invalid_api_key"
    key = d.find_element(*by_testid("stamps-key"))
    key.clear()
    key.send_keys("not_a_valid_key")
    d.find_element(*by_testid("stamps-save-key")).click()
    WebDriverWait(d, 10).until(lambda drv: "refused the API key" in drv.find_element(*by_testid("stamps-error")).text)

    key = d.find_element(*by_testid("stamps-key"))
    key.clear()
    key.send_keys(KEY)
    d.find_element(*by_testid("stamps-save-key")).click()
    wait_for(d, "stamps-form")

    values = {
        "nickname": "My Stamps.com account", "email": "john.doe@example.com", "address.name": "John Doe",
        "address.phone": "111-111-1111", "address.company_name": "Example Corp.",
        "address.address_line1": "4009 Marathon Blvd", "address.address_line2": "Suite 300",
        "address.city_locality": "Austin", "address.state_province": "TX", "address.postal_code": "787",
        "credit_card.name": "my credit card", "credit_card.number": CARD,
        "credit_card.expiry": "07/30",
    }
    for f, v in values.items():
        fill(d, f, v)
    # Validation as typed: the ZIP field, once left, says what is wrong before anything is sent.
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements("css selector", '[data-problem="address.postal_code"]'))
    assert not d.find_elements("css selector", '[data-problem="email"]'), "valid fields show no message"
    d.find_element(*by_testid("stamps-register")).click()
    # Bad ZIP and the unticked terms are named field by field; nothing was registered.
    wait_for(d, "stamps-form")
    problem = d.find_element("css selector", '[data-problem="address.postal_code"]')
    assert "ZIP" in problem.text
    assert d.find_elements("css selector", '[data-problem="agree_to_carrier_terms"]')
    assert d.find_element("css selector", '[data-field="credit_card.number"]').get_attribute("value") == "", \
        "the card number leaves the UI once sent"

    # Closing the app halfway keeps the form as typed, except anything of the card.
    WebDriverWait(d, 10).until(lambda _: (profile.records_or_empty().get("stamps", {}).get("draft") or {}).get("address", {}).get("postal_code") == "787")
    profile.stop()
    d = profile.start()
    wait_for(d, "nav-guidelines").click()
    wait_for(d, "stamps-form")
    kept = {f: d.find_element("css selector", f'[data-field="{f}"]').get_attribute("value") for f in values}
    assert kept["email"] == "john.doe@example.com" and kept["address.company_name"] == "Example Corp."
    assert kept["address.postal_code"] == "787" and kept["address.city_locality"] == "Austin"
    assert kept["credit_card.number"] == "" and kept["credit_card.name"] == "", "nothing of the card is kept"
    assert "4111" not in profile.store_file.read_text()
    fill(d, "credit_card.name", "my credit card")
    fill(d, "credit_card.expiry", "07/30")
    fill(d, "address.postal_code", "78756")
    fill(d, "credit_card.number", CARD)
    d.find_element("css selector", '[data-field="agree_to_carrier_terms"]').click()
    d.find_element(*by_testid("stamps-register")).click()

    wait_for(d, "sms-send").click()
    code_field = wait_for(d, "sms-code")
    inbox = sandbox_helper(profile, "/sandbox/phone-inbox/1111111111")
    code_field.send_keys("000000")
    d.find_element(*by_testid("sms-verify")).click()
    assert "code is incorrect" in wait_for(d, "sms-problem").text, "ShipEngine's own words, on the code"
    code_field = d.find_element(*by_testid("sms-code"))
    assert code_field.get_attribute("value") == "000000", "a wrong code stays in the field"
    code_field.clear()
    code_field.send_keys(inbox["code"])
    d.find_element(*by_testid("sms-verify")).click()
    # Verified: the step is done and the guidelines move on to the next one.
    WebDriverWait(d, 15).until(lambda drv: drv.find_element(*by_testid("step-content")).get_attribute("data-step") == "usps_business_account")
    assert d.find_element(*by_testid("step-stamps_account")).get_attribute("data-status") == "done"
    d.find_element(*by_testid("step-stamps_account")).click()
    assert "verified" in wait_for(d, "stamps-verified").text
    profile.screenshot("stamps-verified")

    stored = profile.records()
    assert stored["stamps"]["verified"] is True and stored["stamps"]["carrier_id"].startswith("se-")
    profile.stop()
    needles = [CARD.replace(" ", ""), CARD, KEY]
    for path in [p for p in profile.home.rglob("*") if p.is_file()]:
        data = path.read_bytes()
        for n in needles:
            assert n.encode() not in data, f"{n!r} leaked into {path}"
    for n in needles:
        assert n not in profile.log()
    assert keyring_lookup("shipengine-api-key") == KEY
    keyring_clear("shipengine-api-key")
