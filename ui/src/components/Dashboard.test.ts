import { describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/svelte";
import type { AppSnapshot, BusinessOverview, LinkStatus } from "../lib/bindings";
import { AppStore, storeContext } from "../lib/appStore.svelte";

vi.mock("../lib/ipc", () => ({ call: vi.fn() }));
import Dashboard from "./Dashboard.svelte";

function overview(id: number, name: string, approved = false): BusinessOverview {
  return {
    id,
    name,
    current_step: "stamps_account",
    current_step_title: "Stamps.com account",
    current_step_number: 2,
    completed_count: 1,
    total_steps: 7,
    link_complete: approved,
    approval: approved
      ? { state: "approved", approved_on: "2026-12-01", last_checked: null, next_check: null, check_now_allowed: false }
      : { state: "not_started", last_checked: null, next_check: null, check_now_allowed: false },
  };
}

function show(over: Partial<AppSnapshot>, link: LinkStatus) {
  const store = new AppStore();
  store.setSnapshot({
    view: {
      current_step: "link_business_account",
      completed_count: 4,
      total_steps: 7,
      steps: [{ step: "link_business_account", number: 5, title: "Link your business account", status: "current" }],
    },
    stamps: { verified: true, verified_on: "2026-11-30", carrier_id: "se-1" },
    identifiers: { summary: null, summary_text: null },
    approval: { state: "not_started", last_checked: null, next_check: null, check_now_allowed: false },
    savings: { state: "not_approved", parcels: [], platform: { state: "unchecked" }, priced_at: null, platform_checked_at: null },
    usps_link: link,
    business: 1,
    businesses: [overview(1, "My business")],
    ...over,
  } as unknown as AppSnapshot);
  const onContinue = vi.fn();
  const onReconnect = vi.fn();
  render(Dashboard, { props: { onContinue, onReconnect, onApproval: vi.fn() }, context: storeContext(store) });
  return { onContinue, onReconnect, store };
}

const tone = (id: string) => screen.getByTestId("part-" + id).dataset.tone;

describe("Dashboard", () => {
  it("shows each part with its state and date, and the next step as the one action", () => {
    show({}, { state: "not_linked" });
    expect(tone("stamps")).toBe("done");
    expect(screen.getByTestId("part-stamps").textContent).toContain("2026-11-30");
    expect(tone("link")).toBe("todo");
    expect(tone("identifiers")).toBe("todo");
    expect(screen.getByTestId("next-action").textContent).toContain("Link your business account (step 5 of 7)");
    expect(screen.getByTestId("continue-setup").textContent).toBe("Continue");
  });

  it("puts a broken link first", () => {
    const { onReconnect } = show({}, { state: "needs_reconnecting", message: "gone" } as LinkStatus);
    expect(tone("link")).toBe("attention");
    screen.getByTestId("next-reconnect").click();
    expect(onReconnect).toHaveBeenCalled();
  });

  it("once approved there is nothing to do", () => {
    show(
      {
        identifiers: {
          summary: { linked_on: "2026-11-30", crid: "20538353", mid: "901234567" },
          summary_text: null,
        } as unknown as AppSnapshot["identifiers"],
        approval: { state: "approved", approved_on: "2026-12-01", last_checked: 1, next_check: null, check_now_allowed: false },
      },
      { state: "linked", record: { linked_at: 1_796_000_000 } } as unknown as LinkStatus,
    );
    expect(["stamps", "link", "identifiers", "approval"].map(tone)).toEqual(["done", "done", "done", "done"]);
    expect(screen.getByTestId("part-approval").textContent).toContain("2026-12-01");
    expect(screen.getByTestId("next-action").textContent).toContain("Nothing to do");
    expect(screen.queryByTestId("continue-setup")).toBeNull();
  });
});

describe("several businesses", () => {
  it("shows no overview while there is one business", () => {
    show({}, { state: "not_linked" });
    expect(screen.queryByTestId("overview")).toBeNull();
  });

  it("lists every business with its next step and approval, and shows another on request", async () => {
    const { call } = await import("../lib/ipc");
    const { store } = show({ business: 2, businesses: [overview(1, "First Shop", true), overview(2, "Second Shop")] }, { state: "not_linked" });
    const rows = screen.getAllByTestId("overview-row");
    expect(rows.map((r) => r.getAttribute("data-approval"))).toEqual(["approved", "not_started"]);
    expect(rows[0].textContent).toContain("First Shop");
    expect(rows[0].textContent).toContain("Approved on 2026-12-01");
    expect(rows[1].textContent).toContain("Step 2 of 7: Stamps.com account");
    expect(rows[1].getAttribute("aria-current")).toBe("true");
    expect(screen.getByTestId("dashboard-business").textContent).toBe("Second Shop");
    const next = { ...store.snapshot!, business: 1 };
    vi.mocked(call).mockResolvedValueOnce(next);
    screen.getByRole("button", { name: "Show First Shop" }).click();
    await vi.waitFor(() => expect(store.snapshot!.business).toBe(1));
    expect(call).toHaveBeenCalledWith("switch_business", { business: 1 });
  });
});
