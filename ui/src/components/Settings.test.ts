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

describe("Settings: open at login", () => {
  it("shows whether uspslink opens at login and turns it on and off", async () => {
    let enabled = false;
    call.mockImplementation(async (cmd: string, args?: { enabled: boolean }) => {
      if (cmd === "open_at_login") return { enabled };
      if (cmd === "set_open_at_login") return { enabled: (enabled = args!.enabled) };
      return cmd === "vault_status" ? { state: "ready" } : null;
    });
    render(Settings, { props: { snapshot: snapshot({}, null), link: { state: "not_linked" }, onSaved: vi.fn(), onLinkUpdate: vi.fn() } });
    const box = screen.getByTestId("open-at-login") as HTMLInputElement;
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    expect(box.checked).toBe(false);
    await fireEvent.click(box);
    await vi.waitFor(() => expect(enabled).toBe(true));
    expect(call).toHaveBeenCalledWith("set_open_at_login", { enabled: true });
    await fireEvent.click(box);
    await vi.waitFor(() => expect(enabled).toBe(false));
  });

  it("puts the box back and says why when the change is refused", async () => {
    call.mockImplementation(async (cmd: string) => {
      if (cmd === "open_at_login") return { enabled: false };
      if (cmd === "set_open_at_login") throw { kind: "internal", message: "no autostart folder", fields: [], request_id: null };
      return cmd === "vault_status" ? { state: "ready" } : null;
    });
    render(Settings, { props: { snapshot: snapshot({}, null), link: { state: "not_linked" }, onSaved: vi.fn(), onLinkUpdate: vi.fn() } });
    const box = screen.getByTestId("open-at-login") as HTMLInputElement;
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    await fireEvent.click(box);
    expect((await screen.findByTestId("open-at-login-error")).textContent).toContain("no autostart folder");
    expect(box.checked).toBe(false);
  });
});
