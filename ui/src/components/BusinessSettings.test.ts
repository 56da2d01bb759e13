import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import type { AppSnapshot, BusinessOverview } from "../lib/bindings";
import { AppStore, storeContext } from "../lib/appStore.svelte";

vi.mock("../lib/ipc", () => ({ call: vi.fn() }));
import { call } from "../lib/ipc";
import BusinessSettings from "./BusinessSettings.svelte";
import AddBusiness from "./AddBusiness.svelte";

function business(id: number, name: string): BusinessOverview {
  return {
    id,
    name,
    current_step: "before_you_start",
    current_step_title: "Before you start",
    current_step_number: 1,
    completed_count: 0,
    total_steps: 7,
    link_complete: false,
    approval: { state: "not_started", last_checked: null, next_check: null, check_now_allowed: false },
  };
}

function storeWith(names: string[], shown = 1): AppStore {
  const store = new AppStore();
  store.setSnapshot({
    business: shown,
    businesses: names.map((n, i) => business(i + 1, n)),
    usps_link: { state: "not_linked" },
  } as unknown as AppSnapshot);
  return store;
}

describe("the business's settings", () => {
  it("says why a name is refused and keeps the business as it was", async () => {
    const store = storeWith(["My business", "Second Shop"]);
    vi.mocked(call).mockRejectedValueOnce({ kind: "invalid_input", message: 'another business is already called "Second Shop"', fields: [], request_id: null });
    render(BusinessSettings, { context: storeContext(store) });
    const field = screen.getByTestId("business-name") as HTMLInputElement;
    expect(field.value).toBe("My business");
    await fireEvent.input(field, { target: { value: "second shop" } });
    await fireEvent.click(screen.getByTestId("rename-business"));
    expect(call).toHaveBeenCalledWith("rename_business", { business: 1, name: "second shop" });
    expect((await screen.findByTestId("rename-business-error")).textContent).toContain("already called");
    expect(field.getAttribute("aria-invalid")).toBe("true");
    expect(store.snapshot!.businesses[0].name).toBe("My business");
  });

  it("asks before removing, and removes only when confirmed", async () => {
    const store = storeWith(["My business", "Second Shop"], 2);
    render(BusinessSettings, { context: storeContext(store) });
    await fireEvent.click(screen.getByTestId("remove-business"));
    expect(screen.getByTestId("remove-business-dialog").textContent).toContain("Remove Second Shop?");
    await vi.waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("remove-business-cancel")));
    expect(call).not.toHaveBeenCalledWith("remove_business", expect.anything());
    await fireEvent.click(screen.getByTestId("remove-business-cancel"));
    expect(screen.queryByTestId("remove-business-dialog")).toBeNull();
    await vi.waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("remove-business")));
    const after = { ...store.snapshot!, business: 1, businesses: [business(1, "My business")] };
    vi.mocked(call).mockResolvedValueOnce(after);
    await fireEvent.click(screen.getByTestId("remove-business"));
    await fireEvent.click(screen.getByTestId("remove-business-confirm"));
    expect(call).toHaveBeenCalledWith("remove_business", { business: 2 });
    await vi.waitFor(() => expect(store.snapshot!.businesses).toHaveLength(1));
  });

  it("offers no removal of the only business", () => {
    render(BusinessSettings, { context: storeContext(storeWith(["My business"])) });
    expect(screen.queryByTestId("remove-business")).toBeNull();
  });
});

describe("adding a business", () => {
  it("keeps the form open with the reason when the name is refused, and closes once added", async () => {
    const store = storeWith(["My business"]);
    store.addingBusiness = true;
    render(AddBusiness, { context: storeContext(store) });
    const name = screen.getByTestId("new-business-name");
    expect(document.activeElement).toBe(name);
    vi.mocked(call).mockRejectedValueOnce({ kind: "invalid_input", message: "enter the business's name", fields: [], request_id: null });
    await fireEvent.click(screen.getByTestId("add-business-save"));
    expect((await screen.findByTestId("add-business-error")).textContent).toBe("enter the business's name");
    expect(store.addingBusiness).toBe(true);
    vi.mocked(call).mockResolvedValueOnce({ ...store.snapshot!, business: 2, businesses: [business(1, "My business"), business(2, "Shop")] });
    await fireEvent.input(name, { target: { value: "Shop" } });
    await fireEvent.click(screen.getByTestId("add-business-save"));
    expect(call).toHaveBeenLastCalledWith("add_business", { name: "Shop" });
    await vi.waitFor(() => expect(store.addingBusiness).toBe(false));
    expect(store.snapshot!.business).toBe(2);
  });
});
