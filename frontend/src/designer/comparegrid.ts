/**
 * The Compare tab's pure logic (issue 16 item 6): the grid's columns (an input and what to
 * explain of it) and rows (configurations), the limits the server keeps (16 x 16, at most
 * 64 cells), and the body of POST /api/designer/{id}/compare.
 */

import type { ConfigJson } from "./segments";
import type { InputRef, Target } from "./urlstate";

/** The server's limits (designer_api.CompareModel, engine.designer.compare.MAX_CELLS). */
export const MAX_ROWS = 16;
export const MAX_COLUMNS = 16;
export const MAX_CELLS = 64;

/** One column: an input and its target (`index` is the class; null for "predicted"). */
export interface GridColumn {
  input: InputRef;
  target: Target;
  index: number | null;
}

export interface CompareCell {
  target: number;
  target_name: string;
  heatmap: string | null;
  warnings: string[];
}

/** The server's answer: row names, the shared scale (max |R|) and `cells[row][column]`. */
export interface CompareAnswer {
  names: string[];
  scale: number | null;
  cells: CompareCell[][];
}

export interface CompareBody {
  configs: ConfigJson[];
  columns: { input: InputRef; target: Target; index: number | null }[];
  cmap: string;
}

/** A column as the server reads it: "predicted" has no class. */
export function column(input: InputRef, target: Target = "predicted", index: number | null = null): GridColumn {
  const source: InputRef = "sample" in input ? { sample: input.sample } : { upload: input.upload };
  return { input: source, target, index: target === "predicted" ? null : index };
}

/** A key that two columns explaining the same thing share. */
export function columnKey(c: GridColumn): string {
  const source = "sample" in c.input ? `s${c.input.sample}` : `u${c.input.upload}`;
  return `${source}:${c.target}:${c.target === "predicted" ? "" : (c.index ?? "")}`;
}

/** Whether a grid of `rows` x `columns` is within the server's limits. */
export function fits(rows: number, columns: number): boolean {
  return rows <= MAX_ROWS && columns <= MAX_COLUMNS && rows * columns <= MAX_CELLS;
}

/** `columns` with `added` appended: repeats are left out, and so is what would pass the
 * limits with `rows` rows; `skipped` says why something was left out. */
export function addColumns(
  columns: GridColumn[],
  added: GridColumn[],
  rows: number,
): { columns: GridColumn[]; skipped: string | null } {
  const out = [...columns];
  const keys = new Set(out.map(columnKey));
  let skipped: string | null = null;
  for (const c of added) {
    const key = columnKey(c);
    if (keys.has(key)) {
      skipped ??= `${columnTitle(c)}: already a column`;
      continue;
    }
    if (!fits(Math.max(1, rows), out.length + 1)) {
      skipped = `at most ${MAX_COLUMNS} columns and ${MAX_CELLS} cells (${Math.max(1, rows)} rows)`;
      break;
    }
    out.push(c);
    keys.add(key);
  }
  return { columns: out, skipped };
}

/** `columns` without the one at `position`. */
export function removeColumn(columns: GridColumn[], position: number): GridColumn[] {
  return columns.filter((_, i) => i !== position);
}

/** Columns explaining `classes` of one input. */
export function classColumns(input: InputRef, classes: number[]): GridColumn[] {
  return classes.map((index) => column(input, "class", index));
}

/** The first `k` classes of a prediction list (best first). */
export function topClasses(predictions: { index: number }[], k = 3): number[] {
  return predictions.slice(0, k).map((p) => p.index);
}

/** The input of a column, to a person. */
export function inputTitle(input: InputRef): string {
  return "sample" in input ? `sample ${input.sample}` : `upload ${input.upload.slice(0, 8)}…`;
}

/** What a column explains, before the server names the class. */
export function targetTitle(c: GridColumn): string {
  if (c.target === "predicted") return "predicted";
  return `${c.target === "contrastive" ? "contrastive" : "class"} ${c.index ?? "?"}`;
}

export const columnTitle = (c: GridColumn) => `${inputTitle(c.input)} · ${targetTitle(c)}`;

/** The rows chosen: positions in `names` (the page's order) whose name is selected. */
export function chosenRows(names: string[], selected: Set<string>): number[] {
  return names.flatMap((name, i) => (selected.has(name) ? [i] : []));
}

/** The compare request: every configuration inline as JSON (unsaved ones too). */
export function compareBody(configs: ConfigJson[], columns: GridColumn[], cmap = "bwr"): CompareBody {
  return {
    configs,
    columns: columns.map((c) => ({ input: c.input, target: c.target, index: c.target === "predicted" ? null : c.index })),
    cmap,
  };
}
