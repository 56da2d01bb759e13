import { describe, expect, it, vi } from "vitest";
import type { FieldProblem, IpcError } from "./bindings";
import { LiveCheck } from "./liveCheck.svelte";

function input(field: string): Event {
  const el = document.createElement("input");
  el.dataset.field = field;
  const e = new Event("input");
  Object.defineProperty(e, "target", { value: el });
  return e;
}

describe("LiveCheck", () => {
  it("hides a field's message while its new value is being checked", async () => {
    vi.useFakeTimers();
    let answer: FieldProblem[] = [{ field: "zip", message: "a ZIP has 5 digits" }];
    const check = new LiveCheck(async () => answer);
    check.touch(input("zip"));
    await vi.advanceTimersByTimeAsync(300);
    expect(check.problem("zip", null)).toBe("a ZIP has 5 digits");
    // Typing again: the old message goes at once, and comes back only if the new value is wrong too.
    check.changed(input("zip"));
    expect(check.problem("zip", null)).toBeUndefined();
    answer = [];
    await vi.advanceTimersByTimeAsync(300);
    expect(check.problem("zip", null)).toBeUndefined();
    vi.useRealTimers();
  });

  it("drops the service's message about a field once that field is changed", () => {
    const check = new LiveCheck(async () => []);
    const refused = { kind: "invalid_input", message: "x", fields: [{ field: "crid", message: "USPS does not know this CRID" }] } as unknown as IpcError;
    expect(check.problem("crid", refused)).toBe("USPS does not know this CRID");
    check.changed(input("mid"));
    expect(check.problem("crid", refused)).toBe("USPS does not know this CRID");
    check.changed(input("crid"));
    expect(check.problem("crid", refused)).toBeUndefined();
    check.submit();
    expect(check.problem("crid", refused)).toBe("USPS does not know this CRID");
  });

  it("one input may stand for several fields (MM/YY)", async () => {
    vi.useFakeTimers();
    const check = new LiveCheck(async () => [{ field: "credit_card.expiration_month", message: "01 to 12" }]);
    const el = document.createElement("input");
    el.dataset.field = "credit_card.expiry";
    el.dataset.checks = "credit_card.expiration_month credit_card.expiration_year";
    const e = new Event("focusout");
    Object.defineProperty(e, "target", { value: el });
    check.touch(e);
    await vi.advanceTimersByTimeAsync(300);
    expect(check.problem("credit_card.expiration_month", null)).toBe("01 to 12");
    vi.useRealTimers();
  });
});
