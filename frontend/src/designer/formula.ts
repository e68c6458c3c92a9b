/**
 * The unified rule's formula (VisLRPDesigner, eq. 5) as MathML with the current values in
 * place of the parameters; terms whose factor is zero are drawn faded. Chromium renders
 * MathML natively, so nothing but markup is needed.
 */

import type { Params } from "./segments";

/** A number as the formula shows it: up to 4 significant digits, exponents as 1e-6. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) {
    const [mantissa, exponent] = value.toExponential(2).split("e");
    return `${Number(mantissa)}e${Number(exponent)}`;
  }
  return String(Number(value.toPrecision(4)));
}

const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const mn = (value: number, name: string) =>
  `<mn class="value${value === 0 ? " zero" : ""}" data-param="${name}">${esc(formatValue(value))}</mn>`;
const mi = (text: string) => `<mi>${text}</mi>`;
const mo = (text: string) => `<mo>${text}</mo>`;
const sub = (base: string, index: string) => `<msub>${base}<mi>${index}</mi></msub>`;
const wij = (sign = "") =>
  sign ? `<msubsup><mi>w</mi><mi>ij</mi><mo>${sign}</mo></msubsup>` : `<msub><mi>w</mi><mi>ij</mi></msub>`;

/** The values of the ten parameters (missing ones from `defaults`). */
export function values(params: Params, defaults: Params): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of ["alpha", "beta", "theta0", "theta1", "gamma0", "gamma1", "gamma1p", "gamma1n", "gamma2", "eps"]) {
    const value = params[key] ?? defaults[key] ?? 0;
    out[key] = typeof value === "number" ? value : Number(value);
  }
  return out;
}

/** `u_ij` of one part: (θ0 + θ1 a_i)(γ0 + γ1 w + γ1± w± + γ2 w²). */
function u(v: Record<string, number>, part: "A" | "B"): string {
  const signed = part === "A" ? "gamma1p" : "gamma1n";
  const sign = part === "A" ? "+" : "−";
  const faded = (value: number, body: string) => (value === 0 ? `<mrow class="zero">${body}</mrow>` : `<mrow>${body}</mrow>`);
  return (
    `<mrow>${mo("(")}${faded(v.theta0, mn(v.theta0, "theta0"))}${mo("+")}` +
    `${faded(v.theta1, mn(v.theta1, "theta1") + mo("⁢") + sub(mi("a"), "i"))}${mo(")")}` +
    `${mo("(")}${faded(v.gamma0, mn(v.gamma0, "gamma0"))}${mo("+")}` +
    `${faded(v.gamma1, mn(v.gamma1, "gamma1") + wij())}${mo("+")}` +
    `${faded(v[signed], mn(v[signed], signed) + wij(sign))}${mo("+")}` +
    `${faded(v.gamma2, mn(v.gamma2, "gamma2") + `<msubsup><mi>w</mi><mi>ij</mi><mn>2</mn></msubsup>`)}` +
    `${mo(")")}</mrow>`
  );
}

function fraction(v: Record<string, number>, part: "A" | "B"): string {
  const symbol = `<msubsup><mi>u</mi><mi>ij</mi><mi>${part}</mi></msubsup>`;
  const sum = `<munder><mo>∑</mo><mi>i</mi></munder>`;
  return `<mfrac><mrow>${symbol}</mrow><mrow>${mn(v.eps, "eps")}${mo("+")}${sum}${symbol}</mrow></mfrac>`;
}

/** The formula as a MathML `<math>` element's markup, with the values of `params`. */
export function formulaMathML(params: Params, defaults: Params): string {
  const v = values(params, defaults);
  const sumj = `<munder><mo>∑</mo><mi>j</mi></munder>`;
  const rule =
    `<mrow>${sub(mi("R"), "i")}${mo("=")}${sumj}${mo("[")}` +
    `<mrow${v.alpha === 0 ? ' class="zero"' : ""}>${mn(v.alpha, "alpha")}${fraction(v, "A")}</mrow>` +
    `${mo("−")}<mrow${v.beta === 0 ? ' class="zero"' : ""}>${mn(v.beta, "beta")}${fraction(v, "B")}</mrow>` +
    `${mo("]")}${sub(mi("R"), "j")}</mrow>`;
  const defs =
    `<mtable columnalign="left">` +
    `<mtr><mtd>${rule}</mtd></mtr>` +
    `<mtr><mtd><mrow><msubsup><mi>u</mi><mi>ij</mi><mi>A</mi></msubsup>${mo("=")}${u(v, "A")}</mrow></mtd></mtr>` +
    `<mtr><mtd><mrow><msubsup><mi>u</mi><mi>ij</mi><mi>B</mi></msubsup>${mo("=")}${u(v, "B")}</mrow></mtd></mtr>` +
    `</mtable>`;
  return `<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">${defs}</math>`;
}
