import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";

const call = vi.fn();
vi.mock("../lib/ipc", () => ({ call: (...args: unknown[]) => call(...args) }));
const { default: SummaryPanel } = await import("./SummaryPanel.svelte");

describe("SummaryPanel", () => {
  it("copies the summary text and hands the e-mail to the backend", async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    render(SummaryPanel, { text: "CRID: 20538353\nMID: 901234567" });
    expect((screen.getByTestId("summary-text") as HTMLTextAreaElement).value).toBe("CRID: 20538353\nMID: 901234567");
    await fireEvent.click(screen.getByTestId("summary-copy"));
    expect(writeText).toHaveBeenCalledWith("CRID: 20538353\nMID: 901234567");
    expect((await screen.findByTestId("summary-status")).textContent).toBe("Summary copied.");
    call.mockResolvedValue(null);
    await fireEvent.click(screen.getByTestId("summary-email"));
    expect(call).toHaveBeenCalledWith("email_link_summary");
  });

  it("falls back to select-and-copy when the clipboard API is refused", async () => {
    Object.defineProperty(navigator, "clipboard", { value: { writeText: vi.fn().mockRejectedValue(new Error("denied")) }, configurable: true });
    const exec = vi.fn().mockReturnValue(false);
    (document as unknown as { execCommand: unknown }).execCommand = exec;
    render(SummaryPanel, { text: "CRID: 1" });
    await fireEvent.click(screen.getByTestId("summary-copy"));
    expect(exec).toHaveBeenCalledWith("copy");
    expect((await screen.findByTestId("summary-status")).textContent).toContain("Ctrl+C");
  });
});
