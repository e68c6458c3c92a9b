/**
 * The Pixel flipping tab (issue 16 item 7): the input and the active configuration's
 * heatmap side by side, pixelated and zoomable (the zoom slider or the wheel); dragging on
 * either paints a brush stroke (a polyline in input (row, column) pixels with the radius
 * of the size slider), shown on both; several strokes, undo and clear; the fill; "Flip"
 * predicts the flipped input and adds a row (the flipped image, the new top-10, the change
 * of the target class's score), rows stay for comparison. "Compute curves" draws the most-
 * and least-relevant-first curves of the chosen configurations with their AUC and AOPC.
 *
 * Its requests run under a session id of their own (this page's id + "-flip"), so that
 * they never supersede the Design tab's explain and predict requests on the server.
 */

import "./flipping.css";
import { isSuperseded, type Operation, SESSION, type Explanation, type Prediction } from "./api";
import { el, svg } from "./dom";
import {
  canvasToInput,
  clampPoint,
  countCovered,
  curvePath,
  eventToCanvas,
  extendStroke,
  fitZoom,
  inputToCanvas,
  MAX_STROKES,
  scoreOf,
  strokeMask,
  targetClass,
  valueRange,
  type Stroke,
} from "./flipgeom";
import { formatValue } from "./formula";
import { toJson } from "./segments";
import type { DesignerState } from "./state";
import type { InputRef } from "./urlstate";

/** The stroke colour on the canvases (opaque: the browser tests read it back). */
export const PATH_COLOUR: [number, number, number] = [0, 230, 90];
const COVER_COLOUR = "rgba(255, 0, 255, 0.35)";
const FLIP_SESSION = `${SESSION}-flip`;
/** Every class's score (for the target's change; the rows show the first ten). */
const ALL = 1000;

interface FlipBody {
  strokes: Stroke[];
  fill: number | "mean" | "blur" | "noise";
  sigma?: number;
}
interface Curve {
  name: string;
  fractions: number[];
  most: (number | null)[] | null;
  least: (number | null)[] | null;
  auc: (number | null)[];
  aopc: (number | null)[];
}

const loadImage = (src: string) =>
  new Promise<HTMLImageElement>((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`could not load ${src.slice(0, 60)}`));
    image.src = src;
  });

const inputName = (input: InputRef) => ("sample" in input ? `sample ${input.sample}` : `upload ${input.upload.slice(0, 8)}…`);
const signed = (value: number) => (value > 0 ? "+" : value < 0 ? "−" : "±") + formatValue(Math.abs(value));

export class FlippingTab {
  readonly id = "flipping";
  readonly title = "Pixel flipping";
  private state!: DesignerState;
  private panel!: HTMLElement;
  private strokes: Stroke[] = [];
  private drawing: Stroke | null = null;
  private hover: [number, number] | null = null;
  private zoom = 1;
  private size: [number, number] = [1, 1];
  private image: HTMLImageElement | null = null;
  private heatmap: HTMLImageElement | null = null;
  private explainOp!: Operation<Explanation>;
  private beforeOp!: Operation<{ predictions: Prediction[] }>;
  private flipOp!: Operation<{ predictions: Prediction[]; image?: string }>;
  private flipExplainOp!: Operation<Explanation>;
  private curvesOp!: Operation<Curve[]>;
  private rowCount = 0;
  private stale = true;
  private visible = false;
  private chosen = new Set<string>();
  private q = <T extends Element>(selector: string) => this.panel.querySelector(selector) as T;

