import { beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import type { IdentifiersView, IpcError } from "../lib/bindings";

// The Rust side is replaced by a mock of the typed `call`; the component's own logic is under test.
const call = vi.fn();
vi.mock("../lib/ipc", () => ({ call: (...args: unknown[]) => call(...args) }));
const { default: IdentifiersStep } = await import("./IdentifiersStep.svelte");

function view(prefilled: string[] = []): IdentifiersView {
  return {
    form: {
      business_name: "", crid: prefilled.includes("crid") ? "20538353" : "", mid: "", manifest_mid: "", returns_mid: "",
      account_type: "EPS", eps_account: "", permit_number: "", permit_zip: "",
    },
    prefilled,
    summary: null,
    summary_text: null,
  };
}

describe("IdentifiersStep", () => {
  beforeEach(() => call.mockReset());

  it("asks the user to confirm values filled in from the USPS sign-in before verifying", async () => {
    call.mockResolvedValue([]);
    render(IdentifiersStep, { identifiers: view(["crid"]), onUpdate: vi.fn() });
    expect(screen.getByTestId("prefilled-note").textContent).toContain("CRID");
    expect((document.querySelector('[data-field="crid"]') as HTMLInputElement).value).toBe("20538353");
    const verify = screen.getByTestId("identifiers-verify") as HTMLButtonElement;
    expect(verify.disabled).toBe(true);
    await fireEvent.click(screen.getByTestId("identifiers-confirm"));
    expect(verify.disabled).toBe(false);
  });

  it("shows permit fields for a permit and USPS's refusal beside the field it names", async () => {
    const refusal: IpcError = {
      kind: "remote_error",
      message: "USPS has no permit with this number. (USPS error 100001)",
      fields: [{ field: "permit_number", message: "USPS has no permit with this number. (USPS error 100001)" }],
      request_id: null,
    };
    call.mockImplementation(async (name: string) => {
      if (name === "verify_identifiers") throw refusal;
      return [];
    });
    const onUpdate = vi.fn();
    render(IdentifiersStep, { identifiers: view(), onUpdate });
    expect(document.querySelector('[data-field="eps_account"]')).not.toBeNull();
    await fireEvent.click(screen.getByTestId("account-type-permit"));
    expect(document.querySelector('[data-field="eps_account"]')).toBeNull();
    expect(document.querySelector('[data-field="permit_zip"]')).not.toBeNull();
    await fireEvent.click(screen.getByTestId("identifiers-verify"));
    await waitFor(() => expect(document.querySelector('[data-problem="permit_number"]')?.textContent).toContain("100001"));
    expect(screen.queryByTestId("identifiers-error")).toBeNull(); // the message stands beside its field only
    expect(onUpdate).not.toHaveBeenCalled();
    const sent = call.mock.calls.find(([name]) => name === "verify_identifiers")![1];
    expect(sent.form.account_type).toBe("PERMIT");
  });

  it("offers to reconnect when USPS no longer accepts the link", async () => {
    call.mockImplementation(async (name: string) => {
      if (name === "verify_identifiers") throw { kind: "needs_reconnecting", message: "reconnect", fields: [], request_id: null };
      return [];
    });
    const onReconnect = vi.fn();
    render(IdentifiersStep, { identifiers: view(), onUpdate: vi.fn(), onReconnect });
    await fireEvent.click(screen.getByTestId("identifiers-verify"));
    await fireEvent.click(await screen.findByTestId("identifiers-reconnect"));
    expect(onReconnect).toHaveBeenCalled();
  });
});
