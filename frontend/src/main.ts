/**
 * The Explorer: project tabs, analysis setup, category ranking, the embedding canvas, the
 * eigenvalue plot, the cluster list and the gallery, all driven by one view state that the
 * URL fragment, exported files and browser history carry.
 */

import "./style.css";
import * as api from "./api";
import { cssColour, pointColours } from "./colors";
import { drawColourBar, Gallery } from "./gallery";
import { combine, type Combine, combineFor, eigengapK } from "./geometry";
import { paletteBytes } from "./png";
import { Scatter, type Tool } from "./scatter";
import {
  emptyState,
  exportView,
  fromFragment,
  importView,
  type Mode,
  type Sampling,
  toFragment,
  type ViewState,
} from "./state";

const $ = <T extends HTMLElement>(selector: string) => document.querySelector(selector) as T;

function options(select: HTMLSelectElement, items: { value: string; text: string }[], value: string): void {
  select.replaceChildren(
    ...items.map(({ value: v, text }) => {
      const option = document.createElement("option");
      option.value = v;
      option.textContent = text;
      return option;
    }),
  );
  select.value = value;
}

const score = (value: number | null | undefined) => (value === null || value === undefined ? "–" : value.toFixed(3));

/** Memoize an async loader by key (failed loads are forgotten). */
function cached<T>(load: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const memory = new Map<string, Promise<T>>();
  return (key) => {
    let value = memory.get(key);
    if (!value) {
      value = load(key);
      value.catch(() => memory.delete(key));
      memory.set(key, value);
    }
    return value;
  };
}

class Explorer {
  private projects: api.ProjectInfo[] = [];
  private palettes = new Map<string, Uint8Array>();
  private states = new Map<number, ViewState>();
  private state: ViewState = emptyState(0);
  private labelNames = new Map<number, Map<number, string>>();
  private detail: api.CategoryDetail | null = null;
  private clusterLabels: Int32Array | null = null;
  private plotted = { points: "", colours: "" };
  private sequence = 0;
  private firstRenderMarked = false;
  private galleryPending = false;
  private pageSize = 48;
  private notes: string[] = [];
  private scatter: Scatter;
  private gallery: Gallery;

  private labels = cached((p) => api.labels(Number(p)));
  private rankings = cached((key) => {
    const [p, a] = JSON.parse(key);
    return api.categories(p, a);
  });
  private details = cached((key) => {
    const [p, a, c] = JSON.parse(key);
    return api.category(p, a, c);
  });
  private embeddings = cached((key) => {
    const [p, a, c, e, x, y] = JSON.parse(key);
    return api.embedding(p, a, c, e, [x, y]);
  });
  private samples = cached((key) => {
    const [p, i] = JSON.parse(key);
    return api.sample(p, i);
  });
  private clusterings = cached((key) => {
    const [p, a, c, k] = JSON.parse(key);
    return api.clustering(p, a, c, k);
  });

  constructor() {
    this.scatter = new Scatter($("#plot"), {
      select: (positions, how) => this.select(positions, how),
      hover: (position, x, y) => this.hover(position, x, y),
      rendered: (count) => {
        $("#plot").dataset.rendered = String(count);
        if (count > 0 && !this.firstRenderMarked) {
          this.firstRenderMarked = true;
          performance.mark("relscope:first-render");
        }
      },
    });
    this.gallery = new Gallery($("#gallery"), $("#gallery-status"), () => {
      if (this.galleryPending) {
        this.galleryPending = false;
        performance.mark("relscope:gallery-first-image");
      }
    });
    this.bind();
  }