  mount(panel: HTMLElement, state: DesignerState): void {
    this.state = state;
    this.panel = panel;
    // This tab's own session id: its requests never supersede the Design tab's.
    const operation = <T>(path: string, channel = "") => state.api.operation<T>(path, FLIP_SESSION + channel);
    this.explainOp = operation("explain");
    this.beforeOp = operation("predict");
    this.flipOp = operation("predict");
    // Its own channel: the heatmap of a flipped input never cancels the canvas's explain.
    this.flipExplainOp = operation("explain", "-row");
    this.curvesOp = operation("curves");
    // Until the image loads (its own size then counts): the model input's, if it is an image.
    const shape = state.info.input_shape;
    const [height, width] = shape && shape.length >= 3 ? shape.slice(-2) : [28, 28];
    this.size = [height, width];
    this.zoom = fitZoom(height, width);
    const maxRadius = Math.max(1, Math.ceil(Math.max(height, width) / 4));
    panel.append(
      el(
        "div",
        { class: "card flip-brush" },
        el("div", { class: "card-head" }, el("h2", { text: "Pixel flipping" }), el("span", { class: "muted", id: "flip-caption" })),
        el(
          "div",
          { class: "flip-tools" },
          el("label", {}, "Brush radius ", el("input", { id: "flip-radius", type: "range", min: 0.5, max: maxRadius, step: 0.5, value: Math.min(maxRadius, Math.max(1, Math.round(Math.max(height, width) / 16))) }), el("output", { id: "flip-radius-value" })),
          el("label", {}, "Zoom ", el("input", { id: "flip-zoom", type: "range", min: 1, max: 64, step: 1, value: this.zoom }), el("output", { id: "flip-zoom-value" })),
          el(
            "label",
            {},
            "Fill ",
            el("select", { id: "flip-fill" }, ...["mean", "blur", "noise", "value"].map((f) => el("option", { value: f, text: f }))),
          ),
          el("label", { id: "flip-value-field", hidden: true }, "value ", el("input", { id: "flip-value", type: "number", step: "any", value: 0 })),
          el("label", { id: "flip-sigma-field", hidden: true }, "σ ", el("input", { id: "flip-sigma", type: "number", min: 0.1, max: 64, step: 0.5, value: 3 })),
          el("button", { type: "button", id: "flip-undo", title: "Remove the last stroke" }, "Undo"),
          el("button", { type: "button", id: "flip-clear", title: "Remove every stroke" }, "Clear"),
          el("button", { type: "button", id: "flip-run", class: "primary", title: "Predict the input with the brushed pixels flipped" }, "Flip"),
          el("span", { id: "flip-status", class: "muted" }),
        ),
        el("p", { class: "muted" }, "Drag on the image or on the heatmap to brush pixels; the wheel zooms."),
        el(
          "div",
          { class: "flip-canvases" },
          el("figure", {}, el("div", { class: "flip-frame" }, el("canvas", { id: "flip-image", "aria-label": "the input: drag to brush" })), el("figcaption", { text: "input" })),
          el("figure", {}, el("div", { class: "flip-frame" }, el("canvas", { id: "flip-heatmap", "aria-label": "the heatmap: drag to brush" })), el("figcaption", { id: "flip-heatmap-caption", text: "heatmap" })),
        ),
      ),
      el("div", { class: "card" }, el("div", { class: "card-head" }, el("h2", { text: "Flipped inputs" }), el("span", { class: "muted", text: "newest first; each row against the unflipped prediction" })), el("ol", { id: "flip-rows", "aria-label": "Flipped inputs" })),
      el(
        "div",
        { class: "card" },
        el("h2", { text: "Most- and least-relevant-first curves" }),
        el(
          "div",
          { class: "flip-tools" },
          el("fieldset", { id: "curve-configs", class: "curve-configs" }, el("legend", { text: "Configurations" })),
          el("label", {}, "Steps ", el("input", { id: "curve-steps", type: "number", min: 1, max: 256, step: 1, value: 16 })),
          el("label", {}, "Patch ", el("input", { id: "curve-patch", type: "number", min: 1, max: 64, step: 1, value: 1 })),
          el("label", {}, "Fill ", el("select", { id: "curve-fill" }, ...["zeros", "mean", "uniform", "normal"].map((f) => el("option", { value: f, text: f })))),
          el("button", { type: "button", id: "curve-run", class: "primary" }, "Compute curves"),
          el("span", { id: "curve-status", class: "muted" }),
        ),
        el("div", { id: "curves", class: "curves" }),
        el("table", { id: "curve-table", class: "curve-table", hidden: true }),
      ),
    );

    const radius = this.q<HTMLInputElement>("#flip-radius");
    const zoom = this.q<HTMLInputElement>("#flip-zoom");
    const fill = this.q<HTMLSelectElement>("#flip-fill");
    radius.addEventListener("input", () => this.drawAll());
    zoom.addEventListener("input", () => this.setZoom(Number(zoom.value)));
    fill.addEventListener("change", () => {
      this.q<HTMLElement>("#flip-value-field").hidden = fill.value !== "value";
      this.q<HTMLElement>("#flip-sigma-field").hidden = fill.value !== "blur";
    });
    this.q("#flip-undo").addEventListener("click", () => {
      this.strokes.pop();
      this.drawAll();
    });
    this.q("#flip-clear").addEventListener("click", () => {
      this.strokes = [];
      this.drawAll();
    });
    this.q("#flip-run").addEventListener("click", () => void this.flip());
    this.q("#curve-run").addEventListener("click", () => void this.curves());
    for (const canvas of this.canvases()) this.brush(canvas);

    state.on((changes) => {
      if (changes.has("configs")) this.listConfigs();
      if (changes.has("config") || changes.has("input") || changes.has("target")) {
        this.stale = true;
        if (this.visible || state.tab === this.id) void this.load();
      }
      if (changes.has("tab")) this.visible = state.tab === this.id;
    });
    this.listConfigs();
    this.drawAll();
  }

