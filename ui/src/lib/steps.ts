// Text of each guideline step, taken from the USPS / Auctane help-center guide.
import type { DashboardView, Step } from "./bindings";

export interface StepText {
  summary: string;
  body: string[];
}

export const PASSWORD_RESET_WARNING =
  "Reset your USPS password only as a last resort: resetting it immediately breaks all active connections, " +
  "including partner platforms, 3PL systems and custom integrations, and you must update your credentials " +
  "in every connected system to avoid label printing errors.";

export const STEP_TEXT: Record<Step, StepText> = {
  before_you_start: {
    summary: "What you need and where to find it.",
    body: [
      "CRID (Customer Registration ID), MID (Mailer ID) and your EPS (Enterprise Payment System) account number are required for the final setup.",
      "The CRID is the number USPS gives your business at its location (usually 8 digits). The MID identifies you as a mailer in the barcodes on your labels (6 or 9 digits). The EPS account is the payment account USPS charges your postage to (10 digits); a permit number and its ZIP Code can take its place.",
      "You find them in the USPS Business Customer Gateway, or ask your USPS sales representative.",
    ],
  },
  stamps_account: {
    summary: "Your ShipStation API key and a free Stamps.com account.",
    body: [
      "Enter your own ShipStation API (ShipEngine) key. You cannot link accounts to the public test account.",
      "uspslink then registers your free Stamps.com account and verifies it by SMS.",
    ],
  },
  usps_business_account: {
    summary: "Sign in to, or create, your USPS Business Account.",
    body: [
      "New to USPS? Set up your USPS Business Account: create a new account, validate your email and complete the three-step setup wizard.",
      "Already have a USPS Business Account AND a linked EPA? You may skip to linking your business account.",
    ],
  },
  payment_account: {
    summary: "Add your Enterprise Payment Account (EPA).",
    body: [
      "On your Business Portal dashboard, find \"Add Your Payment Account to Get Started\", agree to the Payment Account Terms and Conditions, choose ACH Debit and complete the setup.",
      "While the USPS page may suggest this step is optional, it is mandatory. A payment account shown as Pending (ACH) is fine.",
    ],
  },
  link_business_account: {
    summary: "Sign in with USPS and grant access.",
    body: [
      "Your browser opens the USPS sign-in page. Sign in, complete the multi-factor authentication, tick the agreement box and click Authorize and Continue.",
      "USPS then sends you back to uspslink.",
    ],
  },
  identifiers: {
    summary: "Enter and verify your CRID, MID and EPS.",
    body: [
      "Enter your CRID and MID, choose your account type, and fill in your MMID (manifest MID) and Returns MID if you have them.",
      "If your account type is EPS, enter your EPS account number; if it is PERMIT, your permit number and permit ZIP Code. If you are not sure, sign in to the USPS Business Customer Gateway and check the details.",
      "uspslink then checks the payment account with USPS and asks USPS for a payment authorization with your linked account.",
    ],
  },
  waiting_for_approval: {
    summary: "USPS reviews the link.",
    // The sales-representative advice comes with the summary (SummaryPanel).
    body: ["Please wait for approval from USPS to begin printing with NSA rates."],
  },
};

/** Whole-number percentage of finished steps. */
export function progressPercent(view: Pick<DashboardView, "completed_count" | "total_steps">): number {
  if (view.total_steps <= 0) return 0;
  const pct = Math.round((view.completed_count / view.total_steps) * 100);
  return Math.min(100, Math.max(0, pct));
}
