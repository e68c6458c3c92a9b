/**
 * The segment ruler (issue 16 item 3): the model's layers in execution order, labelled by
 * kind, with the segments as coloured bands. Boundaries are dragged (pointer events) or moved
 * with the keys: a focused boundary moves with ←/→ and is removed (merge) with Delete or
 * Backspace; a focused layer splits off a new segment starting at it with S (or |), and a
 * pointer pressed on a gap between layers splits there and drags the new boundary. Clicking
 * a layer selects its segment for the rule panel.
 */

import { el } from "./dom";
import { kindLabel, ruleColour, ruleKey, ruleLabel } from "./rules";
import { boundaries, merge, moveBoundary, segmentOf, split } from "./segments";
import type { DesignerState } from "./state";

export class SegmentRuler {
  private readonly root = document.querySelector("#ruler") as HTMLElement;
  private readonly count = document.querySelector("#segment-count") as HTMLElement;
  private focusBoundary: number | null = null;
  private focusLayer: number | null = null;

  constructor(private readonly state: DesignerState) {
    state.on((changes) => {
      if (changes.has("config") || changes.has("segment")) this.render();
    });
  }

  private get n(): number {
    return this.state.layers.length;
  }

  /** The gap (0..n) nearest to a pointer at `clientX`. */
  private gapAt(clientX: number): number {
    const box = this.root.querySelector(".layers")!.getBoundingClientRect();
    return Math.round(((clientX - box.left) / box.width) * this.n);
  }

  private structure(segments = this.state.config.segments, selected = this.state.segment): void {
    this.state.segment = Math.max(0, Math.min(selected, segments.length - 1));
    this.state.setConfig({ ...this.state.config, segments }, true);
  }

  private drag(boundary: number, event: PointerEvent, handle: HTMLElement): void {
    event.preventDefault();
    try {
      handle.setPointerCapture(event.pointerId);
    } catch {
      // a synthetic event has no pointer to capture; the window listeners below suffice
    }
    const move = (e: PointerEvent) => {
      const segments = this.state.config.segments;
      if (boundary + 1 >= segments.length) return;
      const at = this.gapAt(e.clientX);
      if (at !== segments[boundary + 1].start) {
        this.focusBoundary = boundary;
        this.structure(moveBoundary(segments, boundary, at));
      }
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  render(): void {
    const { state } = this;
    const n = this.n;
    const segments = state.config.segments;
    const bands = el(
      "div",
      { class: "bands" },
      ...segments.map((s, i) => {
        const key = ruleKey(s, state.catalog);
        const band = el("button", {
          type: "button",
          class: "band",
          "data-segment": i,
          "data-rule": key,
          "aria-pressed": i === state.segment ? "true" : "false",
          title: `segment ${i + 1}: layers ${s.start}–${s.stop - 1}, ${ruleLabel(key)}`,
          text: `${ruleLabel(key)} · ${s.stop - s.start}`,
        });
        band.style.gridColumn = `${s.start + 1} / ${s.stop + 1}`;
        band.style.background = ruleColour(key);
        band.addEventListener("click", () => state.setSegment(i));
        return band;
      }),
    );
    bands.style.gridTemplateColumns = `repeat(${n}, 1fr)`;
    const layers = el(
      "div",
      { class: "layers" },
      ...state.layers.map((layer) => {
        const i = segmentOf(segments, layer.index);
        const cell = el(
          "button",
          {
            type: "button",
            class: "layer",
            "data-layer": layer.index,
            "data-kind": kindLabel(layer.kind, layer.type),
            "data-segment": i,
            "aria-pressed": i === state.segment ? "true" : "false",
            title: `${layer.index}: ${layer.name} (${layer.type}${layer.shape ? ", " + layer.shape.join("×") : ""}); S splits here`,
          },
          el("span", { class: "kind", text: kindLabel(layer.kind, layer.type) }),
          el("span", { class: "index", text: String(layer.index) }),
        );
        cell.style.borderBottomColor = ruleColour(ruleKey(segments[i], state.catalog));
        cell.addEventListener("click", () => state.setSegment(i));
        cell.addEventListener("keydown", (event) => {
          if ((event.key === "s" || event.key === "S" || event.key === "|") && layer.index > 0) {
            event.preventDefault();
            const next = split(segments, layer.index);
            this.focusLayer = layer.index;
            this.structure(next, segmentOf(next, layer.index));
          }
        });
        return cell;
      }),
    );
    layers.style.gridTemplateColumns = `repeat(${n}, 1fr)`;
    const gaps = el("div", { class: "gaps" });
    const starts = boundaries(segments);
    for (let at = 1; at < n; at++) {
      const b = starts.indexOf(at);
      const gap = el("div", {
        class: b >= 0 ? "gap boundary" : "gap",
        "data-at": at,
        ...(b >= 0
          ? {
              "data-boundary": b,
              role: "slider",
              tabindex: 0,
              "aria-label": `boundary ${b + 1} (before layer ${at}); ←/→ move, Delete merges`,
              "aria-valuemin": 1,
              "aria-valuemax": n - 1,
              "aria-valuenow": at,
            }
          : { title: `split before layer ${at}` }),
      });
      gap.style.left = `${(100 * at) / n}%`;
      gap.addEventListener("pointerdown", (event) => {
        const current = this.state.config.segments;
        let boundary = boundaries(current).indexOf(at);
        if (boundary < 0) {
          const next = split(current, at);
          boundary = boundaries(next).indexOf(at);
          this.focusBoundary = boundary;
          this.structure(next);
        }
        this.drag(boundary, event, this.root);
      });
      if (b >= 0) {
        gap.addEventListener("keydown", (event) => {
          const current = this.state.config.segments;
          if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
            event.preventDefault();
            this.focusBoundary = b;
            this.structure(moveBoundary(current, b, at + (event.key === "ArrowLeft" ? -1 : 1)));
          } else if (event.key === "Delete" || event.key === "Backspace") {
            event.preventDefault();
            this.focusBoundary = null;
            this.focusLayer = at;
            this.structure(merge(current, b), b);
          }
        });
      }
      gaps.append(gap);
    }
    this.root.replaceChildren(bands, el("div", { class: "track" }, layers, gaps));
    this.count.textContent = `${n} layers · ${segments.length} segment${segments.length === 1 ? "" : "s"}`;
    if (this.focusBoundary !== null) {
      (this.root.querySelector(`.gap[data-boundary="${this.focusBoundary}"]`) as HTMLElement | null)?.focus();
      this.focusBoundary = null;
    } else if (this.focusLayer !== null) {
      (this.root.querySelector(`.layer[data-layer="${this.focusLayer}"]`) as HTMLElement | null)?.focus();
      this.focusLayer = null;
    }
  }
}
