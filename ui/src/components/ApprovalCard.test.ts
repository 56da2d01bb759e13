import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import type { ApprovalView } from "../lib/bindings";
import { checkTime, nextCheckTime } from "../lib/approval";

const call = vi.fn();
vi.mock("../lib/ipc", () => ({ call: (...args: unknown[]) => call(...args) }));
const { default: ApprovalCard } = await import("./ApprovalCard.svelte");

const now = Math.floor(Date.now() / 1000);
const waiting: ApprovalView = { state: "waiting", last_checked: now - 60, next_check: now + 4 * 3600, check_now_allowed: true };

describe("ApprovalCard", () => {
  it("shows waiting with the times, and Check now hands the new view up", async () => {
    const onChange = vi.fn();
    const approved: ApprovalView = { state: "approved", approved_on: "2026-12-01", last_checked: now, next_check: null, check_now_allowed: false };
    call.mockResolvedValueOnce(approved);
    render(ApprovalCard, { approval: waiting, onChange });
    expect(screen.getByTestId("approval-waiting")).toBeTruthy();
    expect(screen.getByTestId("approval-times").textContent).toContain("Last checked");
    await fireEvent.click(screen.getByTestId("check-now"));
    expect(call).toHaveBeenCalledWith("check_approval_now");
    expect(onChange).toHaveBeenCalledWith(approved);
  });

  it("says why Check now was refused, and has no button once approved", async () => {
    call.mockRejectedValueOnce({ kind: "rate_limited", message: "uspslink has asked USPS 12 times in the last 24 hours" });
    const { unmount } = render(ApprovalCard, { approval: waiting, onChange: vi.fn() });
    await fireEvent.click(screen.getByTestId("check-now"));
    const error = await screen.findByTestId("approval-error");
    expect(error.dataset.kind).toBe("rate_limited");
    unmount();
    render(ApprovalCard, {
      approval: { state: "approved", approved_on: "2026-12-01", last_checked: now, next_check: null, check_now_allowed: false },
      onChange: vi.fn(),
    });
    expect(screen.getByTestId("approval-approved").textContent).toContain("USPS approved your NSA rates on 2026-12-01");
    expect(screen.queryByTestId("check-now")).toBeNull();
  });

  it("disables Check now past the daily ceiling", () => {
    render(ApprovalCard, { approval: { ...waiting, check_now_allowed: false }, onChange: vi.fn() });
    expect((screen.getByTestId("check-now") as HTMLButtonElement).disabled).toBe(true);
  });
});

describe("check times", () => {
  it("says never, a time today, a date another day, and in a moment once due", () => {
    const today = new Date(2026, 11, 1, 12, 0, 0);
    const secs = (d: Date) => Math.floor(d.getTime() / 1000);
    expect(checkTime(null, today)).toBe("never");
    expect(checkTime(secs(new Date(2026, 11, 1, 9, 30)), today)).not.toMatch(/Dec/);
    expect(checkTime(secs(new Date(2026, 11, 3, 9, 30)), today)).toMatch(/Dec/);
    expect(nextCheckTime(secs(new Date(2026, 11, 1, 11, 59)), today)).toBe("in a moment");
    expect(nextCheckTime(secs(new Date(2026, 11, 1, 16, 0)), today)).not.toBe("in a moment");
  });
});
