/**
 * The Neuron ablation tab (issue 16 item 8): choose a layer; its channels as a scatter
 * (x: positive relevance, y: |negative relevance|, colour: mean activation) linked to a
 * channel x position relevance matrix (hovering or selecting a channel in one marks it in
 * the other); select channels by click (shift toggles) or by dragging a box (shift adds);
 * see the relevance and activation maps of the selected channels; ablate them and see the
 * new top-10 and heatmap beside the intact model's.
 *
 * Requests are latest-only operations of the designer API (`neurons`, `neurons/maps`,
 * `ablate`); the intact explanation shares the Design tab's cache, so the same request is
 * never sent twice at once (the server would supersede one of them). Changing the
 * configuration, input or target refreshes the scatter when the tab is visible (else when
 * it is shown) and clears an ablation that no longer matches.
 */

import "./neurons.css";
import { isSuperseded, Operation, type Explanation, type LayerInfo, type Prediction } from "./api";
import { debounce } from "./cache";
import { el, svg } from "./dom";
import { formatValue } from "./formula";
import type { Tab } from "./main";
import {
  axisMax,
  boxSelection,
  clickSelection,
  css,
  linearScale,
  matrixPixels,
  nearestPoint,
  pointsInBox,
  rowAt,
  scatterPoints,
  sequential,
  symmetricLimit,
  type Point,
  type Scale,
} from "./neuronplot";
import type { DesignerState } from "./state";

/** The neurons endpoint's answer. */
export interface NeuronData {
  layer: string;
  target: number;
  channels: number;
  positive: (number | null)[];
  negative: (number | null)[];
  activation: (number | null)[];
  grid: number[];
  matrix: (number | null)[][];
}
interface ChannelMaps {
  layer: string;
  target: number;
  channels: number[];
  relevance: (string | null)[];
  activation: (string | null)[];
}
type Ablation = Explanation & { predictions: Prediction[] };

/** The most channels whose maps are shown at once. */
export const MAX_MAPS = 16;
const WIDTH = 420, HEIGHT = 320, LEFT = 58, RIGHT = 12, TOP = 12, BOTTOM = 42;
const RADIUS = 5;

/** Layers whose output has channels (not a flatten/reshape, not shapeless). */
export const channelLayers = (layers: LayerInfo[]) =>
  layers.filter((l) => l.shape !== null && l.shape.length > 0 && l.kind !== "reshape" && l.kind !== "meta");

const describeLayer = (l: LayerInfo) => `${l.index} · ${l.name} · ${l.type} (${l.kind}) · ${l.shape!.join("×")}`;

class NeuronsTab {
  private readonly layerSelect = el("select", { id: "neuron-layer", "aria-label": "Layer" });
  private readonly status = el("span", { id: "neuron-status", class: "muted" });
  private readonly error = el("p", { id: "neuron-error", class: "warnings", hidden: true });
  private readonly plot = svg("svg", { id: "neuron-scatter", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT, role: "img", "aria-label": "Channels by positive and negative relevance" });
  private readonly legend = el("div", { id: "neuron-legend", class: "neuron-legend" });
  private readonly hoverInfo = el("div", { id: "neuron-hover", class: "muted" });
  private readonly canvas = el("canvas", { id: "neuron-matrix" });
  private readonly matrixFrame = el("div", { id: "neuron-matrix-frame", class: "matrix-frame" });
  private readonly rowMark = el("div", { class: "row-mark hover", hidden: true });
  private readonly selectedMarks = el("div", { class: "row-marks" });
  private readonly rowLabels = el("div", { class: "row-labels", "aria-hidden": "true" });
  private readonly matrixLegend = el("div", { id: "neuron-matrix-legend", class: "neuron-legend" });
  private readonly count = el("span", { id: "neuron-count", class: "muted", text: "0 channels selected" });
  private readonly clearButton = el("button", { type: "button", id: "neuron-clear", text: "Clear", disabled: true });
  private readonly ablateButton = el("button", { type: "button", id: "neuron-ablate", text: "Ablate", disabled: true });
  private readonly maps = el("div", { id: "neuron-maps", "data-state": "idle" });
  private readonly ablation = el("section", { id: "neuron-ablation", class: "card", "data-state": "idle", hidden: true });

  private readonly neuronsOp: Operation<NeuronData>;
  private readonly mapsOp: Operation<ChannelMaps>;
  private readonly ablateOp: Operation<Ablation>;
  private readonly explainOp: Operation<Explanation>;

