import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { EVENT_STORAGE } from "./bindings";
import { call, onSaveProblem, toIpcError } from "./ipc";

afterEach(() => clearMocks());

describe("toIpcError", () => {
  it("keeps a well-formed {kind, message}", () => {
    expect(toIpcError({ kind: "keyring_locked", message: "unlock" })).toEqual({
      kind: "keyring_locked",
      message: "unlock",
      fields: [],
      request_id: null,
    });
    const withFields = { kind: "remote_error", message: "bad", fields: [{ field: "address.phone", message: "x" }], request_id: "r-1" };
    expect(toIpcError(withFields)).toEqual(withFields);
  });
  it("turns unknown kinds, strings and Errors into internal errors", () => {
    expect(toIpcError({ kind: "made_up", message: "x" }).kind).toBe("internal");
    expect(toIpcError("command not allowed")).toEqual({ kind: "internal", message: "command not allowed", fields: [], request_id: null });
    expect(toIpcError(new Error("boom")).message).toBe("boom");
    expect(toIpcError(undefined).message).toBe("Something went wrong.");
  });
});

describe("call", () => {
  it("passes the argument object and returns the result", async () => {
    const seen: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      seen.push([cmd, args]);
      return { shipengine_api_key: true, usps_consumer_secret: false, usps_linked: false };
    });
    const r = await call("store_secret", { slot: "shipengine_api_key", value: "k" });
    expect(r.shipengine_api_key).toBe(true);
    expect(seen).toEqual([["store_secret", { slot: "shipengine_api_key", value: "k" }]]);
  });
  it("rejects with a normalized IpcError", async () => {
    mockIPC(() => {
      throw { kind: "invalid_input", message: "the redirect URI must be …", fields: [], request_id: null };
    });
    await expect(call("get_snapshot")).rejects.toEqual({ kind: "invalid_input", message: "the redirect URI must be …", fields: [], request_id: null });
  });
});

describe("onSaveProblem", () => {
  it("follows the backend's storage event, not which command ran", async () => {
    mockIPC(() => {
      throw { kind: "storage", message: "Could not save your progress: the disk is full.", fields: [], request_id: null };
    }, { shouldMockEvents: true });
    const seen: Array<string | null> = [];
    const stop = await onSaveProblem((p) => seen.push(p ? p.message : null));
    // A command's storage error alone says nothing: the backend's event is the one source.
    await expect(call("save_stamps_draft", { draft: { nickname: "", email: "", address: {} as never } })).rejects.toMatchObject({ kind: "storage" });
    expect(seen).toEqual([]);
    const problem = { kind: "storage", message: "Could not save your progress: the disk is full.", fields: [], request_id: null };
    await emit(EVENT_STORAGE, { problem });
    await emit(EVENT_STORAGE, { problem: null });
    expect(seen).toEqual([problem.message, null]);
    stop();
    await emit(EVENT_STORAGE, { problem });
    expect(seen).toHaveLength(2);
  });
});
