/**
 * The embedding map: the scatter canvas with its points and cluster colours, the canvas tools
 * and keys, the hover preview, and the selections drawn on it.
 */

import * as api from "./api";
import { pointColours } from "./colors";
import type { Data } from "./data";
import { $ } from "./dom";
import type { Combine } from "./geometry";
import { Scatter, type Tool } from "./scatter";
import type { ViewState } from "./state";

export interface PlotHost {
  readonly state: ViewState;
  readonly detail: api.CategoryDetail | null;
  readonly clusterLabels: Int32Array | null;
  select(positions: Int32Array, how: Combine): void;
}

const TOOL_KEYS: Record<string, Tool> = { p: "pan", b: "box", l: "lasso" };

/** What a key asks of the canvas: P, B, L pick a tool, F fits, Escape clears (no Ctrl, Meta or Alt). */
export function keyCommand(event: {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
}): Tool | "fit" | "clear" | null {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const key = event.key.toLowerCase();
  if (Object.hasOwn(TOOL_KEYS, key)) return TOOL_KEYS[key];
  if (key === "f") return "fit";
  return event.key === "Escape" ? "clear" : null;
}

/** What the canvas shows of a view: its points, and the colours of its clustering. */
export function plotKeys(state: ViewState): { points: string; colours: string } {
  const { project: p, analysis: a, category: c } = state;
  return {
    points: JSON.stringify([p, a, c, state.embedding, ...state.dims]),
    colours: JSON.stringify([p, a, c, state.clustering]),
  };
}

/** The hover caption of a sample: its index, then its labels once known, and its cluster. */
export function hoverCaption(index: number, cluster: number | null, info?: api.SampleInfo): string {
  const tail = cluster === null ? "" : ` · cluster ${cluster}`;
  if (!info) return `#${index}${tail}`;
  const truth = info.labels.map((l) => l.name).join(", ");
  const predicted = info.prediction ? ` → ${info.prediction[0].name}` : "";
  return `#${index} ${truth}${predicted}${tail}`;
}

export class PlotPanel {
  private scatter: Scatter;
  private plotted = { points: "", colours: "" };
  private firstRenderMarked = false;

  constructor(
    private host: PlotHost,
    private data: Data,
  ) {
    this.scatter = new Scatter($("#plot"), {
      select: (positions, how) => host.select(positions, how),
      hover: (position, x, y) => this.hover(position, x, y),
      rendered: (count) => {
        $("#plot").dataset.rendered = String(count);
        if (count > 0 && !this.firstRenderMarked) {
          this.firstRenderMarked = true;
          performance.mark("relscope:first-render");
        }
      },
    });
    for (const button of document.querySelectorAll<HTMLButtonElement>(".tools button")) {
      button.addEventListener("click", () => this.chooseTool(button.dataset.tool as Tool));
    }
    window.addEventListener("keydown", (event) => {
      // D over a point opens that sample in the Designer (where its project has one).
      const hovered = $("#hover");
      if (event.key.toLowerCase() === "d" && !event.ctrlKey && !event.metaKey && !event.altKey
          && !hovered.hidden && hovered.dataset.designer) {
        if ((event.target as HTMLElement).closest("input, select, textarea")) return;
        location.assign(hovered.dataset.designer);
        return;
      }
      const command = keyCommand(event);
      // Not while typing in a field.
      if (!command || (event.target as HTMLElement).closest("input, select, textarea")) return;
      if (command === "fit") this.scatter.fit();
      else if (command === "clear") {
        if (host.state.selection.length) this.clear();
      } else this.chooseTool(command);
    });
    $("#fit").addEventListener("click", () => this.scatter.fit());
    $("#clear-selection").addEventListener("click", () => this.clear());
  }

  /** Where each point is drawn on screen (for tests and benchmarks). */
  screenPoints(): number[] {
    return Array.from(this.scatter.screenPoints());
  }

  /** Draw a view's points; only new points are uploaded, so a colour change keeps zoom and pan. */
  show(state: ViewState, points: Float32Array, clusterLabels: Int32Array | null): void {
    const keys = plotKeys(state);
    const count = points.length >> 1;
    if (this.plotted.points !== keys.points) {
      this.scatter.setData(points, pointColours(clusterLabels, count));
    } else if (this.plotted.colours !== keys.colours) {
      this.scatter.setColors(pointColours(clusterLabels, count));
    }
    this.plotted = keys;
    this.scatter.setSelection(state.selection);
    $("#point-count").textContent = String(count);
  }

  private clear(): void {
    this.host.select(new Int32Array(0), "replace");
  }

  private chooseTool(tool: Tool): void {
    this.scatter.tool = tool;
    for (const button of document.querySelectorAll<HTMLElement>(".tools button")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
  }

  private hover(position: number | null, clientX: number, clientY: number): void {
    const box = $("#hover");
    const { detail, clusterLabels, state } = this.host;
    if (position === null || !detail) {
      box.hidden = true;
      return;
    }
    const index = detail.index[position];
    const image = box.querySelector("img")!;
    const url = api.imageUrl(state.project, index);
    if (image.getAttribute("src") !== url) image.src = url;
    const cluster = clusterLabels ? clusterLabels[position] : null;
    const caption = box.querySelector(".caption")!;
    if (box.dataset.sample !== String(index)) {
      caption.textContent = hoverCaption(index, cluster);
      // Labels arrive a moment later; a caption that moved on to another sample is left alone.
      void this.data.samples(state.project, index).then((info) => {
        if (box.dataset.sample === String(index)) caption.textContent = hoverCaption(index, cluster, info);
      }, () => undefined);
    }
    box.dataset.sample = String(index);
    const designer = this.data.designerUrl(state.project, index);
    if (designer === null) delete box.dataset.designer;
    else box.dataset.designer = designer;
    box.querySelector(".designer-hint")?.toggleAttribute("hidden", designer === null);
    box.style.left = `${clientX + 14}px`;
    box.style.top = `${clientY + 14}px`;
    box.hidden = false;
  }
}
