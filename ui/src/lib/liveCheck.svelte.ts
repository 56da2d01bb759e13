// Validation as the user types, shared by the forms: the Rust validators judge the whole form (through
// IPC) 250 ms after the last change, and a field's message shows once the user has left that field.
// A problem the service named on a field shows until that field is changed.
//
// A field being changed shows no message until the check of its new value is back: the message of
// the value before would be wrong about the one typed now.
import type { FieldProblem, IpcError } from "./bindings";

/** The form fields an element stands for: `data-checks` (one input for several, like MM/YY) or `data-field`. */
function fieldsOf(e: Event): string[] {
  const el = e.target as HTMLElement | null;
  const names = el?.dataset?.checks ?? el?.dataset?.field;
  return names ? names.split(" ").filter(Boolean) : [];
}

export class LiveCheck {
  live: FieldProblem[] = $state([]);
  touched: Set<string> = $state(new Set());
  /** Changed, and their check is not back yet. */
  pending: Set<string> = $state(new Set());
  /** Changed since the last submit: the service's message about them is out of date. */
  edited: Set<string> = $state(new Set());
  #timer: ReturnType<typeof setTimeout> | undefined;
  #check: () => Promise<FieldProblem[]>;

  /** `check` returns the form's problems (it may also keep the draft); a failure keeps the last ones. */
  constructor(check: () => Promise<FieldProblem[]>) {
    this.#check = check;
  }

  /** The form changed (an input event): check it again once the typing pauses. */
  changed = (e?: Event) => {
    const fields = e ? fieldsOf(e) : [];
    if (fields.length) {
      this.pending = new Set([...this.pending, ...fields]);
      this.edited = new Set([...this.edited, ...fields]);
    }
    this.#schedule();
  };

  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(async () => {
      const asked = this.pending;
      this.live = await this.#check().catch(() => this.live);
      // Fields changed again while this check ran wait for the next one.
      if (this.pending === asked) this.pending = new Set();
    }, 250);
  }

  /** A field was left (focusout on an element with `data-field`). */
  touch = (e: Event) => {
    const fields = fieldsOf(e);
    if (fields.length) this.touched = new Set([...this.touched, ...fields]);
    this.#schedule();
  };

  /** Submitting: every field counts as left, and a pending check is dropped. */
  submit(fields: string[] = []) {
    clearTimeout(this.#timer);
    this.pending = new Set();
    this.edited = new Set();
    if (fields.length) this.touched = new Set(fields);
  }

  problem(field: string, error: IpcError | null): string | undefined {
    if (this.pending.has(field)) return undefined;
    const fromServer = this.edited.has(field) ? undefined : error?.fields.find((f) => f.field === field)?.message;
    if (fromServer) return fromServer;
    return this.touched.has(field) ? this.live.find((f) => f.field === field)?.message : undefined;
  }
}
