import { afterEach, describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/svelte";
import RetryWait from "./RetryWait.svelte";

afterEach(() => vi.useRealTimers());

describe("RetryWait", () => {
  it("counts the wait down to the retry", async () => {
    vi.useFakeTimers();
    render(RetryWait, {
      wait: { operation: "checking your ShipStation account", attempt: 1, max_attempts: 3, wait_ms: 3000, reason: "HTTP 429" },
    });
    expect(screen.getByTestId("retry-wait").textContent).toContain("Checking your ShipStation account");
    expect(screen.getByTestId("retry-countdown").textContent).toBe("3");
    await vi.advanceTimersByTimeAsync(1100);
    expect(screen.getByTestId("retry-countdown").textContent).toBe("2");
    await vi.advanceTimersByTimeAsync(2000);
    expect(screen.queryByTestId("retry-countdown")).toBeNull();
    expect(screen.getByTestId("retry-wait").textContent).toContain("Trying again now (attempt 1 of 3)");
  });
});
