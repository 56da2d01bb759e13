import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import type { AppSnapshot, Preferences } from "../lib/bindings";

const call = vi.fn();
vi.mock("../lib/ipc", () => ({ call: (...args: unknown[]) => call(...args) }));

import Settings from "./Settings.svelte";

function snapshot(p: Partial<Preferences>, signInService: string | null): AppSnapshot {
  const preferences: Preferences = {
    environment: "sandbox",
    usps_consumer_key: "",
    redirect_uri: "uspslink://oauth/callback",
    usps_sign_in: "service",
    sign_in_service_url: "",
    ...p,
  };
  return {
    preferences,
    endpoints: { usps_api: "", usps_authorize: "", usps_signup: "", shipengine_api: "", sign_in_service: signInService },
  } as unknown as AppSnapshot;
}

function show(s: AppSnapshot) {
  call.mockImplementation(async (cmd: string) => (cmd === "vault_status" ? { state: "ready" } : null));
  const onSaved = vi.fn();
  render(Settings, { props: { snapshot: s, link: { state: "not_linked" }, onSaved, onLinkUpdate: vi.fn() } });
  return onSaved;
}

describe("Settings: USPS sign-in", () => {
  it("asks nothing of a new user: the service is chosen and no developer fields show", () => {
    show(snapshot({}, "http://127.0.0.1:1"));
    expect((screen.getByTestId("sign-in-service") as HTMLInputElement).checked).toBe(true);
    expect(screen.getByTestId("sign-in-service-address").textContent).toContain("The Sandbox runs its own");
    expect(screen.queryByTestId("redirect-uri")).toBeNull();
    expect(screen.queryByTestId("consumer-key")).toBeNull();
  });

  it("shows the developer-app fields only for the own-app way, and saves the choice", async () => {
    const onSaved = show(snapshot({}, null));
    await fireEvent.click(screen.getByTestId("sign-in-own-app"));
    expect(screen.getByTestId("redirect-uri")).toBeTruthy();
    expect(screen.getByTestId("consumer-key")).toBeTruthy();
    call.mockImplementation(async (cmd: string, args?: { preferences: Preferences }) =>
      cmd === "save_preferences" ? snapshot(args!.preferences, null) : null,
    );
    await fireEvent.click(screen.getByTestId("save-preferences"));
    await vi.waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(call).toHaveBeenCalledWith("save_preferences", { preferences: expect.objectContaining({ usps_sign_in: "own_app" }) });
  });

  it("says when a live environment has no service built in and offers the address field", () => {
    show(snapshot({ environment: "production" }, null));
    expect(screen.getByTestId("sign-in-service-address").textContent).toContain("none built in");
    expect(screen.getByTestId("sign-in-service-url")).toBeTruthy();
  });
});
