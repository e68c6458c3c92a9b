/**
 * The gallery panel: the selection's samples, a page at a time, and the controls of how they
 * are drawn (mode, sampling, colour map and its bar, page size, pager).
 */

import type * as api from "./api";
import { $, onChange, options } from "./dom";
import { drawColourBar, Gallery } from "./gallery";
import type { Mode, Sampling, ViewState } from "./state";

/** The view settings the gallery repaints from what it holds. */
export type Style = Partial<Pick<ViewState, "mode" | "sampling" | "cmap">>;

export interface GalleryHost {
  readonly state: ViewState;
  change(change: Partial<ViewState>): void;
  restyle(change: Style): void;
  /** The Designer page's address for a sample, or null where the project has no designer. */
  designerUrl(project: number, sample: number): string | null;
}

/** The page of `count` samples to show (a page past the end shows the last) and the number of pages. */
export function pageOf(count: number, pageSize: number, page: number): { page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(count / pageSize));
  return { page: Math.min(page, pages - 1), pages };
}

export class GalleryPanel {
  private gallery: Gallery;
  private pageSize = 48;
  private pending = false;

  constructor(private host: GalleryHost) {
    this.gallery = new Gallery($("#gallery"), $("#gallery-status"), () => {
      if (this.pending) {
        this.pending = false;
        performance.mark("relscope:gallery-first-image");
      }
    });
    for (const input of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
      input.addEventListener("change", () => host.restyle({ mode: input.value as Mode }));
    }
    onChange("#sampling", (sampling) => host.restyle({ sampling: sampling as Sampling }));
    onChange("#cmap", (cmap) => host.restyle({ cmap }));
    onChange("#page-size", (size) => {
      this.pageSize = Number(size);
      host.change({ page: 0 });
    });
    $("#prev").addEventListener("click", () => host.change({ page: Math.max(0, host.state.page - 1) }));
    $("#next").addEventListener("click", () => host.change({ page: host.state.page + 1 }));
  }

  /** Mark the next first picture shown ("relscope:gallery-first-image", for benchmarks). */
  expectPictures(): void {
    this.pending = true;
  }

  colormaps(names: string[]): void {
    options(
      $("#cmap"),
      names.map((name) => ({ value: name, text: name })),
      "bwr",
    );
  }

  /** Show the page of `state`'s selection (clamping `state.page` to the last page). */
  async show(state: ViewState, detail: api.CategoryDetail, names: Map<number, string>, palette: Uint8Array): Promise<void> {
    $("#selection-count").textContent = String(state.selection.length);
    const samples = Array.from(state.selection, (p) => detail.index[p]);
    const { page, pages } = pageOf(samples.length, this.pageSize, state.page);
    state.page = page; // a link or a smaller selection may ask for a page past the end
    $("#page-info").textContent = `${page + 1} / ${pages}`;
    $<HTMLButtonElement>("#prev").disabled = page === 0;
    $<HTMLButtonElement>("#next").disabled = page >= pages - 1;
    await this.gallery.show({
      project: state.project,
      samples,
      page,
      pageSize: this.pageSize,
      mode: state.mode,
      sampling: state.sampling,
      palette,
      labelName: (index) => names.get(index) ?? String(index),
      designerUrl: (index) => this.host.designerUrl(state.project, index),
    });
  }

  /** Set the style controls and the colour bar to `state`'s. */
  controls(state: ViewState, palette: Uint8Array): void {
    for (const input of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
      input.checked = input.value === state.mode;
    }
    $<HTMLSelectElement>("#sampling").value = state.sampling;
    $<HTMLSelectElement>("#cmap").value = state.cmap;
    drawColourBar($("#colourbar"), palette);
  }

  /** Repaint the shown samples in `state`'s style. */
  restyle(state: ViewState, palette: Uint8Array): void {
    drawColourBar($("#colourbar"), palette);
    void this.gallery.repaint({ mode: state.mode, sampling: state.sampling, palette });
  }
}
