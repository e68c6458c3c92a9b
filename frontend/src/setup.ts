/**
 * The setup side of the Explorer: project tabs, the analysis, category, embedding, dimension
 * and clustering selectors, the category ranking, the eigenvalue plot and the cluster list.
 */

import type * as api from "./api";
import { cssColour } from "./colors";
import { $, onChange, options } from "./dom";
import { eigenPlot, NO_EIGENVALUES, spectrum } from "./eigen";
import { type Combine, combineFor, positionsOf } from "./geometry";
import type { ViewState } from "./state";

export interface SetupHost {
  readonly clusterLabels: Int32Array | null;
  change(change: Partial<ViewState>): void;
  select(positions: Int32Array, how: Combine): void;
}

/** What choosing another analysis or category clears: the choices that depend on it. */
export const cleared = (): Partial<ViewState> => ({
  embedding: "",
  clustering: "",
  dims: [0, 1],
  selection: new Int32Array(0),
  page: 0,
});

/** A category as listed: its class name, if it has one, with its key. */
export const categoryName = (row: api.CategoryRow) => (row.label_name ? `${row.label_name} (${row.name})` : row.name);

const score = (value: number | null | undefined) => (value === null || value === undefined ? "–" : value.toFixed(3));

/** The cells of a ranking row: rank (from 1), category, size, tau and eigengap scores. */
export const rankingCells = (row: api.CategoryRow, rank: number): string[] => [
  String(rank + 1),
  categoryName(row),
  String(row.size),
  score(row.scores.tau),
  score(row.scores.eigengap),
];

export const clusterName = (label: number) => (label < 0 ? "noise" : `cluster ${label}`);

export class SetupPanel {
  constructor(private host: SetupHost) {
    onChange("#analysis", (analysis) => host.change({ analysis, category: "", ...cleared() }));
    onChange("#category", (category) => host.change({ category, ...cleared() }));
    onChange("#embedding", (embedding) => host.change({ embedding, dims: [0, 1] }));
    onChange("#clustering", (clustering) => host.change({ clustering }));
    const dim = (axis: string) => Number($<HTMLSelectElement>(`#dim-${axis}`).value);
    const dims = (): [number, number] => [dim("x"), dim("y")];
    onChange("#dim-x", () => host.change({ dims: dims() }));
    onChange("#dim-y", () => host.change({ dims: dims() }));
  }

  /** One tab per project; clicking one calls `open` with its id. */
  tabs(projects: api.ProjectInfo[], open: (project: number) => void): void {
    $("#tabs").replaceChildren(
      ...projects.map((project) => {
        const tab = document.createElement("button");
        tab.type = "button";
        tab.role = "tab";
        tab.dataset.project = String(project.id);
        tab.textContent = project.name;
        tab.title = `${project.dataset.name}: ${project.dataset.samples} samples, model ${project.model}`;
        tab.addEventListener("click", () => open(project.id));
        return tab;
      }),
    );
  }

  show(state: ViewState, project: api.ProjectInfo, ranking: api.CategoryRow[], detail: api.CategoryDetail): void {
    for (const tab of document.querySelectorAll<HTMLElement>("#tabs button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.project === String(state.project)));
    }
    const same = (names: string[]) => names.map((name) => ({ value: name, text: name }));
    options($("#analysis"), same(project.analyses), state.analysis);
    options(
      $("#category"),
      ranking.map((row) => ({ value: row.name, text: categoryName(row) })),
      state.category,
    );
    options(
      $("#embedding"),
      detail.embeddings.map((e) => ({ value: e.name, text: `${e.name} (${e.dims}-D)` })),
      state.embedding,
    );
    options($("#clustering"), same(detail.clusterings.map((k) => k.name)), state.clustering);
    const dims = detail.embeddings.find((e) => e.name === state.embedding)!.dims;
    $("#dims").hidden = dims <= 2;
    const dimOptions = Array.from({ length: dims }, (_, d) => ({ value: String(d), text: `dim ${d}` }));
    options($("#dim-x"), dimOptions, String(state.dims[0]));
    options($("#dim-y"), dimOptions, String(state.dims[1]));
    this.showRanking(ranking, state.category);
    this.showEigenvalues(detail, state.embedding);
    this.showClusters(detail.clusterings.find((k) => k.name === state.clustering) ?? null);
  }

  private showRanking(ranking: api.CategoryRow[], current: string): void {
    $("#ranking tbody").replaceChildren(
      ...ranking.map((row, rank) => {
        const tr = document.createElement("tr");
        tr.dataset.category = row.name;
        tr.setAttribute("aria-selected", String(row.name === current));
        for (const text of rankingCells(row, rank)) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        tr.addEventListener("click", () => this.host.change({ category: row.name, ...cleared() }));
        return tr;
      }),
    );
  }

  private showEigenvalues(detail: api.CategoryDetail, embedding: string): void {
    const svg = $("#eigen") as unknown as SVGSVGElement;
    const values = spectrum(detail.embeddings, embedding);
    const plot = eigenPlot(values);
    svg.dataset.count = String(values.length);
    svg.dataset.eigengap = plot ? String(plot.k) : "";
    svg.innerHTML = plot ? plot.markup : NO_EIGENVALUES;
  }

  private showClusters(clustering: api.ClusteringInfo | null): void {
    $("#clusters").replaceChildren(
      ...(clustering?.clusters ?? []).map(({ label, size }) => {
        const item = document.createElement("li");
        item.dataset.cluster = String(label);
        item.title = "Click to select its points; Shift adds, Alt removes";
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = cssColour(label);
        const text = document.createElement("span");
        text.textContent = clusterName(label);
        const count = document.createElement("span");
        count.className = "size";
        count.textContent = String(size);
        item.append(swatch, text, count);
        item.addEventListener("click", (event) => {
          const labels = this.host.clusterLabels;
          if (labels) this.host.select(positionsOf(labels, label), combineFor(event));
        });
        return item;
      }),
    );
  }
}