  show(): void {
    this.visible = true;
    if (this.stale) void this.load();
  }

  private canvases(): HTMLCanvasElement[] {
    return [this.q<HTMLCanvasElement>("#flip-image"), this.q<HTMLCanvasElement>("#flip-heatmap")];
  }

  private radius(): number {
    return Number(this.q<HTMLInputElement>("#flip-radius").value);
  }

  private setZoom(value: number): void {
    this.zoom = Math.max(1, Math.min(64, Math.round(value)));
    this.q<HTMLInputElement>("#flip-zoom").value = String(this.zoom);
    this.drawAll();
  }

  /** The input image and the active configuration's heatmap (the explain is cached). */
  private async load(): Promise<void> {
    const { state } = this;
    this.stale = false;
    const input = state.input;
    const caption = this.q<HTMLElement>("#flip-heatmap-caption");
    const frame = this.q<HTMLElement>(".flip-brush");
    frame.dataset.state = "loading";
    try {
      const [image, explanation] = await Promise.all([loadImage(state.api.imageUrl(input)), state.explain(undefined, this.explainOp)]);
      if (state.input !== input) return;
      this.image = image;
      this.size = [image.naturalHeight, image.naturalWidth];
      this.heatmap = explanation.heatmap ? await loadImage(explanation.heatmap) : null;
      caption.textContent = `heatmap of ${state.config.name}: ${explanation.target_name} (class ${explanation.target})`;
      this.q<HTMLElement>("#flip-caption").textContent = `${inputName(input)}, ${this.size[0]} × ${this.size[1]} pixels`;
      frame.dataset.state = "ready";
      this.drawAll();
    } catch (error) {
      if (isSuperseded(error)) return;
      frame.dataset.state = "error";
      caption.textContent = `heatmap: ${(error as Error).message}`;
      this.drawAll();
    }
  }

