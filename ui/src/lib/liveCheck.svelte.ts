// Validation as the user types, shared by the forms: the Rust validators judge the whole form (through
// IPC) 250 ms after the last change, and a field's message shows once the user has left that field.
// A problem the service named on a field always shows.
import type { FieldProblem, IpcError } from "./bindings";

export class LiveCheck {
  live: FieldProblem[] = $state([]);
  touched: Set<string> = $state(new Set());
  #timer: ReturnType<typeof setTimeout> | undefined;
  #check: () => Promise<FieldProblem[]>;

  /** `check` returns the form's problems (it may also keep the draft); a failure keeps the last ones. */
  constructor(check: () => Promise<FieldProblem[]>) {
    this.#check = check;
  }

  /** The form changed: check it again once the typing pauses. */
  changed = () => {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(async () => {
      this.live = await this.#check().catch(() => this.live);
    }, 250);
  };

  /** A field was left (focusout on an element with `data-field`). */
  touch = (e: Event) => {
    const field = (e.target as HTMLElement).dataset.field;
    if (field) this.touched = new Set([...this.touched, field]);
    this.changed();
  };

  /** Submitting: every field counts as left, and a pending check is dropped. */
  submit(fields: string[] = []) {
    clearTimeout(this.#timer);
    if (fields.length) this.touched = new Set(fields);
  }

  problem(field: string, error: IpcError | null): string | undefined {
    const fromServer = error?.fields.find((f) => f.field === field)?.message;
    if (fromServer) return fromServer;
    return this.touched.has(field) ? this.live.find((f) => f.field === field)?.message : undefined;
  }
}
