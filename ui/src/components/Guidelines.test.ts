import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import type { AppSnapshot, DashboardView, OnboardingEvent, Step, StepStatus } from "../lib/bindings";
import { AppStore, storeContext } from "../lib/appStore.svelte";
import Guidelines from "./Guidelines.svelte";

/** The store the App would give, holding `view`, with `send` in place of the backend. */
function withStore(v: DashboardView, send: (e: OnboardingEvent) => Promise<boolean>) {
  const store = new AppStore();
  store.setSnapshot({ view: v, usps_link: { state: "not_linked" }, stamps: null, identifiers: null } as unknown as AppSnapshot);
  store.send = send;
  return { context: storeContext(store) };
}

function view(current: Step, done: Step[]): DashboardView {
  const order: Step[] = ["before_you_start", "stamps_account", "usps_business_account", "payment_account", "link_business_account", "identifiers", "waiting_for_approval"];
  return {
    show_popup: false,
    show_connect_banner: true,
    show_status_banner: false,
    current_step: current,
    completed_count: done.length,
    total_steps: 7,
    checklist: [],
    steps: order.map((step, i) => ({
      step,
      number: i + 1,
      title: step,
      status: (done.includes(step) ? "done" : step === current ? "current" : "locked") as StepStatus,
    })),
  };
}

describe("Guidelines", () => {
  it("will not continue past the payment step until the EPA is confirmed", async () => {
    const send = vi.fn().mockResolvedValue(true);
    render(Guidelines, withStore(view("payment_account", ["before_you_start", "stamps_account", "usps_business_account"]), send));
    const next = screen.getByTestId("complete-step") as HTMLButtonElement;
    expect(next.disabled).toBe(true);
    await fireEvent.click(next);
    expect(send).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByTestId("payment-confirm"));
    expect(next.disabled).toBe(false);
    await fireEvent.click(next);
    expect(send).toHaveBeenCalledWith({ type: "complete", step: "payment_account" });
  });

  it("lists every step with its status and locks the ones ahead", () => {
    render(Guidelines, withStore(view("before_you_start", []), vi.fn()));
    expect((screen.getByTestId("step-before_you_start") as HTMLElement).dataset.status).toBe("current");
    expect((screen.getByTestId("step-identifiers") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("password-warning").textContent).toContain("last resort");
  });
});