  private layer: number;
  private data: NeuronData | null = null;
  private points: Point[] = [];
  private selected = new Set<number>();
  private hover: number | null = null;
  private stale = true;
  private asked = { neurons: 0, maps: 0, ablate: 0 };
  private brush: { x0: number; y0: number; x1: number; y1: number; add: boolean; node: SVGRectElement } | null = null;

  constructor(
    private readonly panel: HTMLElement,
    private readonly state: DesignerState,
  ) {
    const api = state.api;
    this.neuronsOp = api.operation<NeuronData>("neurons");
    this.mapsOp = api.operation<ChannelMaps>("neurons/maps");
    this.ablateOp = api.operation<Ablation>("ablate");
    // The intact explanation through the Design tab's cache (see the module comment).
    const explain = api.operation<Explanation>("explain");
    this.explainOp = new Operation<Explanation>((body) => explain.run(body), api.explain.cache);

    const layers = channelLayers(state.layers);
    this.layer = layers[0]?.index ?? 0;
    this.layerSelect.append(...layers.map((l) => el("option", { value: l.index, text: describeLayer(l) })));
    this.layerSelect.addEventListener("change", () => {
      this.layer = Number(this.layerSelect.value);
      this.data = null;
      this.setSelection(new Set());
      this.clearAblation();
      this.refresh();
    });
    this.clearButton.addEventListener("click", () => this.setSelection(new Set()));
    this.ablateButton.addEventListener("click", () => void this.ablate());
    this.build();
    this.wirePlot();
    this.wireMatrix();
    state.on((changes) => {
      if (!(changes.has("config") || changes.has("input") || changes.has("target"))) return;
      this.stale = true;
      this.clearAblation();
      if (this.visible) this.refresh();
    });
  }

  private get visible(): boolean {
    return this.state.tab === "neurons";
  }

  show(): void {
    if (this.stale) this.refresh();
  }

  private build(): void {
    this.matrixFrame.append(this.canvas, this.selectedMarks, this.rowMark);
    this.panel.append(
      el(
        "section",
        { class: "card" },
        el("div", { class: "card-head" }, el("h2", { text: "Neuron ablation" }), el("label", { class: "layer-field" }, "Layer ", this.layerSelect), this.status),
        this.error,
      ),
      el(
        "div",
        { class: "neurons-grid" },
        el(
          "section",
          { class: "card", id: "neuron-scatter-card", "data-state": "idle" },
          el("div", { class: "card-head" }, el("h2", { text: "Channels" }), el("span", { class: "muted hint", text: "click selects · shift-click toggles · drag a box (shift adds)" })),
          this.plot,
          this.legend,
          this.hoverInfo,
        ),
        el(
          "section",
          { class: "card", id: "neuron-matrix-card" },
          el("div", { class: "card-head" }, el("h2", { text: "Relevance: channel × position" }), el("span", { id: "neuron-grid", class: "muted" })),
          el("div", { class: "matrix-wrap" }, this.rowLabels, this.matrixFrame),
          this.matrixLegend,
        ),
      ),
      el(
        "section",
        { class: "card", id: "neuron-selection" },
        el("div", { class: "card-head" }, el("h2", { text: "Selected channels" }), this.count, this.clearButton, this.ablateButton),
        this.maps,
      ),
      this.ablation,
    );
  }

  // ----------------------------------------------------------------------- requests
  private body() {
    const { state } = this;
    return {
      input: state.input,
      config: state.configJson,
      layer: this.layer,
      target: state.target,
      index: state.target === "predicted" ? null : state.index,
    };
  }

  private fail(error: unknown, card: HTMLElement): void {
    card.dataset.state = "error";
    this.error.textContent = (error as Error).message;
    this.error.hidden = false;
  }

  /** Ask for the layer's channels again (debounced; the answer of the latest ask wins). */
  private readonly refresh = debounce(() => void this.loadNeurons(), 120);

  private async loadNeurons(): Promise<void> {
    const ticket = ++this.asked.neurons;
    const card = this.panel.querySelector("#neuron-scatter-card") as HTMLElement;
    card.dataset.state = "loading";
    this.stale = false;
    try {
      const data = await this.neuronsOp.run(this.body());
      if (ticket !== this.asked.neurons) return;
      this.data = data;
      this.error.hidden = true;
      const kept = new Set([...this.selected].filter((c) => c < data.channels));
      this.drawScatter();
      this.drawMatrix();
      this.setSelection(kept, true);
      card.dataset.state = "ready";
    } catch (error) {
      if (isSuperseded(error) || ticket !== this.asked.neurons) return;
      this.stale = true;
      this.fail(error, card);
    }
  }

