import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import ConnectPopup from "./ConnectPopup.svelte";

describe("ConnectPopup", () => {
  it("shows the guide's title and focuses See Instructions", () => {
    render(ConnectPopup, { onSeeInstructions: vi.fn(), onNotNow: vi.fn() });
    expect(screen.getByRole("dialog").textContent).toContain("Connect your USPS business account");
    expect(document.activeElement?.textContent?.trim()).toBe("See Instructions");
  });
  it("calls the right handler for each button and for Escape", async () => {
    const see = vi.fn();
    const notNow = vi.fn();
    render(ConnectPopup, { onSeeInstructions: see, onNotNow: notNow });
    await fireEvent.click(screen.getByText("See Instructions"));
    expect(see).toHaveBeenCalledTimes(1);
    expect(notNow).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByText("Not now"));
    await fireEvent.keyDown(window, { key: "Escape" });
    expect(notNow).toHaveBeenCalledTimes(2);
  });
});