  async start(): Promise<void> {
    const [projects, colormaps] = await Promise.all([api.projects(), api.colormaps()]);
    this.projects = projects;
    for (const colormap of colormaps) this.palettes.set(colormap.name, paletteBytes(colormap.palette));
    options(
      $("#cmap"),
      colormaps.map((c) => ({ value: c.name, text: c.name })),
      "bwr",
    );
    const tabs = $("#tabs");
    tabs.replaceChildren(
      ...projects.map((project) => {
        const tab = document.createElement("button");
        tab.type = "button";
        tab.role = "tab";
        tab.dataset.project = String(project.id);
        tab.textContent = project.name;
        tab.title = `${project.dataset.name}: ${project.dataset.samples} samples, model ${project.model}`;
        tab.addEventListener("click", () => this.switchProject(project.id));
        return tab;
      }),
    );
    if (projects.length === 0) throw new Error("the server has no projects");
    window.addEventListener("popstate", () => this.restore(location.hash, false));
    await this.restore(location.hash, true);
  }

  /** Apply the state of a URL fragment (an empty or broken one falls back to defaults). */
  private async restore(fragment: string, initial: boolean): Promise<void> {
    let state = emptyState(0);
    if (fragment.length > 1) {
      try {
        state = await fromFragment(fragment, async (s) => {
          if (!this.projects[s.project]) return 0;
          return (await this.details(JSON.stringify([s.project, s.analysis, s.category]))).size;
        });
      } catch (error) {
        this.notes.push(`the link could not be read (${(error as Error).message})`);
      }
    }
    await this.apply(state, initial ? "replace" : "none");
  }

  private switchProject(project: number): void {
    if (project === this.state.project) return;
    this.states.set(this.state.project, this.state);
    void this.apply(this.states.get(project) ?? emptyState(project), "push");
  }

  /**
   * Bring the page to `state`, filling in and correcting names the project lacks, then
   * record it in the history (`push`), replace the current entry, or leave it (`none`).
   */
  private async apply(wanted: ViewState, history: "push" | "replace" | "none"): Promise<void> {
    const sequence = ++this.sequence;
    try {
      const state = await this.resolve({ ...wanted });
      if (sequence !== this.sequence) return;
      await this.show(state, sequence);
      if (sequence !== this.sequence) return;
      const fragment = "#" + (await toFragment(state, this.detail?.size ?? 0));
      if (history === "push" && fragment !== location.hash) window.history.pushState(null, "", fragment);
      if (history === "replace") window.history.replaceState(null, "", fragment);
    } catch (error) {
      this.message((error as Error).message, true);
    }
  }