  private readonly refreshMaps = debounce(() => void this.loadMaps(), 80);

  private async loadMaps(): Promise<void> {
    const ticket = ++this.asked.maps;
    const channels = [...this.selected].sort((a, b) => a - b).slice(0, MAX_MAPS);
    if (!channels.length) {
      this.maps.replaceChildren(el("p", { class: "muted", text: "Select channels in the scatter or the matrix to see their maps." }));
      this.maps.dataset.state = "idle";
      delete this.maps.dataset.channels;
      return;
    }
    this.maps.dataset.state = "loading";
    try {
      const answer = await this.mapsOp.run({ ...this.body(), channels });
      if (ticket !== this.asked.maps) return;
      this.error.hidden = true;
      const more = this.selected.size - channels.length;
      this.maps.replaceChildren(
        ...answer.channels.map((channel, i) =>
          el(
            "figure",
            { class: "channel-map", "data-channel": channel },
            el("div", { class: "pair" }, mapImage(answer.relevance[i], `relevance of channel ${channel}`, "relevance"), mapImage(answer.activation[i], `activation of channel ${channel}`, "activation")),
            el("figcaption", { text: `ch ${channel}` }),
          ),
        ),
        ...(more > 0 ? [el("p", { class: "muted more", text: `+${more} more selected (maps of the first ${MAX_MAPS})` })] : []),
      );
      this.maps.dataset.channels = answer.channels.join(",");
      this.maps.dataset.state = "ready";
    } catch (error) {
      if (isSuperseded(error) || ticket !== this.asked.maps) return;
      this.fail(error, this.maps);
    }
  }

  private async ablate(): Promise<void> {
    const ticket = ++this.asked.ablate;
    const channels = [...this.selected].sort((a, b) => a - b);
    if (!channels.length) return;
    const { state } = this;
    this.ablation.hidden = false;
    this.ablation.dataset.state = "loading";
    try {
      const [intact, ablated] = await Promise.all([
        state.explain(state.configJson, this.explainOp),
        this.ablateOp.run({ ...this.body(), channels, k: 10 }),
      ]);
      if (ticket !== this.asked.ablate) return;
      this.error.hidden = true;
      this.showAblation(channels, intact, ablated);
    } catch (error) {
      if (isSuperseded(error) || ticket !== this.asked.ablate) return;
      this.fail(error, this.ablation);
    }
  }

  private clearAblation(): void {
    this.asked.ablate++;
    this.ablation.hidden = true;
    this.ablation.dataset.state = "idle";
    this.ablation.replaceChildren();
  }

  // ---------------------------------------------------------------------- selection
  private setSelection(next: Set<number>, force = false): void {
    const same = next.size === this.selected.size && [...next].every((c) => this.selected.has(c));
    this.selected = next;
    const n = next.size;
    this.count.textContent = `${n} channel${n === 1 ? "" : "s"} selected`;
    this.count.dataset.count = String(n);
    this.clearButton.disabled = n === 0;
    this.ablateButton.disabled = n === 0;
    this.ablateButton.textContent = n ? `Ablate ${n} channel${n === 1 ? "" : "s"}` : "Ablate";
    for (const dot of this.plot.querySelectorAll<SVGCircleElement>("circle.point")) {
      dot.classList.toggle("selected", next.has(Number(dot.dataset.channel)));
    }
    const rows = this.data?.channels ?? 1;
    this.selectedMarks.replaceChildren(
      ...[...next].sort((a, b) => a - b).map((c) => {
        const mark = el("div", { class: "row-mark selected", "data-channel": c });
        mark.style.top = `${(100 * c) / rows}%`;
        mark.style.height = `${100 / rows}%`;
        return mark;
      }),
    );
    if (!same || force) this.refreshMaps();
  }

  private setHover(channel: number | null): void {
    if (channel === this.hover) return;
    this.hover = channel;
    for (const dot of this.plot.querySelectorAll<SVGCircleElement>("circle.point")) dot.classList.toggle("hover", Number(dot.dataset.channel) === channel);
    // A ring drawn last, so the hovered point shows above overlapping ones (moving the point
    // itself would take the keyboard focus from it).
    this.plot.querySelector(".hover-ring")?.remove();
    const point = this.points.find((p) => p.channel === channel);
    if (point) this.plot.append(svg("circle", { class: "hover-ring", cx: point.x, cy: point.y, r: RADIUS + 3 }));
    const data = this.data;
    this.rowMark.hidden = channel === null || !data;
    if (channel === null || !data) {
      delete this.matrixFrame.dataset.hover;
      delete this.plot.dataset.hover;
      this.hoverInfo.textContent = "";
      return;
    }
    this.matrixFrame.dataset.hover = String(channel);
    this.plot.dataset.hover = String(channel);
    this.rowMark.style.top = `${(100 * channel) / data.channels}%`;
    this.rowMark.style.height = `${100 / data.channels}%`;
    this.hoverInfo.textContent = describeChannel(data, channel);
  }

