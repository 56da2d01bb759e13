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
