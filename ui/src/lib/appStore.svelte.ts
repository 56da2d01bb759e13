// The app's state as the window holds it: the snapshot, the link, the errors. Every kind of update
// the backend sends (a command's answer, an event) is applied here and only here; components get
// the store through context (`appStore()`), not through a chain of props.
import { getContext, setContext } from "svelte";
import type {
  AppSnapshot,
  ApprovalView,
  BusinessId,
  BusinessOverview,
  DeepLinkNotice,
  IdentifiersUpdate,
  IdentifiersView,
  IpcError,
  LinkStatus,
  LinkUpdate,
  OnboardingEvent,
  SavingsUpdate,
  StampsUpdate,
} from "./bindings";
import { call } from "./ipc";

const KEY = Symbol("uspslink app store");

export class AppStore {
  snapshot: AppSnapshot | null = $state(null);
  link: LinkStatus = $state({ state: "not_linked" });
  linkBusy = $state(false);
  linkError: IpcError | null = $state(null);
  /** The browser came back from USPS for the sign-in now open: the link step says "Signed in"
   * while the code is exchanged. Nothing of the OAuth answer itself is ever shown. */
  signInAnswer: DeepLinkNotice | null = $state(null);
  /** The last refused action (shown at the top of the page); a failed save is shown elsewhere. */
  error: IpcError | null = $state(null);
  /** The owner is naming a new business (the form under the header). */
  addingBusiness = $state(false);

  /** A whole new snapshot (start, Settings saved, the sandbox came up). */
  setSnapshot(snapshot: AppSnapshot) {
    this.snapshot = snapshot;
    this.link = snapshot.usps_link;
  }

  /** Another business is shown (switched, added or removed): everything on screen is its. */
  showBusiness(snapshot: AppSnapshot) {
    this.setSnapshot(snapshot);
    this.signInAnswer = null;
    this.linkError = null;
    this.linkBusy = false;
    this.error = null;
    this.addingBusiness = false;
  }

  /** The watch checked a business: the overview of every business. */
  applyOverview(businesses: BusinessOverview[]) {
    if (this.snapshot) this.snapshot = { ...this.snapshot, businesses };
  }

  /** Switches go one after the other (arrow keys on the switcher send one per key), so the last
   * asked is the one the backend shows and the one the window shows. */
  private switching: Promise<void> = Promise.resolve();

  switchBusiness(business: BusinessId): Promise<void> {
    this.switching = this.switching.then(async () => {
      try {
        this.showBusiness(await call("switch_business", { business }));
      } catch (e) {
        this.error = e as IpcError;
      }
    });
    return this.switching;
  }

  /** Add a business and show it; the refusal (a name taken, empty, too long) is returned to the form. */
  async addBusiness(name: string): Promise<IpcError | null> {
    try {
      this.showBusiness(await call("add_business", { name }));
      this.addingBusiness = false;
      return null;
    } catch (e) {
      return e as IpcError;
    }
  }

  async renameBusiness(business: BusinessId, name: string): Promise<IpcError | null> {
    try {
      this.setSnapshot(await call("rename_business", { business, name }));
      return null;
    } catch (e) {
      return e as IpcError;
    }
  }

  async removeBusiness(business: BusinessId): Promise<IpcError | null> {
    try {
      this.showBusiness(await call("remove_business", { business }));
      return null;
    } catch (e) {
      return e as IpcError;
    }
  }

  applyLinkUpdate(u: LinkUpdate) {
    this.link = u.status;
    // The answer has been dealt with (linked, failed, or a new sign-in started).
    if (u.status.state !== "not_linked") this.signInAnswer = null;
    if (this.snapshot) this.snapshot = { ...this.snapshot, view: u.view, identifiers: u.identifiers };
  }

  applyStamps(u: StampsUpdate) {
    if (this.snapshot) this.snapshot = { ...this.snapshot, stamps: u.record, view: u.view };
  }

  applyIdentifiers(u: IdentifiersUpdate) {
    if (this.snapshot) this.snapshot = { ...this.snapshot, identifiers: u.identifiers, view: u.view };
  }

  setIdentifiersDraft(identifiers: IdentifiersView) {
    if (this.snapshot) this.snapshot = { ...this.snapshot, identifiers };
  }

  applyApproval(approval: ApprovalView) {
    if (this.snapshot) this.snapshot = { ...this.snapshot, approval };
  }

  /** The reference parcels were priced: the savings, and the summary that now carries them. */
  applySavings(u: SavingsUpdate) {
    if (this.snapshot) this.snapshot = { ...this.snapshot, savings: u.savings, identifiers: u.identifiers };
  }

  /** Send an onboarding event; returns whether it was accepted. */
  async send(event: OnboardingEvent): Promise<boolean> {
    if (!this.snapshot) return false;
    try {
      const view = await call("onboarding_event", { event });
      this.snapshot = { ...this.snapshot, view };
      this.error = null;
      return true;
    } catch (e) {
      // A failed save is shown once, by the save-problem alert.
      this.error = (e as IpcError).kind === "storage" ? null : (e as IpcError);
      return false;
    }
  }

  async startLink() {
    this.signInAnswer = null;
    this.linkBusy = true;
    this.linkError = null;
    try {
      this.applyLinkUpdate(await call("start_usps_link"));
    } catch (e) {
      this.linkError = e as IpcError;
    } finally {
      this.linkBusy = false;
    }
  }

  async cancelLink() {
    this.applyLinkUpdate(await call("cancel_usps_link"));
  }

  async openSignup() {
    try {
      await call("open_usps_signup");
    } catch (e) {
      this.error = e as IpcError;
    }
  }
}

export function provideAppStore(store: AppStore): AppStore {
  return setContext(KEY, store);
}

export function appStore(): AppStore {
  const store = getContext<AppStore | undefined>(KEY);
  if (!store) throw new Error("appStore() outside the App (provideAppStore first)");
  return store;
}

/** For component tests: a context map holding `store`. */
export function storeContext(store: AppStore): Map<symbol, AppStore> {
  return new Map([[KEY, store]]);
}
