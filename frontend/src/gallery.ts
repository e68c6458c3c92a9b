/**
 * The sample gallery of a selection: paged tiles of input images, heatmaps or overlays with
 * true and predicted labels. Heatmaps are fetched once per sample as palette PNGs; their
 * relevance indices are kept, so a colour-map change recolours them without a request.
 */

import * as api from "./api";
import { memo } from "./memo";
import { GRAY_RAMP, heatmapPixels, overlayPixels, replacePalette } from "./png";
import type { Mode, Sampling } from "./state";

interface Picture {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}
interface Heatmap {
  width: number;
  height: number;
  indices: Uint8Array;
}

async function decode(bytes: Uint8Array): Promise<Picture> {
  const bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: "image/png" }), {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  return { width: bitmap.width, height: bitmap.height, rgba };
}

export interface GalleryView {
  project: number;
  samples: number[];
  page: number; // within the selection's pages (the caller clamps it)
  pageSize: number;
  mode: Mode;
  sampling: Sampling;
  palette: Uint8Array;
  labelName(index: number): string;
  /** The Designer page's address for a sample, or null (no designer for this project). */
  designerUrl(index: number): string | null;
}

export class Gallery {
  private generation = 0;
  private controller: AbortController | null = null;
  private view: GalleryView | null = null;
  private tiles: { index: number; canvas: HTMLCanvasElement }[] = [];

  constructor(
    private grid: HTMLElement,
    private status: HTMLElement,
    private onFirstImage: () => void,
  ) {}

  /** Show a page of a selection (fetches labels for the page, then its pictures). */
  async show(view: GalleryView): Promise<void> {
    const generation = ++this.generation;
    this.controller?.abort();
    this.controller = new AbortController();
    this.view = view;
    this.grid.replaceChildren();
    this.tiles = [];
    this.grid.dataset.state = "loading";
    if (view.samples.length === 0) {
      this.status.textContent = "No samples selected: select points in the embedding or click a cluster.";
      this.grid.dataset.paints = String(++this.paints);
      this.grid.dataset.state = "ready";
      return;
    }
    const offset = view.page * view.pageSize;
    let answer;
    try {
      answer = await api.samplePage(view.project, view.samples, offset, view.pageSize, this.controller.signal);
    } catch (error) {
      if ((error as Error).name === "AbortError") return;
      throw error;
    }
    if (generation !== this.generation) return;
    this.status.textContent = `Samples ${offset + 1}–${offset + answer.samples.length} of ${view.samples.length}`;
    for (const sample of answer.samples) {
      const figure = document.createElement("figure");
      figure.className = "tile";
      figure.dataset.index = String(sample.index);
      const canvas = document.createElement("canvas");
      const caption = document.createElement("figcaption");
      const trueNames = sample.labels.map((l) => view.labelName(l)).join(", ");
      const wrong = sample.predicted !== null && !sample.labels.includes(sample.predicted);
      const id = document.createElement("span");
      id.className = "sample-id";
      id.textContent = `#${sample.index}`;
      const truth = document.createElement("span");
      truth.className = "true-label";
      truth.textContent = trueNames;
      truth.title = "true label";
      caption.append(id, truth);
      if (sample.predicted !== null) {
        const predicted = document.createElement("span");
        predicted.className = wrong ? "predicted-label wrong" : "predicted-label";
        predicted.textContent = `→ ${view.labelName(sample.predicted)}`;
        predicted.title = "predicted label";
        caption.append(predicted);
      }
      const designer = view.designerUrl(sample.index);
      if (designer !== null) {
        const link = document.createElement("a");
        link.className = "open-designer";
        link.href = designer;
        link.textContent = "Design";
        link.title = "Open this sample in the Designer";
        caption.append(link);
      }
      figure.append(canvas, caption);
      this.grid.append(figure);
      this.tiles.push({ index: sample.index, canvas });
    }
    await this.paint(generation);
  }

