import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import type { AppSnapshot, SavingsUpdate, SavingsView } from "../lib/bindings";
import { AppStore, storeContext } from "../lib/appStore.svelte";

const call = vi.fn();
vi.mock("../lib/ipc", () => ({ call: (...args: unknown[]) => call(...args) }));
const { default: SavingsCard } = await import("./SavingsCard.svelte");

const now = Math.floor(Date.now() / 1000);
const parcel = {
  description: "1 lb Priority Mail parcel, near zone",
  sentence: "Your NSA rates: $7.38 instead of $8.66 for a 1 lb Priority Mail parcel, near zone (−15%)",
  applied: true,
  contract_cents: 738,
  commercial_cents: 866,
  retail_cents: 985,
  saved_cents: 128,
  saved_percent: 15,
  platform_cents: 866,
};
const behind: SavingsView = {
  state: "applied",
  parcels: [parcel],
  platform: { state: "published", quoted_cents: 866, contract_cents: 738, description: parcel.description },
  priced_at: now,
  platform_checked_at: now,
};

function show(savings: SavingsView) {
  const store = new AppStore();
  store.setSnapshot({ savings, identifiers: { summary: null, summary_text: null } } as unknown as AppSnapshot);
  render(SavingsCard, { props: { savings }, context: storeContext(store) });
  return store;
}

describe("SavingsCard", () => {
  it("shows the savings, says plainly that Stamps.com quotes published prices and what to do", () => {
    show(behind);
    expect(screen.getByTestId("savings-parcel").textContent).toContain("$7.38 instead of $8.66");
    expect(screen.getByTestId("savings-parcel").textContent).toContain("(−15%) (retail $9.85)");
    const verdict = screen.getByTestId("platform-verdict");
    expect(verdict.dataset.state).toBe("published");
    const words = verdict.textContent!.replace(/\s+/g, " ");
    expect(words).toContain("it quotes $8.66 for one 1 lb Priority Mail parcel, near zone");
    expect(words).toContain("your contract price is $7.38");
    expect(words).toContain("Connect USPS Business Account");
  });

  it("Check again puts the new answer in the store, and a refusal is said with its kind", async () => {
    const answer: SavingsUpdate = {
      savings: { ...behind, platform: { state: "at_nsa_rates" } },
      identifiers: { form: {}, prefilled: [], summary: null, summary_text: "with the savings" } as unknown as SavingsUpdate["identifiers"],
    };
    call.mockResolvedValueOnce(answer);
    const store = show(behind);
    await fireEvent.click(screen.getByTestId("check-savings"));
    expect(call).toHaveBeenCalledWith("check_savings");
    await vi.waitFor(() => expect(store.snapshot?.savings.platform.state).toBe("at_nsa_rates"));
    expect(store.snapshot?.identifiers.summary_text).toBe("with the savings");
    call.mockRejectedValueOnce({ kind: "rate_limited", message: "as often as it may" });
    await fireEvent.click(screen.getByTestId("check-savings"));
    expect((await screen.findByTestId("savings-error")).dataset.kind).toBe("rate_limited");
  });

  it("a published price for a contract request reads as not applied", () => {
    show({
      ...behind,
      state: "not_applied",
      parcels: [{ ...parcel, applied: false, sentence: "Not applied yet: USPS priced a 1 lb Priority Mail parcel, near zone at the published $8.66 instead of your contract rate", contract_cents: null }],
      platform: { state: "not_asked", reason: "there is no Stamps.com account in uspslink to ask" },
    });
    expect(screen.getByTestId("savings-parcel").dataset.applied).toBe("false");
    expect(screen.getByTestId("savings-not-applied").textContent).toContain("sales representative");
    expect(screen.getByTestId("platform-verdict").textContent).toContain("no Stamps.com account");
  });
});
