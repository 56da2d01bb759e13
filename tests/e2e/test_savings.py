"""Issue 25: proof that the NSA rates work where labels are bought, in the real window. Finish the
guide, approve in the sandbox: the dashboard shows what the NSA rates save on the reference parcels
and says plainly that Stamps.com still quotes published prices, with what to do; the platform applies
the contract (`/sandbox/shipengine/apply-contract`), *Check again*: "✓ Stamps.com prices your labels
at your NSA rates.". And USPS's published-rate fallback (a sandbox fault) is never an approval and
reads as "not applied yet"."""

from selenium.webdriver.support.ui import WebDriverWait

from conftest import assert_accessible, by_testid, present, sandbox_helper, wait_for
from test_approval import approval_state, complete_the_guide
from test_link import clear_tokens, with_browser

PRICES = "/prices/v3/total-rates/search"


def savings_state(d) -> str:
    return d.find_element(*by_testid("savings")).get_attribute("data-state") if present(d, "savings") else ""


def platform_state(d) -> str:
    return d.find_element(*by_testid("platform-verdict")).get_attribute("data-state")


def approved_on_the_dashboard(d, profile) -> None:
    complete_the_guide(d, profile)
    d.find_element(*by_testid("nav-dashboard")).click()
    WebDriverWait(d, 30).until(lambda _: approval_state(d) == "waiting")
    assert not present(d, "savings"), "nothing to show before USPS approves"
    assert sandbox_helper(profile, "/sandbox/usps/approve-contract", {"crid": "20538353"}) == 204


def test_the_savings_are_shown_and_stamps_com_is_told_apart_until_it_applies_the_contract(profile):
    clear_tokens()
    with_browser(profile, "authorize")
    d = profile.start()
    approved_on_the_dashboard(d, profile)
    d.find_element(*by_testid("check-now")).click()
    wait_for(d, "approval-approved", timeout=30)

    # The approval wakes the watch, which prices the reference parcels at once.
    WebDriverWait(d, 30).until(lambda _: savings_state(d) == "applied")
    parcels = [p.text for p in d.find_elements(*by_testid("savings-parcel"))]
    assert len(parcels) == 4, parcels
    # The sandbox's prices: 1 lb Priority Mail, zone 1: $7.38 contract, $8.66 commercial, $9.85 retail.
    assert parcels[0].startswith("✓"), parcels[0]
    assert "Your NSA rates: $7.38 instead of $8.66 for a 1 lb Priority Mail parcel, near zone (−15%)" in parcels[0], parcels[0]
    assert "retail $9.85" in parcels[0], parcels[0]
    assert all("instead of" in p for p in parcels), parcels
    assert "for an 8 oz Ground Advantage parcel, near zone" in parcels[2], parcels[2]
    WebDriverWait(d, 30).until(lambda _: platform_state(d) == "published")
    verdict = d.find_element(*by_testid("platform-verdict")).text
    assert "Stamps.com does not price your labels at your NSA rates yet" in verdict, verdict
    assert "it quotes $8.66 for one 1 lb Priority Mail parcel, near zone" in verdict and "your contract price is $7.38" in verdict, verdict
    assert "Connect USPS Business Account" in verdict, verdict
    assert "Stamps.com does not price your labels" in d.find_element(*by_testid("next-action")).text
    # The figures go to the sales representative too.
    summary = d.find_element(*by_testid("summary-text")).get_attribute("value")
    assert "$7.38 instead of $8.66" in summary and "does not apply our NSA rates yet" in summary, summary
    record = profile.records()["savings"]
    assert record["contract_priced_at"] and len(record["parcels"]) == 4, record
    assert_accessible(d, "dashboard with the savings, Stamps.com behind")
    profile.screenshot("savings-stamps-behind")

    # Stamps.com applies the approved contract; the owner presses Check again.
    carrier_id = profile.records()["stamps"]["carrier_id"]
    assert sandbox_helper(profile, "/sandbox/shipengine/apply-contract", {"carrier_id": carrier_id}) == 204
    d.find_element(*by_testid("check-savings")).click()
    WebDriverWait(d, 30).until(lambda _: platform_state(d) == "at_nsa_rates")
    assert "✓ Stamps.com prices your labels at your NSA rates." in d.find_element(*by_testid("platform-verdict")).text
    assert "Nothing to do" in d.find_element(*by_testid("next-action")).text
    assert_accessible(d, "dashboard with the savings, Stamps.com at the NSA rates")
    profile.screenshot("savings-stamps-applied")

    # Kept across a restart.
    profile.stop()
    d = profile.start()
    WebDriverWait(d, 30).until(lambda _: present(d, "platform-verdict") and platform_state(d) == "at_nsa_rates")
    assert "$7.38 instead of $8.66" in d.find_element(*by_testid("savings")).text
    clear_tokens()


def test_a_published_price_is_never_an_approval_and_reads_as_not_applied(profile):
    clear_tokens()
    with_browser(profile, "authorize")
    d = profile.start()
    approved_on_the_dashboard(d, profile)
    # USPS answers the approval's contract request with a published price: not an approval.
    assert sandbox_helper(profile, "/sandbox/faults", {"route": PRICES, "published_fallback": True}) == 204
    d.find_element(*by_testid("check-now")).click()
    WebDriverWait(d, 30).until(lambda _: approval_state(d) == "could_not_check")
    assert "published price" in d.find_element(*by_testid("approval-could-not-check")).text
    assert not present(d, "savings")
    d.find_element(*by_testid("check-now")).click()
    wait_for(d, "approval-approved", timeout=30)
    WebDriverWait(d, 30).until(lambda _: savings_state(d) == "applied")

    # The next contract price falls back: that parcel is "not applied yet", with what to do.
    assert sandbox_helper(profile, "/sandbox/faults", {"route": PRICES, "published_fallback": True}) == 204
    d.find_element(*by_testid("check-savings")).click()
    WebDriverWait(d, 30).until(lambda _: savings_state(d) == "not_applied")
    first = d.find_elements(*by_testid("savings-parcel"))[0]
    assert first.get_attribute("data-applied") == "false", first.text
    assert "Not applied yet: USPS priced a 1 lb Priority Mail parcel, near zone at the published $8.66" in first.text, first.text
    assert "sales representative" in d.find_element(*by_testid("savings-not-applied")).text
    assert "published prices" in d.find_element(*by_testid("next-action")).text
    assert_accessible(d, "dashboard with a contract price not applied")
    clear_tokens()
