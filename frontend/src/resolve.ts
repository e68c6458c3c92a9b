/**
 * Filling in a view state: names the server lacks (a project, analysis, category, embedding,
 * clustering or colour map) are replaced by defaults, in dependency order, with a note each.
 */

import type { CategoryDetail, CategoryRow, ProjectInfo } from "./api";
import { emptyState, type ViewState } from "./state";

/** What the server has (see Data). */
export interface Catalogue {
  readonly projects: readonly ProjectInfo[];
  rankings(project: number, analysis: string): Promise<CategoryRow[]>;
  details(project: number, analysis: string, category: string): Promise<CategoryDetail>;
  hasColormap(name: string): boolean;
}

/**
 * A copy of `wanted` that the server can show; `notes` (given ones first) name what was
 * replaced. Throws when the project has nothing to show.
 */
export async function resolve(
  wanted: ViewState,
  catalogue: Catalogue,
  notes: string[] = [],
): Promise<{ state: ViewState; notes: string[] }> {
  let state = { ...wanted };
  notes = [...notes];
  if (!catalogue.projects[state.project]) {
    notes.push(`no project ${state.project}`);
    state = emptyState(0);
  }
  const project = catalogue.projects[state.project];
  if (!project.analyses.includes(state.analysis)) {
    if (state.analysis) notes.push(`no analysis ${state.analysis}`);
    state.analysis = project.analyses[0] ?? "";
    state.category = "";
  }
  if (!state.analysis) throw new Error(`project ${project.name} has no analysis to explore`);
  const ranking = await catalogue.rankings(state.project, state.analysis);
  if (!ranking.some((row) => row.name === state.category)) {
    if (state.category) notes.push(`no category ${state.category}`);
    state.category = ranking[0]?.name ?? "";
    state.embedding = state.clustering = "";
    state.selection = new Int32Array(0);
  }
  if (!state.category) throw new Error(`analysis ${state.analysis} has no categories`);
  const detail = await catalogue.details(state.project, state.analysis, state.category);
  if (!detail.embeddings.some((e) => e.name === state.embedding)) {
    if (state.embedding) notes.push(`no embedding ${state.embedding}`);
    // A 2-D embedding (t-SNE, UMAP) is the natural first view.
    state.embedding = (detail.embeddings.find((e) => e.dims === 2) ?? detail.embeddings[0])?.name ?? "";
    state.dims = [0, 1];
  }
  const dims = detail.embeddings.find((e) => e.name === state.embedding)?.dims ?? 0;
  if (dims < 2) throw new Error(`category ${state.category} has no embedding with two dimensions`);
  if (state.dims.some((d) => d >= dims)) state.dims = [0, 1];
  if (!detail.clusterings.some((k) => k.name === state.clustering)) {
    if (state.clustering) notes.push(`no clustering ${state.clustering}`);
    state.clustering = detail.clusterings[0]?.name ?? "";
  }
  if (!catalogue.hasColormap(state.cmap)) {
    notes.push(`no colour map ${state.cmap}`);
    state.cmap = "bwr";
  }
  state.selection = state.selection.filter((p) => p < detail.size);
  return { state, notes };
}

/** The message line of resolution notes ("" when there are none). */
export const notice = (notes: string[]) => (notes.length ? `Shown instead of what was asked: ${notes.join("; ")}.` : "");