  /** Redraw the current tiles (after a colour map, mode or sampling change). */
  async repaint(change: Partial<Pick<GalleryView, "mode" | "sampling" | "palette">>): Promise<void> {
    if (!this.view) return;
    this.view = { ...this.view, ...change };
    await this.paint(++this.generation);
  }

  private input = memo((project: number, index: number) => api.bytes(api.imageUrl(project, index)).then(decode));

  private storedHeatmap = memo((project: number, index: number) =>
    api
      .bytes(api.heatmapUrl(project, index))
      .then(async (bytes): Promise<Heatmap | null> => {
        const gray = await decode(replacePalette(bytes, GRAY_RAMP));
        const indices = new Uint8Array(gray.width * gray.height);
        for (let p = 0; p < indices.length; p++) indices[p] = gray.rgba[4 * p];
        return { width: gray.width, height: gray.height, indices };
      })
      .catch((error: Error) => {
        // 404: the sample has no stored attribution (kept); other errors are asked again.
        if (/: 404 /.test(error.message)) return null;
        throw error;
      }),
  );

  /** The sample's heatmap; null when it has none or it could not be loaded. */
  private heatmap(project: number, index: number): Promise<Heatmap | null> {
    return this.storedHeatmap(project, index).catch(() => null);
  }

  private paints = 0;

  private async paint(generation: number): Promise<void> {
    const view = this.view!;
    let first = true;
    this.grid.dataset.state = "loading";
    const jobs = this.tiles.map(async ({ index, canvas }) => {
      const pixels = await this.pixels(view, index);
      if (generation !== this.generation) return;
      const figure = canvas.parentElement!;
      if (!pixels) {
        figure.dataset.missing = "attribution";
        canvas.width = canvas.height = 1;
        return;
      }
      delete figure.dataset.missing;
      canvas.width = pixels.width;
      canvas.height = pixels.height;
      canvas.getContext("2d")!.putImageData(new ImageData(pixels.rgba as ImageDataArray, pixels.width, pixels.height), 0, 0);
      const pixelated = view.sampling === "pixelated" || (view.sampling === "auto" && pixels.width * 2 <= canvas.clientWidth);
      canvas.style.imageRendering = pixelated ? "pixelated" : "auto";
      figure.dataset.sampling = pixelated ? "pixelated" : "smooth";
      figure.dataset.mode = view.mode;
      if (first) {
        first = false;
        this.onFirstImage();
      }
    });
    await Promise.all(jobs);
    if (generation === this.generation) {
      // Tests and benchmarks wait for a count of finished paints to grow.
      this.grid.dataset.paints = String(++this.paints);
      this.grid.dataset.state = "ready";
    }
  }

  private async pixels(view: GalleryView, index: number): Promise<Picture | null> {
    if (view.mode === "input") return this.input(view.project, index);
    const heatmap = await this.heatmap(view.project, index);
    if (!heatmap) return null;
    if (view.mode === "attribution") {
      return { width: heatmap.width, height: heatmap.height, rgba: heatmapPixels(heatmap.indices, view.palette) };
    }
    const input = await this.input(view.project, index);
    if (input.width !== heatmap.width || input.height !== heatmap.height) {
      return { width: heatmap.width, height: heatmap.height, rgba: heatmapPixels(heatmap.indices, view.palette) };
    }
    const gray = new Uint8Array(heatmap.indices.length);
    for (let p = 0; p < gray.length; p++) {
      const [r, g, b] = [input.rgba[4 * p], input.rgba[4 * p + 1], input.rgba[4 * p + 2]];
      gray[p] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    }
    return { width: heatmap.width, height: heatmap.height, rgba: overlayPixels(heatmap.indices, gray, view.palette) };
  }
}

/** Draw a colour bar of `palette` into `canvas` (256 columns). */
export function drawColourBar(canvas: HTMLCanvasElement, palette: Uint8Array): void {
  canvas.width = 256;
  canvas.height = 1;
  const indices = Uint8Array.from({ length: 256 }, (_, i) => i);
  canvas.getContext("2d")!.putImageData(new ImageData(heatmapPixels(indices, palette) as ImageDataArray, 256, 1), 0, 0);
}
