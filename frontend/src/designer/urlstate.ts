/**
 * The designer's view in the URL fragment, so that a view can be shared and restored:
 * `#d=0&c=mine&s=5&t=class&k=2&tab=design&seg=1`.
 *
 * d: designer; c: a saved configuration's name, or u: a whole (unsaved or edited)
 * configuration, compact (segments as [start, rule, params], the stops implied) in base64url
 * JSON; s: a sample or up: an upload id; t: target (predicted, class, contrastive) and k: its
 * class; tab; seg: the selected segment.
 */

import type { ConfigJson, Params } from "./segments";

export type Target = "predicted" | "class" | "contrastive";
export type InputRef = { sample: number } | { upload: string };

export interface ViewState {
  designer: number;
  saved: string | null; // a stored configuration's name
  config: ConfigJson | null; // or a configuration carried whole
  input: InputRef;
  target: Target;
  index: number | null;
  tab: string;
  segment: number;
}

export const DEFAULT_VIEW: ViewState = {
  designer: 0,
  saved: null,
  config: null,
  input: { sample: 0 },
  target: "predicted",
  index: null,
  tab: "design",
  segment: 0,
};

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(code: string): string {
  const binary = atob(code.replace(/-/g, "+").replace(/_/g, "/"));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/** A configuration as a short code (segments must be in order and adjacent). */
export function encodeConfig(config: ConfigJson): string {
  const last = config.segments[config.segments.length - 1];
  const compact = [
    config.name,
    config.segments.map((s) => (Object.keys(s.params).length ? [s.start, s.rule, s.params] : [s.start, s.rule])),
    last?.stop ?? null,
  ];
  return toBase64Url(JSON.stringify(compact));
}

export function decodeConfig(code: string): ConfigJson {
  const [name, parts, end] = JSON.parse(fromBase64Url(code)) as [string, [number, string, Params?][], number | null];
  if (typeof name !== "string" || !Array.isArray(parts)) throw new Error("not a configuration code");
  return {
    name,
    segments: parts.map(([start, rule, params], i) => ({
      start,
      stop: i + 1 < parts.length ? parts[i + 1][0] : end,
      rule,
      params: params ?? {},
    })),
  };
}

const TARGETS: Target[] = ["predicted", "class", "contrastive"];

/** The fragment (without '#') of a view; defaults are left out. */
export function encodeView(view: ViewState): string {
  const out = new URLSearchParams();
  out.set("d", String(view.designer));
  if (view.saved !== null) out.set("c", view.saved);
  else if (view.config) out.set("u", encodeConfig(view.config));
  if ("sample" in view.input) out.set("s", String(view.input.sample));
  else out.set("up", view.input.upload);
  if (view.target !== "predicted") out.set("t", view.target);
  if (view.index !== null) out.set("k", String(view.index));
  if (view.tab !== DEFAULT_VIEW.tab) out.set("tab", view.tab);
  if (view.segment) out.set("seg", String(view.segment));
  return out.toString();
}

const whole = (text: string | null) => (text !== null && /^\d+$/.test(text) ? Number(text) : null);

/** A view from a fragment (with or without '#'); what is missing or broken is the default. */
export function decodeView(fragment: string): ViewState {
  const params = new URLSearchParams(fragment.replace(/^#/, ""));
  const view: ViewState = { ...DEFAULT_VIEW, input: { ...DEFAULT_VIEW.input } };
  view.designer = whole(params.get("d")) ?? 0;
  view.saved = params.get("c");
  const code = params.get("u");
  if (view.saved === null && code) {
    try {
      view.config = decodeConfig(code);
    } catch {
      view.config = null;
    }
  }
  const upload = params.get("up");
  if (upload && /^[0-9a-f]{24}$/.test(upload)) view.input = { upload };
  else view.input = { sample: whole(params.get("s")) ?? 0 };
  const target = params.get("t") as Target | null;
  view.target = target && TARGETS.includes(target) ? target : "predicted";
  view.index = whole(params.get("k"));
  view.tab = params.get("tab") || DEFAULT_VIEW.tab;
  view.segment = whole(params.get("seg")) ?? 0;
  return view;
}