  /** Painting on `canvas`: a drag adds a stroke; the wheel zooms; hovering shows the brush. */
  private brush(canvas: HTMLCanvasElement): void {
    const at = (event: PointerEvent | WheelEvent) => {
      const [x, y] = eventToCanvas(event.clientX, event.clientY, canvas.getBoundingClientRect(), canvas);
      return clampPoint(canvasToInput(x, y, this.zoom), ...this.size);
    };
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      if (this.strokes.length >= MAX_STROKES) {
        this.q<HTMLElement>("#flip-status").textContent = `at most ${MAX_STROKES} strokes`;
        return;
      }
      canvas.setPointerCapture(event.pointerId);
      this.drawing = { points: [at(event)], radius: this.radius() };
      this.strokes.push(this.drawing);
      this.drawAll();
    });
    canvas.addEventListener("pointermove", (event) => {
      const point = at(event);
      this.hover = point;
      if (this.drawing) extendStroke(this.drawing, point);
      this.drawAll();
    });
    const end = () => {
      this.drawing = null;
      this.drawAll();
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("pointerleave", () => {
      this.hover = null;
      this.drawAll();
    });
    canvas.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        this.setZoom(this.zoom + (event.deltaY < 0 ? 1 : -1) * Math.max(1, Math.round(this.zoom / 8)));
      },
      { passive: false },
    );
  }

  private drawAll(): void {
    const [height, width] = this.size;
    const mask = strokeMask(this.strokes, height, width);
    const [imageCanvas, heatmapCanvas] = this.canvases();
    this.draw(imageCanvas, this.image, mask);
    this.draw(heatmapCanvas, this.heatmap, mask);
    const covered = countCovered(mask);
    const status = this.q<HTMLElement>("#flip-status");
    if (!this.drawing) status.textContent = `${this.strokes.length} stroke${this.strokes.length === 1 ? "" : "s"}, ${covered} pixel${covered === 1 ? "" : "s"}`;
    status.dataset.strokes = String(this.strokes.length);
    status.dataset.covered = String(covered);
    this.q<HTMLOutputElement>("#flip-radius-value").value = `${this.radius()} px`;
    this.q<HTMLOutputElement>("#flip-zoom-value").value = `${this.zoom}×`;
    this.q<HTMLButtonElement>("#flip-run").disabled = this.strokes.length === 0;
    this.q<HTMLButtonElement>("#flip-undo").disabled = this.strokes.length === 0;
    this.q<HTMLButtonElement>("#flip-clear").disabled = this.strokes.length === 0;
  }

  /** `base` pixelated at the zoom, the covered pixels tinted, the strokes' paths on top. */
  private draw(canvas: HTMLCanvasElement, base: HTMLImageElement | null, mask: Uint8Array): void {
    const [height, width] = this.size;
    const z = this.zoom;
    if (canvas.width !== width * z || canvas.height !== height * z) {
      canvas.width = width * z;
      canvas.height = height * z;
    }
    canvas.dataset.zoom = String(z);
    const context = canvas.getContext("2d");
    if (!context) return;
    context.imageSmoothingEnabled = false;
    context.fillStyle = "#e6e8eb";
    context.fillRect(0, 0, canvas.width, canvas.height);
    if (base) context.drawImage(base, 0, 0, canvas.width, canvas.height);
    context.fillStyle = COVER_COLOUR;
    for (let row = 0; row < height; row++) for (let col = 0; col < width; col++) if (mask[row * width + col]) context.fillRect(col * z, row * z, z, z);
    context.strokeStyle = `rgb(${PATH_COLOUR.join(",")})`;
    context.fillStyle = context.strokeStyle;
    context.lineWidth = Math.max(2, Math.min(4, z / 4));
    context.lineCap = "round";
    context.lineJoin = "round";
    for (const stroke of this.strokes) {
      const [x0, y0] = inputToCanvas(stroke.points[0], z);
      context.beginPath();
      if (stroke.points.length === 1) {
        context.arc(x0, y0, context.lineWidth, 0, 2 * Math.PI);
        context.fill();
        continue;
      }
      context.moveTo(x0, y0);
      for (const point of stroke.points.slice(1)) context.lineTo(...inputToCanvas(point, z));
      context.stroke();
    }
    if (this.hover && !this.drawing) {
      const [x, y] = inputToCanvas(this.hover, z);
      context.strokeStyle = "rgba(20, 30, 40, 0.8)";
      context.lineWidth = 1;
      context.beginPath();
      context.arc(x, y, this.radius() * z, 0, 2 * Math.PI);
      context.stroke();
    }
  }

  private flipBody(): FlipBody {
    const kind = this.q<HTMLSelectElement>("#flip-fill").value;
    const strokes = this.strokes.map((s) => ({ points: s.points.map((p) => [p[0], p[1]] as [number, number]), radius: s.radius }));
    if (kind === "value") {
      const value = Number(this.q<HTMLInputElement>("#flip-value").value);
      return { strokes, fill: Number.isFinite(value) ? value : 0 };
    }
    if (kind === "blur") {
      const sigma = Number(this.q<HTMLInputElement>("#flip-sigma").value);
      return { strokes, fill: "blur", sigma: Number.isFinite(sigma) && sigma > 0 ? Math.min(64, sigma) : 3 };
    }
    return { strokes, fill: kind as "mean" | "noise" };
  }

  /** Predict the input unflipped and flipped; a new row on top of the list. */
  private async flip(): Promise<void> {
    if (!this.strokes.length) return;
    const { state } = this;
    const input = state.input;
    const flip = this.flipBody();
    const target = state.target;
    const index = state.index;
    const status = this.q<HTMLElement>("#flip-status");
    const rows = this.q<HTMLElement>("#flip-rows");
    rows.dataset.state = "loading";
    try {
      const before = await this.beforeOp.run({ input, k: ALL });
      const after = await this.flipOp.run({ input: { ...input, flip }, k: ALL });
      const chosen = targetClass(target, index, before.predictions);
      // The explanation of the flipped input, for the class explained before the flip.
      const explained = await this.flipExplainOp.run({
        input: { ...input, flip },
        config: state.configJson,
        target: chosen === null ? "predicted" : "class",
        index: chosen,
      });
      this.addRow(input, flip, chosen, before.predictions, after, explained.heatmap);
      rows.dataset.state = "ready";
    } catch (error) {
      if (isSuperseded(error)) return;
      rows.dataset.state = "error";
      status.textContent = `flip: ${(error as Error).message}`;
    }
  }

  private addRow(
    input: InputRef,
    flip: FlipBody,
    target: number | null,
    before: Prediction[],
    after: { predictions: Prediction[]; image?: string },
    heatmap: string | null,
  ): void {
    const number = ++this.rowCount;
    const was = scoreOf(before, target);
    const now = scoreOf(after.predictions, target);
    const name = before.find((p) => p.index === target)?.name ?? String(target);
    const pixels = countCovered(strokeMask(flip.strokes, ...this.size));
    const radii = [...new Set(flip.strokes.map((s) => s.radius))].join(", ");
    const fillText = typeof flip.fill === "number" ? `value ${flip.fill}` : flip.fill === "blur" ? `blur σ ${flip.sigma}` : flip.fill;
    const top = after.predictions.slice(0, 10);
    const change =
      was === null || now === null
        ? `${name}: not among the scores`
        : `${name} (class ${target}): ${formatValue(was)} → ${formatValue(now)} (${signed(now - was)})`;
    const remove = el("button", { type: "button", class: "flip-remove", title: "Remove this row", "aria-label": `remove row ${number}` }, "×");
    const row = el(
      "li",
      {
        class: "flip-row",
        "data-row": number,
        "data-target": target ?? "",
        "data-before": was ?? "",
        "data-after": now ?? "",
        "data-fill": JSON.stringify(flip.fill),
        "data-flip": JSON.stringify(flip),
      },
      el(
        "div",
        { class: "flip-row-head" },
        el("strong", { text: `#${number}` }),
        el("span", { text: `${inputName(input)} · ${flip.strokes.length} stroke${flip.strokes.length === 1 ? "" : "s"} (radius ${radii}) · ${pixels} pixels · fill ${fillText}` }),
        remove,
      ),
      el(
        "div",
        { class: "flip-row-body" },
        after.image ? el("img", { class: "flip-result", src: after.image, alt: `flipped input ${number}` }) : null,
        heatmap ? el("img", { class: "flip-after-heatmap", src: heatmap, alt: `heatmap of flipped input ${number}`, title: "the explanation of the flipped input" }) : null,
        el(
          "div",
          { class: "flip-row-text" },
          el("div", { class: `flip-change ${now !== null && was !== null && now < was ? "down" : "up"}`, text: change }),
          el(
            "ol",
            { class: "flip-top", "aria-label": `top classes of row ${number}` },
            ...top.map((p) => {
              const bar = el("span", { class: "fill" });
              bar.style.width = `${100 * (p.probability ?? 0)}%`;
              return el(
                "li",
                { "data-class": p.index, "data-score": p.score ?? "", "aria-current": p.index === target ? "true" : null },
                el("span", { class: "class-name", text: p.name, title: p.name }),
                el("span", { class: "track" }, bar),
                el("span", { class: "value", text: `${p.probability === null ? "–" : (100 * p.probability).toFixed(1) + "%"} · ${p.score === null ? "–" : formatValue(p.score)}` }),
              );
            }),
          ),
        ),
      ),
    );
    remove.addEventListener("click", () => row.remove());
    this.q<HTMLElement>("#flip-rows").prepend(row);
  }

  /** The configurations to draw curves for, as checkboxes (the active one chosen at first). */
  private listConfigs(): void {
    const box = this.q<HTMLElement>("#curve-configs");
    const names = this.state.configs.map((e) => e.config.name);
    if (!this.chosen.size && names.length) this.chosen.add(this.state.config.name);
    for (const name of [...this.chosen]) if (!names.includes(name)) this.chosen.delete(name);
    box.replaceChildren(
      el("legend", { text: "Configurations" }),
      ...names.map((name) => {
        const check = el("input", { type: "checkbox", value: name, checked: this.chosen.has(name) });
        check.addEventListener("change", () => {
          if (check.checked) this.chosen.add(name);
          else this.chosen.delete(name);
        });
        return el("label", { "data-name": name }, check, ` ${name}`);
      }),
    );
  }

  private async curves(): Promise<void> {
    const { state } = this;
    const status = this.q<HTMLElement>("#curve-status");
    const entries = state.configs.filter((e) => this.chosen.has(e.config.name)).slice(0, 16);
    if (!entries.length) {
      status.textContent = "choose a configuration";
      return;
    }
    const steps = Math.max(1, Math.min(256, Math.round(Number(this.q<HTMLInputElement>("#curve-steps").value) || 16)));
    const patch = Math.max(1, Math.min(64, Math.round(Number(this.q<HTMLInputElement>("#curve-patch").value) || 1)));
    const fill = this.q<HTMLSelectElement>("#curve-fill").value;
    const box = this.q<HTMLElement>("#curves");
    box.dataset.state = "loading";
    status.textContent = "computing…";
    try {
      const answer = await this.curvesOp.run({
        input: state.input,
        configs: entries.map((e) => toJson(e.config)),
        index: state.target === "predicted" ? null : state.index,
        steps,
        patch,
        fill,
      });
      this.showCurves(answer);
      status.textContent = `${steps} steps of ${patch} × ${patch} patches, fill ${fill}; ${inputName(state.input)}`;
      box.dataset.state = "ready";
    } catch (error) {
      if (isSuperseded(error)) return;
      box.dataset.state = "error";
      status.textContent = `curves: ${(error as Error).message}`;
    }
  }

  private showCurves(curves: Curve[]): void {
    const [low, high] = valueRange(curves.flatMap((c) => [c.most ?? [], c.least ?? []]));
    const W = 260;
    const H = 170;
    const plot = { x: 50, y: 8, width: W - 60, height: H - 34 };
    this.q<HTMLElement>("#curves").replaceChildren(
      ...curves.map((c) => {
        const chart = svg("svg", { class: "curve-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": `curves of ${c.name}` });
        chart.append(
          svg("rect", { class: "frame", x: plot.x, y: plot.y, width: plot.width, height: plot.height }),
          label(plot.x - 4, plot.y + 8, formatValue(high), "end"),
          label(plot.x - 4, plot.y + plot.height, formatValue(low), "end"),
          label(plot.x, H - 12, "0", "middle"),
          label(plot.x + plot.width, H - 12, "1", "middle"),
          label(plot.x + plot.width / 2, H - 2, "fraction flipped", "middle"),
        );
        for (const order of ["most", "least"] as const) {
          const scores = c[order];
          if (scores) chart.append(svg("path", { class: `curve ${order}`, "data-order": order, d: curvePath(c.fractions, scores, plot, low, high) }));
        }
        return el("figure", { class: "curve-figure", "data-name": c.name }, chart, el("figcaption", { text: c.name }));
      }),
    );
    const cell = (value: number | null) => el("td", { "data-value": value ?? "", text: value === null ? "–" : formatValue(value) });
    const table = this.q<HTMLTableElement>("#curve-table");
    table.replaceChildren(
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { text: "configuration" }),
          el("th", {}, el("span", { class: "swatch most" }), " AUC most first (small: good)"),
          el("th", {}, el("span", { class: "swatch least" }), " AUC least first (large: good)"),
          el("th", { text: "AOPC most" }),
          el("th", { text: "AOPC least" }),
        ),
      ),
      el("tbody", {}, ...curves.map((c) => el("tr", { "data-name": c.name }, el("th", { text: c.name }), cell(c.auc[0]), cell(c.auc[1]), cell(c.aopc[0]), cell(c.aopc[1])))),
    );
    table.hidden = false;
  }
}

function label(x: number, y: number, text: string, anchor: string): SVGTextElement {
  const node = svg("text", { x, y, "text-anchor": anchor, class: "tick" });
  node.textContent = text;
  return node;
}
