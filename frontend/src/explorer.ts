/**
 * The Explorer: one view state, brought onto the page by its panels (setup, map, gallery) and
 * carried by the URL fragment, exported files and browser history.
 */

import type * as api from "./api";
import { Data } from "./data";
import { showMessage } from "./dom";
import { GalleryPanel, type Style } from "./gallery-panel";
import { type Combine, combine } from "./geometry";
import { bindLinks, readLink, record } from "./links";
import { PlotPanel } from "./plot";
import { notice, resolve } from "./resolve";
import { SetupPanel } from "./setup";
import { emptyState, type ViewState } from "./state";

export class Explorer {
  /** The view shown; the panels read it, the Explorer alone changes it. */
  state: ViewState = emptyState(0);
  detail: api.CategoryDetail | null = null;
  clusterLabels: Int32Array | null = null;
  private data = new Data();
  private states = new Map<number, ViewState>(); // the last view of each project left
  private sequence = 0; // of the latest view asked for; a slower earlier one is dropped
  private plot: PlotPanel;
  private gallery: GalleryPanel;
  private setup: SetupPanel;

  constructor() {
    this.plot = new PlotPanel(this, this.data);
    this.gallery = new GalleryPanel(this);
    this.setup = new SetupPanel(this);
    bindLinks(this, this.data);
  }

  async start(): Promise<void> {
    this.gallery.colormaps(await this.data.load());
    this.setup.tabs(this.data.projects, (project) => this.switchProject(project));
    if (this.data.projects.length === 0) throw new Error("the server has no projects");
    window.addEventListener("popstate", () => this.restore(location.hash, false));
    await this.restore(location.hash, true);
  }

  /** A read-only handle for tests and benchmarks. */
  inspect() {
    return {
      screenPoints: () => this.plot.screenPoints(),
      sampleIndex: () => (this.detail ? [...this.detail.index] : []),
      selection: () => Array.from(this.state.selection),
    };
  }

  /** The Designer page's address for a sample, or null where the project has no designer. */
  designerUrl(project: number, sample: number): string | null {
    return this.data.designerUrl(project, sample);
  }

  /** A selection change from the canvas or the cluster list. */
  select(positions: Int32Array, how: Combine): void {
    this.change({ selection: combine(this.state.selection, positions, how), page: 0 });
  }

  /** Apply a change to the current state and record it in the history. */
  change(change: Partial<ViewState>): void {
    if (change.selection) {
      this.gallery.expectPictures();
      performance.mark("relscope:selection");
    }
    void this.apply({ ...this.state, ...change }, "push");
  }

  /** Mode, sampling and colour map: the gallery is repainted from what it holds. */
  restyle(change: Style): void {
    this.state = { ...this.state, ...change };
    this.gallery.restyle(this.state, this.data.palette(this.state.cmap));
    void record(this.state, this.detail?.size ?? 0, "push");
  }

  /** Show an imported view. */
  async open(state: ViewState): Promise<void> {
    this.gallery.expectPictures();
    await this.apply(state, "push");
  }

  /** Apply the state of a URL fragment (an empty or broken one falls back to defaults). */
  private async restore(fragment: string, initial: boolean): Promise<void> {
    const { state, notes } = await readLink(fragment, async (s) => (this.data.projects[s.project] ? this.data.size(s) : 0));
    await this.apply(state, initial ? "replace" : "none", notes);
  }

  private switchProject(project: number): void {
    if (project === this.state.project) return;
    this.states.set(this.state.project, this.state);
    void this.apply(this.states.get(project) ?? emptyState(project), "push");
  }

  /**
   * Bring the page to `wanted`, filling in and correcting names the project lacks (`notes`
   * come first in the message saying so), then record it in the history (`push`), replace
   * the current entry, or leave it (`none`).
   */
  private async apply(wanted: ViewState, history: "push" | "replace" | "none", notes: string[] = []): Promise<void> {
    const sequence = ++this.sequence;
    try {
      const resolved = await resolve(wanted, this.data, notes);
      showMessage(notice(resolved.notes), false);
      if (sequence !== this.sequence) return;
      await this.show(resolved.state, sequence);
      if (sequence !== this.sequence) return;
      await record(resolved.state, this.detail?.size ?? 0, history);
    } catch (error) {
      showMessage((error as Error).message, true);
    }
  }

  private async show(state: ViewState, sequence: number): Promise<void> {
    const { project: p, analysis: a, category: c } = state;
    const [names, ranking, detail] = await Promise.all([
      this.data.labelNames(p),
      this.data.rankings(p, a),
      this.data.details(p, a, c),
    ]);
    const [points, clusterLabels] = await Promise.all([
      this.data.embeddings(p, a, c, state.embedding, state.dims),
      state.clustering ? this.data.clusterings(p, a, c, state.clustering) : Promise.resolve(null),
    ]);
    if (sequence !== this.sequence) return;
    this.state = state;
    this.detail = detail;
    this.clusterLabels = clusterLabels;
    const palette = this.data.palette(state.cmap);
    // The gallery's requests go out first; the canvas and lists are updated while they run.
    const gallery = this.gallery.show(state, detail, names, palette);
    this.setup.show(state, this.data.projects[p], ranking, detail);
    this.plot.show(state, points, clusterLabels);
    this.gallery.controls(state, palette);
    await gallery;
  }
}