  /** Fill in defaults for missing or unknown names, in dependency order. */
  private async resolve(state: ViewState): Promise<ViewState> {
    const notes = this.notes.splice(0);
    if (!this.projects[state.project]) {
      notes.push(`no project ${state.project}`);
      state = emptyState(0);
    }
    const project = this.projects[state.project];
    if (!project.analyses.includes(state.analysis)) {
      if (state.analysis) notes.push(`no analysis ${state.analysis}`);
      state.analysis = project.analyses[0] ?? "";
      state.category = "";
    }
    if (!state.analysis) throw new Error(`project ${project.name} has no analysis to explore`);
    const ranking = await this.rankings(JSON.stringify([state.project, state.analysis]));
    if (!ranking.some((row) => row.name === state.category)) {
      if (state.category) notes.push(`no category ${state.category}`);
      state.category = ranking[0]?.name ?? "";
      state.embedding = state.clustering = "";
      state.selection = new Int32Array(0);
    }
    if (!state.category) throw new Error(`analysis ${state.analysis} has no categories`);
    const detail = await this.details(JSON.stringify([state.project, state.analysis, state.category]));
    const embedding = detail.embeddings.find((e) => e.name === state.embedding);
    if (!embedding) {
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
    if (!this.palettes.has(state.cmap)) {
      notes.push(`no colour map ${state.cmap}`);
      state.cmap = "bwr";
    }
    state.selection = state.selection.filter((p) => p < detail.size);
    if (notes.length) this.message(`Shown instead of what was asked: ${notes.join("; ")}.`, false);
    else this.message("", false);
    return state;
  }

  private async show(state: ViewState, sequence: number): Promise<void> {
    const p = state.project;
    const [labels, ranking, detail] = await Promise.all([
      this.labels(String(p)),
      this.rankings(JSON.stringify([p, state.analysis])),
      this.details(JSON.stringify([p, state.analysis, state.category])),
    ]);
    if (!this.labelNames.has(p)) this.labelNames.set(p, new Map(labels.map((l) => [l.index, l.name])));
    const pointsKey = JSON.stringify([p, state.analysis, state.category, state.embedding, ...state.dims]);
    const coloursKey = JSON.stringify([p, state.analysis, state.category, state.clustering]);
    const [points, clusterLabels] = await Promise.all([
      this.embeddings(pointsKey),
      state.clustering ? this.clusterings(coloursKey) : Promise.resolve(null),
    ]);
    if (sequence !== this.sequence) return;
    this.state = state;
    this.detail = detail;
    this.clusterLabels = clusterLabels;
    // The gallery's requests go out first; the canvas and lists are updated while they run.
    const gallery = this.showSelection();
    const project = this.projects[p];
    for (const tab of document.querySelectorAll<HTMLElement>("#tabs button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.project === String(p)));
    }
    const name = (row: api.CategoryRow) => (row.label_name ? `${row.label_name} (${row.name})` : row.name);
    options(
      $("#analysis"),
      project.analyses.map((a) => ({ value: a, text: a })),
      state.analysis,
    );
    options(
      $("#category"),
      ranking.map((row) => ({ value: row.name, text: name(row) })),
      state.category,
    );
    options(
      $("#embedding"),
      detail.embeddings.map((e) => ({ value: e.name, text: `${e.name} (${e.dims}-D)` })),
      state.embedding,
    );
    options(
      $("#clustering"),
      detail.clusterings.map((k) => ({ value: k.name, text: k.name })),
      state.clustering,
    );
    const dims = detail.embeddings.find((e) => e.name === state.embedding)!.dims;
    $("#dims").hidden = dims <= 2;
    const dimOptions = Array.from({ length: dims }, (_, d) => ({ value: String(d), text: `dim ${d}` }));
    options($("#dim-x"), dimOptions, String(state.dims[0]));
    options($("#dim-y"), dimOptions, String(state.dims[1]));
    this.showRanking(ranking, state.category, name);
    this.showEigenvalues(detail, state.embedding);
    this.showClusters(detail.clusterings.find((k) => k.name === state.clustering) ?? null);
    // Only new points are uploaded; a colour change keeps the view (zoom and pan).
    if (this.plotted.points !== pointsKey) {
      this.scatter.setData(points, pointColours(clusterLabels, points.length >> 1));
    } else if (this.plotted.colours !== coloursKey) {
      this.scatter.setColors(pointColours(clusterLabels, points.length >> 1));
    }
    this.plotted = { points: pointsKey, colours: coloursKey };
    this.scatter.setSelection(state.selection);
    $("#point-count").textContent = String(points.length >> 1);
    for (const input of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
      input.checked = input.value === state.mode;
    }
    ($("#sampling") as HTMLSelectElement).value = state.sampling;
    ($("#cmap") as HTMLSelectElement).value = state.cmap;
    drawColourBar($("#colourbar"), this.palette());
    await gallery;
  }

  private palette(): Uint8Array {
    return this.palettes.get(this.state.cmap)!;
  }

  private showRanking(ranking: api.CategoryRow[], current: string, name: (row: api.CategoryRow) => string): void {
    $("#ranking tbody").replaceChildren(
      ...ranking.map((row, rank) => {
        const tr = document.createElement("tr");
        tr.dataset.category = row.name;
        tr.setAttribute("aria-selected", String(row.name === current));
        for (const text of [String(rank + 1), name(row), String(row.size), score(row.scores.tau), score(row.scores.eigengap)]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        tr.addEventListener("click", () => this.change({ category: row.name, ...this.reset() }));
        return tr;
      }),
    );
  }

  private showEigenvalues(detail: api.CategoryDetail, embedding: string): void {
    const svg = $("#eigen") as unknown as SVGSVGElement;
    const chosen = detail.embeddings.find((e) => e.name === embedding);
    const source =
      [chosen, detail.embeddings.find((e) => e.name === chosen?.base)].find((e) => e?.eigenvalues) ??
      detail.embeddings.find((e) => e.eigenvalues);
    const values = (source?.eigenvalues ?? []).filter((v): v is number => v !== null).sort((a, b) => a - b);
    svg.replaceChildren();
    svg.dataset.count = String(values.length);
    if (values.length < 2) {
      svg.dataset.eigengap = "";
      svg.innerHTML = '<text x="120" y="60" text-anchor="middle" font-size="11">no eigenvalues stored</text>';
      return;
    }
    const k = eigengapK(values);
    svg.dataset.eigengap = String(k);
    const [w, h, m] = [240, 120, 18];
    const low = Math.min(0, values[0]);
    const high = Math.max(values[values.length - 1], low + 1e-12);
    const x = (i: number) => m + ((w - 2 * m) * i) / (values.length - 1);
    const y = (v: number) => h - m - ((h - 2 * m) * (v - low)) / (high - low);
    const gapX = (x(k - 1) + x(k)) / 2;
    const circles = values
      .map((v, i) => `<circle cx="${x(i)}" cy="${y(v)}" r="2.5" fill="#2d6cdf"><title>λ${i + 1} = ${v.toPrecision(4)}</title></circle>`)
      .join("");
    const line = values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    svg.innerHTML =
      `<line x1="${m}" y1="${h - m}" x2="${w - m}" y2="${h - m}" stroke="#99a"/>` +
      `<line class="eigengap" x1="${gapX}" y1="${m / 2}" x2="${gapX}" y2="${h - m}" stroke="#c62828" stroke-dasharray="4 3"/>` +
      `<text x="${gapX > w / 2 ? gapX - 4 : gapX + 4}" y="${m}" font-size="10" fill="#c62828" text-anchor="${gapX > w / 2 ? "end" : "start"}">eigengap: k = ${k}</text>` +
      `<polyline points="${line}" fill="none" stroke="#8aa6d6"/>` +
      circles +
      `<text x="${m}" y="${h - 4}" font-size="9">1</text><text x="${w - m}" y="${h - 4}" font-size="9" text-anchor="end">${values.length}</text>`;
  }

  private showClusters(clustering: api.ClusteringInfo | null): void {
    const list = $("#clusters");
    list.replaceChildren(
      ...(clustering?.clusters ?? []).map(({ label, size }) => {
        const item = document.createElement("li");
        item.dataset.cluster = String(label);
        item.title = "Click to select its points; Shift adds, Alt removes";
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = cssColour(label);
        const text = document.createElement("span");
        text.textContent = label < 0 ? "noise" : `cluster ${label}`;
        const count = document.createElement("span");
        count.className = "size";
        count.textContent = String(size);
        item.append(swatch, text, count);
        item.addEventListener("click", (event) => {
          const labels = this.clusterLabels;
          if (!labels) return;
          const positions: number[] = [];
          for (let p = 0; p < labels.length; p++) if (labels[p] === label) positions.push(p);
          this.select(Int32Array.from(positions), combineFor(event));
        });
        return item;
      }),
    );
  }

  /** A selection change from the canvas or the cluster list. */
  private select(positions: Int32Array, how: Combine): void {
    const selection = combine(this.state.selection, positions, how);
    this.change({ selection, page: 0 });
  }

  private reset(): Partial<ViewState> {
    return { embedding: "", clustering: "", dims: [0, 1], selection: new Int32Array(0), page: 0 };
  }

  /** Apply a change to the current state and record it in the history. */
  private change(change: Partial<ViewState>): void {
    if (change.selection) {
      this.galleryPending = true;
      performance.mark("relscope:selection");
    }
    void this.apply({ ...this.state, ...change }, "push");
  }

  private async showSelection(): Promise<void> {
    const { state, detail } = this;
    if (!detail) return;
    $("#selection-count").textContent = String(state.selection.length);
    const samples = Array.from(state.selection, (p) => detail.index[p]);
    const pages = Math.max(1, Math.ceil(samples.length / this.pageSize));
    const page = Math.min(state.page, pages - 1);
    state.page = page; // a link or a smaller selection may ask for a page past the end
    $("#page-info").textContent = `${page + 1} / ${pages}`;
    ($("#prev") as HTMLButtonElement).disabled = page === 0;
    ($("#next") as HTMLButtonElement).disabled = page >= pages - 1;
    const names = this.labelNames.get(state.project)!;
    await this.gallery.show({
      project: state.project,
      samples,
      page,
      pageSize: this.pageSize,
      mode: state.mode,
      sampling: state.sampling,
      palette: this.palette(),
      labelName: (index) => names.get(index) ?? String(index),
    });
  }

  inspect() {
    return {
      screenPoints: () => Array.from(this.scatter.screenPoints()),
      sampleIndex: () => (this.detail ? [...this.detail.index] : []),
      selection: () => Array.from(this.state.selection),
    };
  }

  private hover(position: number | null, clientX: number, clientY: number): void {
    const box = $("#hover");
    if (position === null || !this.detail) {
      box.hidden = true;
      return;
    }
    const index = this.detail.index[position];
    const image = box.querySelector("img")!;
    const url = api.imageUrl(this.state.project, index);
    if (image.getAttribute("src") !== url) image.src = url;
    const cluster = this.clusterLabels ? ` · cluster ${this.clusterLabels[position]}` : "";
    const caption = box.querySelector(".caption")!;
    if (box.dataset.sample !== String(index)) {
      caption.textContent = `#${index}${cluster}`;
      const project = this.state.project;
      // Labels arrive a moment later; a caption that moved on to another sample is left alone.
      void this.samples(JSON.stringify([project, index])).then((info) => {
        if (box.dataset.sample !== String(index)) return;
        const truth = info.labels.map((l) => l.name).join(", ");
        const predicted = info.prediction ? ` → ${info.prediction[0].name}` : "";
        caption.textContent = `#${index} ${truth}${predicted}${cluster}`;
      }, () => undefined);
    }
    box.dataset.sample = String(index);
    box.style.left = `${clientX + 14}px`;
    box.style.top = `${clientY + 14}px`;
    box.hidden = false;
  }

  private message(text: string, error: boolean): void {
    const box = $("#message");
    box.textContent = text;
    box.hidden = !text;
    box.classList.toggle("error", error);
  }

  private bind(): void {
    const select = (id: string) => $(id) as HTMLSelectElement;
    select("#analysis").addEventListener("change", (e) =>
      this.change({ analysis: (e.target as HTMLSelectElement).value, category: "", ...this.reset() }),
    );
    select("#category").addEventListener("change", (e) =>
      this.change({ category: (e.target as HTMLSelectElement).value, ...this.reset() }),
    );
    select("#embedding").addEventListener("change", (e) =>
      this.change({ embedding: (e.target as HTMLSelectElement).value, dims: [0, 1] }),
    );
    select("#clustering").addEventListener("change", (e) =>
      this.change({ clustering: (e.target as HTMLSelectElement).value }),
    );
    const dims = () => [Number(select("#dim-x").value), Number(select("#dim-y").value)] as [number, number];
    select("#dim-x").addEventListener("change", () => this.change({ dims: dims() }));
    select("#dim-y").addEventListener("change", () => this.change({ dims: dims() }));
    for (const input of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
      input.addEventListener("change", () => this.restyle({ mode: input.value as Mode }));
    }
    select("#sampling").addEventListener("change", (e) =>
      this.restyle({ sampling: (e.target as HTMLSelectElement).value as Sampling }),
    );
    select("#cmap").addEventListener("change", (e) => this.restyle({ cmap: (e.target as HTMLSelectElement).value }));
    select("#page-size").addEventListener("change", (e) => {
      this.pageSize = Number((e.target as HTMLSelectElement).value);
      this.change({ page: 0 });
    });
    $("#prev").addEventListener("click", () => this.change({ page: Math.max(0, this.state.page - 1) }));
    $("#next").addEventListener("click", () => this.change({ page: this.state.page + 1 }));
    for (const button of document.querySelectorAll<HTMLButtonElement>(".tools button")) {
      button.addEventListener("click", () => this.chooseTool(button.dataset.tool as Tool));
    }
    // Keys: P, B, L pick the canvas tool, F fits, Escape clears the selection (not while
    // typing in a field).
    window.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if ((event.target as HTMLElement).closest("input, select, textarea")) return;
      const tools: Record<string, Tool> = { p: "pan", b: "box", l: "lasso" };
      const key = event.key.toLowerCase();
      if (key in tools) this.chooseTool(tools[key]);
      else if (key === "f") this.scatter.fit();
      else if (event.key === "Escape" && this.state.selection.length) this.select(new Int32Array(0), "replace");
    });
    $("#fit").addEventListener("click", () => this.scatter.fit());
    $("#clear-selection").addEventListener("click", () => this.select(new Int32Array(0), "replace"));
    $("#export").addEventListener("click", () => this.exportFile());
    $("#import").addEventListener("change", (e) => this.importFile(e.target as HTMLInputElement));
    $("#share").addEventListener("click", () => this.share());
  }

  private chooseTool(tool: Tool): void {
    this.scatter.tool = tool;
    for (const button of document.querySelectorAll<HTMLElement>(".tools button")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
  }

  /** Mode, sampling and colour map: the gallery is repainted from what it holds. */
  private restyle(change: { mode?: Mode; sampling?: Sampling; cmap?: string }): void {
    this.state = { ...this.state, ...change };
    drawColourBar($("#colourbar"), this.palette());
    void this.gallery.repaint({ mode: this.state.mode, sampling: this.state.sampling, palette: this.palette() });
    void toFragment(this.state, this.detail?.size ?? 0).then((fragment) =>
      window.history.pushState(null, "", "#" + fragment),
    );
  }

  private exportFile(): void {
    if (!this.detail) return;
    const view = exportView(this.state, this.projects[this.state.project].name, this.detail.index);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([JSON.stringify(view, null, 1)], { type: "application/json" }));
    link.download = `relscope-view-${this.state.category}.json`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  private async importFile(input: HTMLInputElement): Promise<void> {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    try {
      const { state, projectName } = importView(JSON.parse(await file.text()));
      const project = this.projects[state.project];
      if (!project || project.name !== projectName) {
        throw new Error(`the file is a view of project "${projectName}", which this server does not have at position ${state.project}`);
      }
      const size = (await this.details(JSON.stringify([state.project, state.analysis, state.category]))).size;
      if (state.selection.length && state.selection[state.selection.length - 1] >= size) {
        throw new Error(`the selection names position ${state.selection[state.selection.length - 1]} of a category of ${size}`);
      }
      this.galleryPending = true;
      await this.apply(state, "push");
      this.message(`Imported the view from ${file.name}.`, false);
    } catch (error) {
      this.message(`${file.name} could not be imported: ${(error as Error).message}`, true);
    }
  }

  private async share(): Promise<void> {
    const url = new URL(location.href);
    url.hash = await toFragment(this.state, this.detail?.size ?? 0);
    const field = $("#share-url") as HTMLInputElement;
    field.value = url.toString();
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      this.message("The link to this view was copied.", false);
    } catch {
      this.message("Copy the link from the field next to the button.", false);
    }
  }
}

const explorer = new Explorer();
// A read-only handle for tests and benchmarks: where each point is drawn, and which sample
// each category position is.
Object.assign(window, { relscope: explorer.inspect() });
explorer.start().catch((error: Error) => {
  const box = document.querySelector("#message") as HTMLElement;
  box.textContent = error.message;
  box.classList.add("error");
  box.hidden = false;
});
