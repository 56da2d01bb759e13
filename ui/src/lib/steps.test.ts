import { describe, expect, it } from "vitest";
import type { Step } from "./bindings";
import { PASSWORD_RESET_WARNING, STEP_TEXT, progressPercent } from "./steps";

const ALL_STEPS: Step[] = [
  "before_you_start",
  "stamps_account",
  "usps_business_account",
  "payment_account",
  "link_business_account",
  "identifiers",
  "waiting_for_approval",
];

describe("steps", () => {
  it("has text for every step", () => {
    expect(Object.keys(STEP_TEXT).sort()).toEqual([...ALL_STEPS].sort());
    for (const s of ALL_STEPS) expect(STEP_TEXT[s].body.length).toBeGreaterThan(0);
  });
  it("quotes the approval wording and the password warning from the guide", () => {
    expect(STEP_TEXT.waiting_for_approval.body[0]).toBe("Please wait for approval from USPS to begin printing with NSA rates.");
    expect(PASSWORD_RESET_WARNING).toContain("immediately breaks all active connections");
  });
  it("computes progress", () => {
    expect(progressPercent({ completed_count: 0, total_steps: 7 })).toBe(0);
    expect(progressPercent({ completed_count: 2, total_steps: 7 })).toBe(29);
    expect(progressPercent({ completed_count: 7, total_steps: 7 })).toBe(100);
    expect(progressPercent({ completed_count: 3, total_steps: 0 })).toBe(0);
  });
});
