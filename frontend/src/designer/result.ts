/**
 * The result (issue 16 item 5): the input heatmap and the heatmaps at each segment boundary,
 * linked (hovering one puts a crosshair at the same relative position on all the others),
 * the relevance sum per layer as an SVG plot (conservation: a flat line at the output's
 * relevance), and the warnings (relevance that became NaN or exploded, with the layer).
 */

import type { Explanation } from "./api";
import { el, svg } from "./dom";
import { formatValue } from "./formula";
import type { DesignerState } from "./state";

export class ResultPanel {
  private readonly maps = document.querySelector("#heatmaps") as HTMLElement;
  private readonly plot = document.querySelector("#sums") as unknown as SVGSVGElement;
  private readonly warnings = document.querySelector("#warnings") as HTMLUListElement;
  private readonly caption = document.querySelector("#explained") as HTMLElement;
  renders = 0;

  constructor(private readonly state: DesignerState) {}

  show(result: Explanation): void {
    const { state } = this;
    const names = new Map(state.layers.map((l) => [l.name, l]));
    const figures = [
      { title: "input", heatmap: result.heatmap, total: result.input_sum, id: "input" },
      ...result.boundaries.map((b) => ({
        title: `after layer ${b.index - 1} (${names.get(b.after)?.type ?? b.after}) → segment ${result.boundaries.indexOf(b) + 2}`,
        heatmap: b.heatmap,
        total: b.total,
        id: String(b.index),
      })),
    ];
    this.maps.replaceChildren(
      ...figures.map((f) =>
        el(
          "figure",
          { class: "heatmap", "data-boundary": f.id },
          el(
            "div",
            { class: "frame" },
            f.heatmap ? el("img", { src: f.heatmap, alt: `relevance: ${f.title}` }) : el("div", { class: "no-map", text: "no picture (not spatial, or not finite)" }),
            el("div", { class: "cross-h", hidden: true }),
            el("div", { class: "cross-v", hidden: true }),
          ),
          el("figcaption", { text: `${f.title} · Σ ${f.total === null ? "NaN" : formatValue(f.total)}` }),
        ),
      ),
    );
    for (const frame of this.maps.querySelectorAll<HTMLElement>(".frame")) {
      frame.addEventListener("pointermove", (event) => {
        const box = frame.getBoundingClientRect();
        this.crosshair((event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height, frame);
      });
      frame.addEventListener("pointerleave", () => this.crosshair(null, null, frame));
    }
    this.caption.textContent = `explaining ${result.target_name} (class ${result.target})${result.score === null ? "" : `, score ${formatValue(result.score)}`}`;
    this.drawSums(result);
    this.warnings.replaceChildren(...result.warnings.map((w) => el("li", { text: w })));
    this.warnings.hidden = result.warnings.length === 0;
    this.renders++;
    this.maps.dataset.renders = String(this.renders);
  }

  /** Crosshairs at (x, y) (fractions of the size) on every heatmap but `source`. */
  private crosshair(x: number | null, y: number | null, source: HTMLElement): void {
    for (const frame of this.maps.querySelectorAll<HTMLElement>(".frame")) {
      const h = frame.querySelector(".cross-h") as HTMLElement;
      const v = frame.querySelector(".cross-v") as HTMLElement;
      const show = x !== null && y !== null && frame !== source;
      h.hidden = v.hidden = !show;
      if (show) {
        h.style.top = `${100 * y!}%`;
        v.style.left = `${100 * x!}%`;
        frame.dataset.cross = `${x!.toFixed(3)},${y!.toFixed(3)}`;
      } else delete frame.dataset.cross;
    }
  }

  private drawSums(result: Explanation): void {
    const width = 320, height = 140, left = 44, right = 8, top = 10, bottom = 22;
    const points = result.sums;
    const finite = points.map((p) => p.sum).filter((v): v is number => v !== null);
    const reference = result.output_sum;
    const all = [...finite, ...(reference === null ? [] : [reference]), 0];
    let lo = Math.min(...all), hi = Math.max(...all);
    if (hi - lo < 1e-12) { hi += 1; lo -= 1; }
    const x = (i: number) => left + ((width - left - right) * (i + 0.5)) / Math.max(1, points.length);
    const y = (v: number) => top + ((height - top - bottom) * (hi - v)) / (hi - lo);
    this.plot.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const nodes: SVGElement[] = [
      svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), class: "axis" }),
      svg("text", { x: left - 4, y: y(hi) + 4, class: "tick", "text-anchor": "end" }),
      svg("text", { x: left - 4, y: y(lo), class: "tick", "text-anchor": "end" }),
    ];
    nodes[1].textContent = formatValue(hi);
    nodes[2].textContent = formatValue(lo);
    if (reference !== null) {
      const line = svg("line", { x1: left, x2: width - right, y1: y(reference), y2: y(reference), class: "conserved" });
      line.append(Object.assign(svg("title"), { textContent: `output relevance ${formatValue(reference)}` }));
      nodes.push(line);
    }
    const path = points.map((p, i) => (p.sum === null ? null : `${x(i)},${y(p.sum)}`)).filter(Boolean).join(" ");
    nodes.push(svg("polyline", { points: path, class: "sums" }));
    points.forEach((p, i) => {
      const dot = svg("circle", {
        cx: x(i),
        cy: p.sum === null ? y(lo) : y(p.sum),
        r: 3,
        class: p.sum === null ? "point bad" : "point",
        "data-layer": p.layer,
        "data-sum": p.sum === null ? "NaN" : p.sum,
      });
      dot.append(Object.assign(svg("title"), { textContent: `layer ${p.layer}: ${p.sum === null ? "NaN" : formatValue(p.sum)}` }));
      const label = svg("text", { x: x(i), y: height - 6, class: "tick", "text-anchor": "middle" });
      label.textContent = p.layer;
      nodes.push(dot, label);
    });
    this.plot.replaceChildren(...nodes);
  }

  clear(text: string): void {
    this.caption.textContent = text;
  }
}
