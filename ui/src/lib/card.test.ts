import { describe, expect, it } from "vitest";
import { cardBrand, digitsOf, formatExpiry, groupCard, maskCard, splitExpiry } from "./card";

describe("the card field", () => {
  it("groups as typed, Amex 4-6-5", () => {
    expect(groupCard("4111111111111111")).toBe("4111 1111 1111 1111");
    expect(groupCard("41111")).toBe("4111 1");
    expect(groupCard("378282246310005")).toBe("3782 822463 10005");
    expect(groupCard("")).toBe("");
  });

  it("keeps digits only, at most 19", () => {
    expect(digitsOf("4111-1111 1111a1111")).toBe("4111111111111111");
    expect(digitsOf("9".repeat(30))).toHaveLength(19);
  });

  it("masks all but the last four", () => {
    expect(maskCard("4111111111111111")).toBe("•••• 1111");
    expect(maskCard("411")).toBe("•••");
    expect(maskCard("")).toBe("");
  });

  it("names the brand from the prefix as the validator does", () => {
    expect(cardBrand("4")).toBe("Visa");
    expect(cardBrand("5105")).toBe("MasterCard");
    expect(cardBrand("2221")).toBe("MasterCard");
    expect(cardBrand("2720")).toBe("MasterCard");
    expect(cardBrand("2721")).toBeNull();
    expect(cardBrand("3782")).toBe("American Express");
    expect(cardBrand("6011")).toBe("Discover");
    expect(cardBrand("645")).toBe("Discover");
    expect(cardBrand("1234")).toBeNull();
    expect(cardBrand("")).toBeNull();
  });

  it("reads MM/YY as typed", () => {
    expect(formatExpiry("0730")).toBe("07/30");
    expect(formatExpiry("07")).toBe("07");
    expect(formatExpiry("07/")).toBe("07/");
    expect(formatExpiry("07/3")).toBe("07/3");
    expect(formatExpiry("ab07c30x9")).toBe("07/30");
    expect(splitExpiry("07/30")).toEqual(["07", "30"]);
    expect(splitExpiry("")).toEqual(["", ""]);
    expect(splitExpiry("0730")).toEqual(["0730", ""]);
  });
});

/** Arbitrary Unicode (any code point, lone surrogates too), from a seeded generator: repeatable. */
function* arbitraryText(cases: number, seed = 20261201): Generator<string> {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < cases; i++) {
    const len = Math.floor(next() * 40);
    let out = "";
    for (let j = 0; j < len; j++) {
      const pick = next();
      // Mostly digits and separators (what the fields expect), the rest anywhere in Unicode.
      if (pick < 0.4) out += String(Math.floor(next() * 10));
      else if (pick < 0.5) out += " -/"[Math.floor(next() * 3)];
      else if (pick < 0.6) out += String.fromCharCode(0xd800 + Math.floor(next() * 0x800));
      else out += String.fromCodePoint(Math.floor(next() * 0x110000) & 0x10ffff);
    }
    yield out;
  }
}

describe("the card field with arbitrary typed text", () => {
  it("never throws and keeps its shapes (10,000 cases)", () => {
    for (const typed of arbitraryText(10_000)) {
      const digits = digitsOf(typed);
      expect(digits).toMatch(/^\d{0,19}$/);
      expect(groupCard(digits).replace(/ /g, "")).toBe(digits);
      expect(maskCard(digits).length).toBeLessThanOrEqual(9);
      expect(["Visa", "MasterCard", "American Express", "Discover", null]).toContain(cardBrand(digits));
      const expiry = formatExpiry(typed);
      expect(expiry).toMatch(/^\d{0,2}(\/\d{0,2})?$/);
      const [m, y] = splitExpiry(expiry);
      expect(m).toMatch(/^\d{0,2}$/);
      expect(y).toMatch(/^\d{0,2}$/);
    }
  });
});