  // ------------------------------------------------------------------------ scatter
  private scales(): { x: Scale; y: Scale } {
    const data = this.data!;
    return {
      x: linearScale([0, axisMax(data.positive)], [LEFT, WIDTH - RIGHT]),
      y: linearScale([0, axisMax(data.negative)], [HEIGHT - BOTTOM, TOP]),
    };
  }

  private drawScatter(): void {
    const data = this.data!;
    const { x, y } = this.scales();
    this.points = scatterPoints(data.positive, data.negative, x, y);
    const finite = data.activation.filter((v): v is number => v !== null);
    const [lo, hi] = finite.length ? [Math.min(...finite), Math.max(...finite)] : [0, 1];
    const colour = (v: number | null) => (v === null ? "#999" : css(sequential(hi > lo ? (v - lo) / (hi - lo) : 0.5)));
    const nodes: SVGElement[] = [];
    const text = (attrs: Record<string, string | number>, content: string) => {
      const node = svg("text", attrs);
      node.textContent = content;
      return node;
    };
    for (const t of x.ticks(5)) {
      nodes.push(svg("line", { x1: x(t), x2: x(t), y1: TOP, y2: HEIGHT - BOTTOM, class: "grid" }));
      nodes.push(text({ x: x(t), y: HEIGHT - BOTTOM + 13, class: "tick", "text-anchor": "middle" }, formatValue(t)));
    }
    for (const t of y.ticks(5)) {
      nodes.push(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y(t), y2: y(t), class: "grid" }));
      nodes.push(text({ x: LEFT - 4, y: y(t) + 3, class: "tick", "text-anchor": "end" }, formatValue(t)));
    }
    nodes.push(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: HEIGHT - BOTTOM, y2: HEIGHT - BOTTOM, class: "axis" }));
    nodes.push(svg("line", { x1: LEFT, x2: LEFT, y1: TOP, y2: HEIGHT - BOTTOM, class: "axis" }));
    nodes.push(text({ x: (LEFT + WIDTH - RIGHT) / 2, y: HEIGHT - 6, class: "label", "text-anchor": "middle" }, "positive relevance R⁺"));
    nodes.push(text({ x: 12, y: (TOP + HEIGHT - BOTTOM) / 2, class: "label", "text-anchor": "middle", transform: `rotate(-90 12 ${(TOP + HEIGHT - BOTTOM) / 2})` }, "negative relevance |R⁻|"));
    for (const p of this.points) {
      const c = p.channel;
      const dot = svg("circle", {
        cx: p.x,
        cy: p.y,
        r: RADIUS,
        class: "point",
        fill: colour(data.activation[c]),
        "data-channel": c,
        "data-positive": data.positive[c] ?? "NaN",
        "data-negative": data.negative[c] ?? "NaN",
        "data-activation": data.activation[c] ?? "NaN",
      });
      dot.setAttribute("tabindex", "0");
      dot.setAttribute("aria-label", describeChannel(data, c));
      dot.append(Object.assign(svg("title"), { textContent: describeChannel(data, c) }));
      // The keyboard: focus shows a channel like hovering, Enter or Space selects it
      // (with shift: toggles it).
      dot.addEventListener("focus", () => this.setHover(c));
      dot.addEventListener("blur", () => this.setHover(null));
      dot.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        this.setSelection(clickSelection(this.selected, c, event.shiftKey));
      });
      nodes.push(dot);
    }
    this.plot.replaceChildren(...nodes);
    this.hover = null;
    this.legend.replaceChildren(
      el("span", { class: "legend-title", text: "mean activation" }),
      el("span", { class: "legend-value", text: formatValue(lo) }),
      el("span", { class: "gradient", style: `background: linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) => css(sequential(t))).join(", ")})` }),
      el("span", { class: "legend-value", text: formatValue(hi) }),
    );
    const layer = this.state.layers[this.layer];
    this.status.textContent = `layer ${data.layer} (${layer?.type ?? "?"}): ${data.channels} channels, explaining class ${data.target}`;
  }

  private toPlot(event: PointerEvent): { x: number; y: number } {
    const box = this.plot.getBoundingClientRect();
    return { x: ((event.clientX - box.left) / box.width) * WIDTH, y: ((event.clientY - box.top) / box.height) * HEIGHT };
  }

  private wirePlot(): void {
    const plot = this.plot;
    plot.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !this.data) return;
      event.preventDefault();
      const at = this.toPlot(event);
      const node = svg("rect", { class: "brush", x: at.x, y: at.y, width: 0, height: 0 });
      plot.append(node);
      this.brush = { x0: at.x, y0: at.y, x1: at.x, y1: at.y, add: event.shiftKey, node };
      plot.setPointerCapture(event.pointerId);
    });
    plot.addEventListener("pointermove", (event) => {
      const at = this.toPlot(event);
      const brush = this.brush;
      if (brush) {
        brush.x1 = at.x;
        brush.y1 = at.y;
        brush.node.setAttribute("x", String(Math.min(brush.x0, at.x)));
        brush.node.setAttribute("y", String(Math.min(brush.y0, at.y)));
        brush.node.setAttribute("width", String(Math.abs(at.x - brush.x0)));
        brush.node.setAttribute("height", String(Math.abs(at.y - brush.y0)));
        return;
      }
      this.setHover(nearestPoint(this.points, at.x, at.y, RADIUS + 4));
    });
    const finish = (event: PointerEvent, cancelled: boolean) => {
      const brush = this.brush;
      if (!brush) return;
      this.brush = null;
      brush.node.remove();
      if (cancelled) return;
      if (Math.hypot(brush.x1 - brush.x0, brush.y1 - brush.y0) > 3) {
        this.setSelection(boxSelection(this.selected, pointsInBox(this.points, brush), brush.add));
      } else {
        const hit = nearestPoint(this.points, brush.x0, brush.y0, RADIUS + 4);
        if (hit !== null) this.setSelection(clickSelection(this.selected, hit, event.shiftKey));
        else if (!event.shiftKey) this.setSelection(new Set());
      }
    };
    plot.addEventListener("pointerup", (event) => finish(event, false));
    plot.addEventListener("pointercancel", (event) => finish(event, true));
    plot.addEventListener("pointerleave", () => {
      if (!this.brush) this.setHover(null);
    });
  }

  // ------------------------------------------------------------------------- matrix
  private drawMatrix(): void {
    const data = this.data!;
    const limit = symmetricLimit(data.matrix);
    const image = matrixPixels(data.matrix, limit);
    this.canvas.width = Math.max(1, image.width);
    this.canvas.height = Math.max(1, image.height);
    if (image.width && image.height) this.canvas.getContext("2d")!.putImageData(new ImageData(image.data, image.width, image.height), 0, 0);
    // 18 px a row for a few channels; many share 320 to 480 px (rows thinner than a pixel
    // are drawn by the browser's scaling of the canvas).
    const rows = Math.max(1, data.channels);
    const height = rows <= 18 ? 18 * rows : Math.min(480, Math.max(320, rows));
    const rowPx = height / rows;
    this.matrixFrame.style.height = `${height}px`;
    this.matrixFrame.dataset.rows = String(data.channels);
    this.rowLabels.style.height = this.matrixFrame.style.height;
    this.rowLabels.replaceChildren(
      ...(rowPx >= 9
        ? Array.from({ length: data.channels }, (_, c) => {
            const label = el("span", { text: c });
            label.style.top = `${rowPx * c}px`;
            label.style.height = label.style.lineHeight = `${rowPx}px`;
            return label;
          })
        : []),
    );
    this.matrixFrame.dataset.limit = String(limit);
    (this.panel.querySelector("#neuron-grid") as HTMLElement).textContent =
      `rows: ${data.channels} channels · columns: ${image.width} positions (grid ${data.grid.join("×")}${image.width < data.grid.reduce((a, b) => a * b, 1) ? ", pooled" : ""})`;
    this.matrixLegend.replaceChildren(
      el("span", { class: "legend-title", text: "relevance" }),
      el("span", { class: "legend-value", text: formatValue(-limit) }),
      el("span", { class: "gradient bwr" }),
      el("span", { class: "legend-value", text: formatValue(limit) }),
    );
  }

  private wireMatrix(): void {
    const row = (event: MouseEvent) => {
      const box = this.matrixFrame.getBoundingClientRect();
      return this.data ? rowAt(event.clientY - box.top, box.height, this.data.channels) : null;
    };
    this.matrixFrame.addEventListener("pointermove", (event) => this.setHover(row(event)));
    this.matrixFrame.addEventListener("pointerleave", () => this.setHover(null));
    this.matrixFrame.addEventListener("click", (event) => {
      const channel = row(event);
      if (channel !== null) this.setSelection(clickSelection(this.selected, channel, event.shiftKey));
    });
  }

  // ----------------------------------------------------------------------- ablation
  private showAblation(channels: number[], intact: Explanation, ablated: Ablation): void {
    const before = intact.score;
    const after = ablated.score;
    const delta = before === null || after === null ? null : after - before;
    const shown = channels.length > 12 ? `${channels.slice(0, 12).join(", ")}, … (${channels.length})` : channels.join(", ");
    const summary = el("p", {
      id: "ablation-summary",
      "data-before": before ?? "NaN",
      "data-after": after ?? "NaN",
      "data-delta": delta ?? "NaN",
      "data-channels": channels.join(","),
      text:
        `Without channel${channels.length === 1 ? "" : "s"} ${shown} of layer ${this.data?.layer ?? this.layer}: ` +
        `score of ${ablated.target_name} (class ${ablated.target}) ${fmt(before)} → ${fmt(after)}` +
        (delta === null ? "" : ` (Δ ${delta >= 0 ? "+" : ""}${formatValue(delta)})`),
    });
    const top = Math.max(...ablated.predictions.map((p) => p.probability ?? 0), 1e-12);
    const rows = ablated.predictions.map((p) => {
      const fill = el("span", { class: "fill" });
      fill.style.width = `${(100 * (p.probability ?? 0)) / top}%`;
      const explained = p.index === ablated.target;
      return el(
        "li",
        { "data-class": p.index, "data-score": p.score ?? "NaN", class: explained ? "explained" : null },
        el("span", { class: "class-name", text: p.name, title: `class ${p.index}` }),
        el("span", { class: "track" }, fill),
        el("span", { class: "value", text: `${fmt(p.score)} · ${p.probability === null ? "–" : `${(100 * p.probability).toFixed(1)}%`}` }),
        explained && delta !== null ? el("span", { class: "delta", text: `Δ ${delta >= 0 ? "+" : ""}${formatValue(delta)}` }) : null,
      );
    });
    const figure = (which: string, title: string, uri: string | null) =>
      el(
        "figure",
        { class: "heatmap", "data-which": which },
        el("div", { class: "frame" }, uri ? el("img", { src: uri, alt: `relevance: ${title}` }) : el("div", { class: "no-map", text: "no picture (not spatial, or not finite)" })),
        el("figcaption", { text: title }),
      );
    this.ablation.replaceChildren(
      el("div", { class: "card-head" }, el("h2", { text: "Ablation" })),
      summary,
      el(
        "div",
        { class: "ablation-grid" },
        el("div", { class: "ablation-heatmaps" }, figure("intact", "intact model", intact.heatmap), figure("ablated", `without ${channels.length} channel${channels.length === 1 ? "" : "s"}`, ablated.heatmap)),
        el("div", {}, el("h3", { text: "New top classes" }), el("ol", { id: "ablation-predictions", "aria-label": "Top classes after ablation" }, ...rows)),
      ),
      ...(ablated.warnings.length ? [el("ul", { class: "warnings" }, ...ablated.warnings.map((w) => el("li", { text: w })))] : []),
    );
    this.ablation.dataset.state = "ready";
  }
}

const fmt = (value: number | null) => (value === null ? "NaN" : formatValue(value));

function mapImage(uri: string | null, alt: string, kind: string): HTMLElement {
  return uri ? el("img", { src: uri, alt, class: kind, title: alt }) : el("div", { class: `no-map ${kind}`, text: "–" });
}

function describeChannel(data: NeuronData, c: number): string {
  return `channel ${c}: R⁺ ${fmt(data.positive[c])} · R⁻ ${fmt(data.negative[c])} · mean activation ${fmt(data.activation[c])}`;
}

/** The tab, for `registerTab`. */
export const neuronsTab: Tab = (() => {
  let tab: NeuronsTab | null = null;
  return {
    id: "neurons",
    title: "Neuron ablation",
    mount(panel: HTMLElement, state: DesignerState) {
      tab = new NeuronsTab(panel, state);
    },
    show() {
      tab?.show();
    },
  };
})();
