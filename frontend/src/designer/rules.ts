/**
 * The rules the page offers: the unified rule's ten parameters in four guided steps, the
 * presets (named rules as unified parameters, from GET /api/designer/rules), the z^B rule
 * for the input layer, and a colour and a short label per rule for the bars and the ruler.
 */

import type { Params, Segment } from "./segments";

export const UNIFIED_PARAMS = [
  "alpha", "beta", "theta0", "theta1", "gamma0", "gamma1", "gamma1p", "gamma1n", "gamma2", "eps",
] as const;
export type UnifiedParam = (typeof UNIFIED_PARAMS)[number];

export interface ParamInfo {
  name: UnifiedParam;
  symbol: string; // as MathML shows it
  label: string;
  min: number;
  max: number;
  step: number;
}

export interface Step {
  id: string;
  title: string;
  guide: string;
  params: ParamInfo[];
}

const p = (name: UnifiedParam, symbol: string, label: string, min: number, max: number, step: number): ParamInfo => ({
  name, symbol, label, min, max, step,
});

/** VisLRPDesigner's four steps (eq. 5 of the paper). */
export const STEPS: Step[] = [
  {
    id: "contribution",
    title: "1. Positive and negative contributions",
    guide:
      "α weighs the contributions that support the output, β those that oppose it. " +
      "α = 1, β = 0 keeps the evidence as it is; α − β = 1 conserves relevance; larger α and β " +
      "show more counter-evidence.",
    params: [p("alpha", "α", "alpha", 0, 4, 0.05), p("beta", "β", "beta", 0, 3, 0.05)],
  },
  {
    id: "activation",
    title: "2. Activation dependence",
    guide:
      "θ0 + θ1·a: how much an input's activation matters. θ1 = 1, θ0 = 0 is the usual " +
      "a·w; θ1 = 0 ignores the activations (w², flat), which makes the map blurrier but " +
      "independent of the input.",
    params: [p("theta0", "θ<sub>0</sub>", "theta0", 0, 2, 0.05), p("theta1", "θ<sub>1</sub>", "theta1", 0, 2, 0.05)],
  },
  {
    id: "weight",
    title: "3. Weight dependence",
    guide:
      "γ0 + γ1·w + γ1⁺·w⁺ (γ1⁻·w⁻ for the negative part) + γ2·w²: γ1 alone is LRP-0; γ1⁺ " +
      "favours positive weights (the γ rule, less noise); γ0 alone spreads evenly (flat), γ2 " +
      "by squared weights (w²).",
    params: [
      p("gamma0", "γ<sub>0</sub>", "gamma0", 0, 2, 0.05),
      p("gamma1", "γ<sub>1</sub>", "gamma1", -1, 2, 0.05),
      p("gamma1p", "γ<sub>1</sub><sup>+</sup>", "gamma1+", 0, 2, 0.05),
      p("gamma1n", "γ<sub>1</sub><sup>−</sup>", "gamma1−", 0, 2, 0.05),
      p("gamma2", "γ<sub>2</sub>", "gamma2", 0, 2, 0.05),
    ],
  },
  {
    id: "suppression",
    title: "4. Suppression",
    guide:
      "ε is added to the denominators: it absorbs the relevance of weak or contradictory " +
      "outputs, so the explanation gets sparser and less noisy as ε grows (relevance is then " +
      "no longer conserved).",
    params: [p("eps", "ε", "epsilon", 0, 1, 0.001)],
  },
];

/** The presets offered as buttons, with their labels (the names are rules.py's). */
export const PRESET_BUTTONS: { name: string; label: string; title: string }[] = [
  { name: "lrp0", label: "LRP-0", title: "R follows a·w exactly (gradient × input)" },
  { name: "epsilon", label: "ε", title: "LRP-ε: suppresses weak contributions" },
  { name: "gamma", label: "γ", title: "LRP-γ: favours positive contributions" },
  { name: "alpha_beta", label: "αβ", title: "LRP-α2β1: positive and negative parts apart" },
  { name: "zplus", label: "z⁺", title: "only positive contributions" },
  { name: "wsquare", label: "w²", title: "by squared weights, independent of the input" },
  { name: "flat", label: "flat", title: "spread evenly, independent of the input" },
];

export interface RuleCatalog {
  rules: string[];
  default_eps: number;
  unified: { defaults: Params; presets: Record<string, Params> };
}

/** Which preset these unified parameters are, if any. */
export function presetOf(params: Params, catalog: RuleCatalog): string | null {
  for (const [name, values] of Object.entries(catalog.unified.presets)) {
    const full = { ...catalog.unified.defaults, ...values };
    if (Object.keys(full).every((k) => (params[k] ?? catalog.unified.defaults[k]) === full[k])) return name;
  }
  return null;
}

/** The unified parameters a named rule corresponds to (for non-negative inputs), or null. */
export function asUnified(segment: Segment, catalog: RuleCatalog): Params | null {
  const presets = catalog.unified.presets;
  const { defaults } = catalog.unified;
  const num = (key: string, fallback: number) => (typeof segment.params[key] === "number" ? (segment.params[key] as number) : fallback);
  const eps = num("eps", catalog.default_eps);
  switch (segment.rule) {
    case "unified":
      return { ...defaults, ...segment.params };
    case "epsilon":
      return { ...presets.lrp0, eps };
    case "gamma":
      return { ...presets.gamma, gamma1p: num("gamma", 0.25), eps };
    case "alpha_beta":
      return { ...presets.alpha_beta, alpha: num("alpha", 2), beta: num("beta", 1), eps };
    case "zplus":
    case "wsquare":
    case "flat":
      return presets[segment.rule] ? { ...presets[segment.rule], eps } : null;
    default:
      return null;
  }
}

/** The colour key of a segment: the preset its parameters match, else its rule's name. */
export function ruleKey(segment: Segment, catalog: RuleCatalog): string {
  if (segment.rule === "unified") return presetOf(segment.params, catalog) ?? "unified";
  if (segment.rule === "epsilon") return (segment.params.eps ?? catalog.default_eps) === catalog.default_eps ? "lrp0" : "epsilon";
  return segment.rule;
}

const COLOURS: Record<string, string> = {
  lrp0: "#8c9bab",
  epsilon: "#4e79a7",
  gamma: "#59a14f",
  alpha_beta: "#e15759",
  zplus: "#f28e2b",
  wsquare: "#b07aa1",
  flat: "#9c755f",
  zbox: "#edc948",
  unified: "#76b7b2",
  pass: "#d4d8dd",
};

/** One colour per rule key (unknown rules get a stable colour from their name). */
export function ruleColour(key: string): string {
  if (COLOURS[key]) return COLOURS[key];
  let hash = 0;
  for (const c of key) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 45% 60%)`;
}

/** A short label of a rule key: the preset buttons' labels, else the rule name. */
export function ruleLabel(key: string): string {
  if (key === "zbox") return "zᴮ";
  if (key === "unified") return "custom";
  return PRESET_BUTTONS.find((b) => b.name === key)?.label ?? key;
}

/** Short layer labels for the ruler: the kind, or for activations the module type. */
export function kindLabel(kind: string, type = ""): string {
  if (kind === "activation" && type) return type.toLowerCase();
  const short: Record<string, string> = {
    convolution: "conv",
    activation: "act",
    maxpool: "pool",
    avgpool: "pool",
    pool: "pool",
    reshape: "flat",
    dense: "dense",
    add: "add",
    normalization: "norm",
    batchnorm: "norm",
  };
  return short[kind] ?? kind;
}
