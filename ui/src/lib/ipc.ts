// Typed access to the Rust commands. The types come from lib/bindings.ts, generated from Rust.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import {
  EVENT_APPROVAL,
  EVENT_BUSINESSES,
  EVENT_DEEP_LINK,
  EVENT_OPEN_ROUTE,
  EVENT_RETRY_WAIT,
  EVENT_SAVINGS,
  EVENT_STORAGE,
  EVENT_USPS_LINK,
  ERROR_KINDS,
  type ApprovalView,
  type BusinessOverview,
  type Commands,
  type DeepLinkNotice,
  type ErrorKind,
  type Events,
  type IpcError,
  type LinkUpdate,
  type RetryWait,
  type Route,
  type SavingsUpdate,
} from "./bindings";

/** Listen to one event with the payload the backend declares for it (bindings' `Events`). */
function on<K extends keyof Events>(name: K, handler: (payload: Events[K]) => void): Promise<UnlistenFn> {
  return listen<Events[K]>(name, (event) => handler(event.payload));
}

const KNOWN_KINDS: ReadonlySet<string> = new Set<ErrorKind>(ERROR_KINDS);

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

/** Hear whether progress can be saved: the backend reports a problem at every save that fails
 * (a command's or the watch's in the background) and clears it at the first save that works. A
 * failed save changes nothing, so the form keeps what was typed. */
export function onSaveProblem(listener: (problem: IpcError | null) => void): Promise<UnlistenFn> {
  return on(EVENT_STORAGE, (health) => listener(health.problem));
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

export function onRetryWait(handler: (wait: RetryWait) => void): Promise<UnlistenFn> {
  return on(EVENT_RETRY_WAIT, handler);
}

/** A notification was clicked while the window was open: show its screen. */
export function onOpenRoute(handler: (route: Route) => void): Promise<UnlistenFn> {
  return on(EVENT_OPEN_ROUTE, handler);
}

export function onDeepLink(handler: (notice: DeepLinkNotice) => void): Promise<UnlistenFn> {
  return on(EVENT_DEEP_LINK, handler);
}

export function onApproval(handler: (view: ApprovalView) => void): Promise<UnlistenFn> {
  return on(EVENT_APPROVAL, handler);
}

export function onSavings(handler: (update: SavingsUpdate) => void): Promise<UnlistenFn> {
  return on(EVENT_SAVINGS, handler);
}

export function onLinkUpdate(handler: (update: LinkUpdate) => void): Promise<UnlistenFn> {
  return on(EVENT_USPS_LINK, handler);
}

/** The watch checked a business (any, not only the one shown): the overview of every business. */
export function onBusinesses(handler: (businesses: BusinessOverview[]) => void): Promise<UnlistenFn> {
  return on(EVENT_BUSINESSES, handler);
}
