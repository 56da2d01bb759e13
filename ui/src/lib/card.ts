// The card field as the user sees it: grouped as typed, masked once left, its brand from the prefix.
// Display only: the Rust validator (validate::card_number) judges the number, and it alone decides
// what is sent. MM/YY is split here into the month and year the registration takes.

export function digitsOf(typed: string): string {
  return typed.replace(/\D/g, "").slice(0, 19);
}

/** The brand from the IIN prefix, as `CardType::infer` has it; a name the user reads. */
export function cardBrand(digits: string): string | null {
  const brand: "Visa" | "MasterCard" | "AmericanExpress" | "Discover" | null = /^4/.test(digits)
    ? "Visa"
    : /^(5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)/.test(digits)
      ? "MasterCard"
      : /^3[47]/.test(digits)
        ? "AmericanExpress"
        : /^(6011|65|64[4-9])/.test(digits)
          ? "Discover"
          : null;
  return brand === "AmericanExpress" ? "American Express" : brand;
}

/** 4-4-4-4 (Amex 4-6-5). */
export function groupCard(digits: string): string {
  const groups = /^3[47]/.test(digits) ? [4, 6, 5] : [4, 4, 4, 4, 3];
  const out: string[] = [];
  let at = 0;
  for (const g of groups) {
    if (at >= digits.length) break;
    out.push(digits.slice(at, at + g));
    at += g;
  }
  // Digits past the brand's length stay visible (the validator says the number is too long).
  if (at < digits.length) out.push(digits.slice(at));
  return out.join(" ");
}

/** All but the last four hidden (nothing shown for a number too short to mean anything). */
export function maskCard(digits: string): string {
  if (digits.length < 4) return digits.replace(/\d/g, "•");
  return "•••• " + digits.slice(-4);
}

/** Typing "0730" shows "07/30"; a slash may be typed too. */
export function formatExpiry(typed: string): string {
  const d = typed.replace(/\D/g, "").slice(0, 4);
  if (d.length <= 2) return typed.includes("/") && d.length === 2 ? d + "/" : d;
  return d.slice(0, 2) + "/" + d.slice(2);
}

/** "07/30" → ["07", "30"] (the validator reads a two-digit year as 20YY); anything else as typed. */
export function splitExpiry(expiry: string): [string, string] {
  const [m = "", y = ""] = expiry.split("/");
  return [m.trim(), y.trim()];
}
