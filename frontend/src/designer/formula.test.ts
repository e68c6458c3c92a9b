import { describe, expect, it } from "vitest";
import { formatValue, formulaMathML, values } from "./formula";

const defaults = { alpha: 1, beta: 0, eps: 1e-6, theta0: 0, theta1: 0, gamma0: 0, gamma1: 0, gamma1p: 0, gamma1n: 0, gamma2: 0 };

describe("formula", () => {
  it("formats values", () => {
    expect([formatValue(2), formatValue(0.25), formatValue(1e-6), formatValue(1e15), formatValue(1 / 3)]).toEqual(["2", "0.25", "1e-6", "1e15", "0.3333"]);
  });
  it("shows the current values, zero terms faded", () => {
    const markup = formulaMathML({ alpha: 2, beta: 1, theta1: 1, gamma1p: 1, gamma1n: 1 }, defaults);
    expect(markup.startsWith("<math")).toBe(true);
    expect(markup).toContain('<mn class="value" data-param="alpha">2</mn>');
    expect(markup).toContain('<mn class="value" data-param="beta">1</mn>');
    expect(markup).toContain('<mn class="value zero" data-param="gamma2">0</mn>');
    expect(markup).toContain('data-param="eps">1e-6</mn>');
    expect(values({ alpha: 3 }, defaults).alpha).toBe(3);
  });
});
