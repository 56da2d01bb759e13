import { describe, expect, it, vi } from "vitest";
import type { AppSnapshot, DashboardView, IdentifiersView } from "./bindings";

const call = vi.fn();
vi.mock("./ipc", () => ({ call: (...args: unknown[]) => call(...args) }));
const { AppStore } = await import("./appStore.svelte");

const view = (n: number) => ({ completed_count: n }) as unknown as DashboardView;
const snapshot = {
  view: view(0),
  usps_link: { state: "not_linked" },
  identifiers: { prefilled: [] },
  stamps: { verified: false },
  approval: { state: "not_started" },
} as unknown as AppSnapshot;

describe("AppStore", () => {
  it("applies each kind of update to the one snapshot", () => {
    const s = new AppStore();
    s.setSnapshot(snapshot);
    const identifiers = { prefilled: ["crid"] } as unknown as IdentifiersView;
    s.applyLinkUpdate({ status: { state: "waiting" }, view: view(4), identifiers });
    expect(s.link.state).toBe("waiting");
    expect(s.snapshot!.view.completed_count).toBe(4);
    expect(s.snapshot!.identifiers).toEqual(identifiers);
    s.applyApproval({ state: "waiting", last_checked: 1, next_check: 2, check_now_allowed: true });
    expect(s.snapshot!.approval.state).toBe("waiting");
    expect(s.snapshot!.view.completed_count).toBe(4); // an update keeps what it does not name
  });

  it("says a refused event once and leaves a failed save to the save alert", async () => {
    const s = new AppStore();
    s.setSnapshot(snapshot);
    call.mockRejectedValueOnce({ kind: "invalid_input", message: "no" });
    expect(await s.send({ type: "dismiss_popup" })).toBe(false);
    expect(s.error?.kind).toBe("invalid_input");
    call.mockRejectedValueOnce({ kind: "storage", message: "disk full" });
    expect(await s.send({ type: "dismiss_popup" })).toBe(false);
    expect(s.error).toBeNull();
    call.mockResolvedValueOnce(view(1));
    expect(await s.send({ type: "dismiss_popup" })).toBe(true);
    expect(s.snapshot!.view.completed_count).toBe(1);
  });

  it("keeps a failed link start beside the step and is not busy after it", async () => {
    const s = new AppStore();
    s.setSnapshot(snapshot);
    call.mockRejectedValueOnce({ kind: "not_configured", message: "enter the key" });
    await s.startLink();
    expect(s.linkError?.kind).toBe("not_configured");
    expect(s.linkBusy).toBe(false);
  });

  it("sends switches of business one after the other, so the last asked is the one shown", async () => {
    const s = new AppStore();
    s.setSnapshot({ ...snapshot, business: 1 } as AppSnapshot);
    s.linkBusy = true;
    call.mockClear();
    const answers: Array<(v: AppSnapshot) => void> = [];
    call.mockImplementation(() => new Promise<AppSnapshot>((resolve) => answers.push(resolve)));
    const first = s.switchBusiness(2);
    const second = s.switchBusiness(3);
    await Promise.resolve();
    expect(call).toHaveBeenCalledTimes(1);
    expect(call).toHaveBeenLastCalledWith("switch_business", { business: 2 });
    answers[0]({ ...snapshot, business: 2 } as AppSnapshot);
    await first;
    expect(s.snapshot!.business).toBe(2);
    expect(s.linkBusy).toBe(false);
    await vi.waitFor(() => expect(call).toHaveBeenCalledTimes(2));
    expect(call).toHaveBeenLastCalledWith("switch_business", { business: 3 });
    answers[1]({ ...snapshot, business: 3 } as AppSnapshot);
    await second;
    expect(s.snapshot!.business).toBe(3);
    call.mockReset();
  });
});
