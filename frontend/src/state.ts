/**
 * The Explorer's view state: what a share URL, an exported JSON file and browser history
 * carry. Selections are category positions (0..size-1) here; exported files also list the
 * dataset indices so that they can be read without the analysis file.
 */

import { decodeSelection, encodeSelection } from "./codec";

export const MODES = ["input", "attribution", "overlay"] as const;
export const SAMPLINGS = ["auto", "smooth", "pixelated"] as const;
export type Mode = (typeof MODES)[number];
export type Sampling = (typeof SAMPLINGS)[number];

export interface ViewState {
  project: number;
  analysis: string;
  category: string;
  embedding: string;
  clustering: string;
  dims: [number, number];
  cmap: string;
  mode: Mode;
  sampling: Sampling;
  page: number;
  selection: Int32Array;
}

export function emptyState(project: number): ViewState {
  return {
    project,
    analysis: "",
    category: "",
    embedding: "",
    clustering: "",
    dims: [0, 1],
    cmap: "bwr",
    mode: "input",
    sampling: "auto",
    page: 0,
    selection: new Int32Array(0),
  };
}

function oneOf<T extends string>(value: string | null, choices: readonly T[], what: string): T {
  if (value === null || !(choices as readonly string[]).includes(value)) {
    throw new Error(`${what} must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function count(value: unknown, what: string): number {
  const number = typeof value === "string" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isInteger(number) || number < 0) {
    throw new Error(`${what} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return number;
}

function dims(text: string | null): [number, number] {
  const parts = (text ?? "0,1").split(",");
  if (parts.length !== 2) throw new Error(`dims must be two integers like 0,1, got ${text}`);
  return [count(parts[0], "dims"), count(parts[1], "dims")];
}

/** The URL fragment (without "#") of a state; the selection as a compact code. */
export async function toFragment(state: ViewState, categorySize: number): Promise<string> {
  const params = new URLSearchParams({
    p: String(state.project),
    a: state.analysis,
    c: state.category,
    e: state.embedding,
    k: state.clustering,
    d: state.dims.join(","),
    cm: state.cmap,
    m: state.mode,
    s: state.sampling,
    pg: String(state.page),
  });
  const code = await encodeSelection(state.selection, categorySize);
  if (code) params.set("sel", code);
  return params.toString();
}

/**
 * A state from a URL fragment; the selection is decoded once the category size is known
 * (`sizeOf` is asked after the other fields are read).
 */
export async function fromFragment(
  fragment: string,
  sizeOf: (state: ViewState) => Promise<number>,
): Promise<ViewState> {
  const params = new URLSearchParams(fragment.replace(/^#/, ""));
  const state = emptyState(count(params.get("p") ?? "0", "project"));
  state.analysis = params.get("a") ?? "";
  state.category = params.get("c") ?? "";
  state.embedding = params.get("e") ?? "";
  state.clustering = params.get("k") ?? "";
  state.dims = dims(params.get("d"));
  state.cmap = params.get("cm") ?? "bwr";
  state.mode = oneOf(params.get("m") ?? "input", MODES, "mode");
  state.sampling = oneOf(params.get("s") ?? "auto", SAMPLINGS, "sampling");
  state.page = count(params.get("pg") ?? "0", "page");
  const code = params.get("sel");
  if (code) state.selection = await decodeSelection(code, await sizeOf(state));
  return state;
}

export interface ExportedView extends Omit<ViewState, "project" | "selection"> {
  relscope_view: 1;
  project: { id: number; name: string };
  selection: { positions: number[]; samples: number[] };
}

/** The JSON document of a view; `index` maps category positions to dataset indices. */
export function exportView(state: ViewState, projectName: string, index: ArrayLike<number>): ExportedView {
  const positions = Array.from(state.selection);
  return {
    relscope_view: 1,
    project: { id: state.project, name: projectName },
    analysis: state.analysis,
    category: state.category,
    embedding: state.embedding,
    clustering: state.clustering,
    dims: [...state.dims],
    cmap: state.cmap,
    mode: state.mode,
    sampling: state.sampling,
    page: state.page,
    selection: { positions, samples: positions.map((p) => index[p]) },
  };
}

function text(value: unknown, what: string): string {
  if (typeof value !== "string") throw new Error(`${what} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/** A state from an exported document; throws a one-line error naming the bad field. */
export function importView(document: unknown): { state: ViewState; projectName: string } {
  if (typeof document !== "object" || document === null || (document as ExportedView).relscope_view !== 1) {
    throw new Error("not a relscope view file (relscope_view: 1 is missing)");
  }
  const doc = document as Record<string, unknown>;
  const project = doc.project as Record<string, unknown> | undefined;
  if (typeof project !== "object" || project === null) throw new Error("project must be an object");
  const state = emptyState(count(project.id, "project.id"));
  state.analysis = text(doc.analysis, "analysis");
  state.category = text(doc.category, "category");
  state.embedding = text(doc.embedding, "embedding");
  state.clustering = text(doc.clustering, "clustering");
  if (!Array.isArray(doc.dims) || doc.dims.length !== 2) throw new Error("dims must be two integers");
  state.dims = [count(doc.dims[0], "dims"), count(doc.dims[1], "dims")];
  state.cmap = text(doc.cmap, "cmap");
  state.mode = oneOf(text(doc.mode, "mode"), MODES, "mode");
  state.sampling = oneOf(text(doc.sampling, "sampling"), SAMPLINGS, "sampling");
  state.page = count(doc.page ?? 0, "page");
  const selection = doc.selection as Record<string, unknown> | undefined;
  const positions = selection?.positions;
  if (!Array.isArray(positions)) throw new Error("selection.positions must be a list of integers");
  const sorted = positions.map((p, i) => count(p, `selection.positions[${i}]`)).sort((a, b) => a - b);
  state.selection = Int32Array.from(new Set(sorted));
  return { state, projectName: text(project.name, "project.name") };
}
