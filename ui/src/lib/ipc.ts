// Typed access to the Rust commands. The types come from lib/bindings.ts, generated from Rust.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import {
  EVENT_DEEP_LINK,
  EVENT_USPS_LINK,
  type Commands,
  type DeepLinkNotice,
  type ErrorKind,
  type IpcError,
  type LinkUpdate,
} from "./bindings";

const KNOWN_KINDS: ReadonlySet<string> = new Set<ErrorKind>([
  "invalid_deep_link",
  "keyring_unavailable",
  "keyring_locked",
  "keyring_failure",
  "login_failed",
  "needs_reconnecting",
  "not_configured",
  "invalid_input",
  "invalid_api_key",
  "rate_limited",
  "remote_error",
  "network",
  "malformed_response",
  "storage",
  "internal",
]);

/** Whatever a rejected invoke gives us, as `{kind, message}`. The UI branches on `kind` only. */
export function toIpcError(e: unknown): IpcError {
  if (e && typeof e === "object" && "kind" in e && "message" in e) {
    const { kind, message, fields, request_id } = e as Record<string, unknown>;
    if (typeof kind === "string" && KNOWN_KINDS.has(kind) && typeof message === "string") {
      return {
        kind: kind as ErrorKind,
        message,
        fields: Array.isArray(fields) ? (fields as IpcError["fields"]) : [],
        request_id: typeof request_id === "string" ? request_id : null,
      };
    }
  }
  // Tauri itself rejects with a plain string (e.g. a command the ACL does not allow).
  const message = typeof e === "string" ? e : e instanceof Error ? e.message : "Something went wrong.";
  return { kind: "internal", message, fields: [], request_id: null };
}

export async function call<K extends keyof Commands>(
  name: K,
  ...args: Commands[K]["args"] extends Record<string, never> ? [] : [Commands[K]["args"]]
): Promise<Commands[K]["returns"]> {
  try {
    return await invoke<Commands[K]["returns"]>(name, args[0] ?? {});
  } catch (e) {
    throw toIpcError(e);
  }
}

export function onDeepLink(handler: (notice: DeepLinkNotice) => void): Promise<UnlistenFn> {
  return listen<DeepLinkNotice>(EVENT_DEEP_LINK, (event) => handler(event.payload));
}

export function onLinkUpdate(handler: (update: LinkUpdate) => void): Promise<UnlistenFn> {
  return listen<LinkUpdate>(EVENT_USPS_LINK, (event) => handler(event.payload));
}
