/**
 * The Compare tab (issue 16 item 6): several configurations (rows, checked from the page's
 * configurations, unsaved ones included: they go to the server inline as JSON) x several
 * columns (an input and its target: the current one, a sample, classes of the current
 * input) as a grid of heatmaps drawn on one colour scale, with one colour bar for the whole
 * grid, the inputs above their columns and each cell's warnings. A change asks again
 * (debounced); an older request is cancelled (latest-only).
 */

import "./compare.css";
import { isSuperseded, type Operation, type Prediction } from "./api";
import { bodyKey, debounce } from "./cache";
import {
  addColumns,
  chosenRows,
  classColumns,
  column,
  columnTitle,
  compareBody,
  fits,
  inputTitle,
  removeColumn,
  targetTitle,
  topClasses,
  type CompareAnswer,
  type GridColumn,
} from "./comparegrid";
import { el } from "./dom";
import { formatValue } from "./formula";
import type { Tab } from "./main";
import { ruleColour, ruleKey, ruleLabel, type RuleCatalog } from "./rules";
import { toJson, type Config } from "./segments";
import type { DesignerState } from "./state";

/** A configuration's segments as a coloured bar (as the model manager draws it). */
function segmentBar(config: Config, catalog: RuleCatalog): HTMLElement {
  return el(
    "div",
    { class: "bar", "aria-hidden": "true" },
    ...config.segments.map((s) => {
      const key = ruleKey(s, catalog);
      const part = el("span", { class: "part", "data-rule": key, title: `${s.start}–${s.stop - 1}: ${ruleLabel(key)}`, text: ruleLabel(key) });
      part.style.flexGrow = String(s.stop - s.start);
      part.style.background = ruleColour(key);
      return part;
    }),
  );
}

export class CompareTab {
  private state!: DesignerState;
  private operation!: Operation<CompareAnswer>;
  private predictOperation!: Operation<{ predictions: Prediction[] }>;
  /** Chosen rows by configuration name; until a box is touched, the active one. */
  private selected = new Set<string>();
  private touched = false;
  columns: GridColumn[] = [];
  private shown: string | null = null; // the body whose answer the grid shows
  private asked = 0;
  private renders = 0;
  private classes: Prediction[] = [];

  private rowsBox!: HTMLElement;
  private current!: HTMLButtonElement;
  private sampleField!: HTMLInputElement;
  private classSelect!: HTMLSelectElement;
  private note!: HTMLElement;
  private result!: HTMLElement;
  private status!: HTMLElement;
  private colourbar!: HTMLElement;
  private grid!: HTMLTableElement;
  private readonly refreshSoon = debounce(() => void this.refresh(), 150);

  mount(panel: HTMLElement, state: DesignerState): void {
    this.state = state;
    this.operation = state.api.operation<CompareAnswer>("compare");
    this.predictOperation = state.api.operation<{ predictions: Prediction[] }>("predict");
    const button = (id: string, text: string, title: string) => el("button", { type: "button", id, text, title });
    this.rowsBox = el("div", { id: "compare-rows", class: "compare-rows", role: "group", "aria-label": "Rows: configurations" });
    this.current = button("compare-add-current", "Add the current input", "A column: the input and target of the sample panel");
    this.sampleField = el("input", { id: "compare-sample", type: "number", min: 0, max: Math.max(0, state.info.samples - 1), step: 1, value: 0 });
    this.sampleField.disabled = state.info.samples === 0;
    const addSample = button("compare-add-sample", "Add sample", "A column: this sample, its predicted class");
    const addTop = button("compare-add-top", "Add top-3 classes", "Three columns: the current input's three best classes");
    this.classSelect = el("select", { id: "compare-class", "aria-label": "A class of the current input" });
    const addClass = button("compare-add-class", "Add class", "A column: the current input, this class");
    this.note = el("span", { id: "compare-note", class: "muted", role: "status" });
    this.status = el("span", { id: "compare-status", class: "muted" });
    this.colourbar = el(
      "div",
      { id: "compare-colourbar", class: "colourbar", hidden: true },
      el("span", { class: "lo" }),
      el("span", { class: "ramp", title: "bwr: negative relevance blue, positive red; one scale for every cell" }),
      el("span", { class: "hi" }),
      el("span", { class: "scale-text" }),
    );
    this.grid = el("table", { id: "compare-grid", class: "compare-grid" });
    this.result = el(
      "section",
      { id: "compare-result", class: "card", "data-state": "empty", "data-renders": 0 },
      el("div", { class: "card-head" }, el("h2", { text: "Grid" }), this.status),
      this.colourbar,
      el("div", { class: "grid-scroll" }, this.grid),
    );
    panel.append(
      el(
        "section",
        { class: "card compare-controls" },
        el("div", { class: "card-head" }, el("h2", { text: "Compare" }), el("span", { class: "muted", text: "configurations × samples or classes, one colour scale" })),
        el("h3", { text: "Rows: configurations" }),
        this.rowsBox,
        el("h3", { text: "Columns" }),
        el(
          "div",
          { class: "compare-add" },
          this.current,
          el("label", {}, "Sample ", this.sampleField),
          addSample,
          addTop,
          this.classSelect,
          addClass,
        ),
        this.note,
      ),
      this.result,
    );
    this.current.addEventListener("click", () => this.add([column(state.input, state.target, state.index)]));
    addSample.addEventListener("click", () => {
      const count = state.info.samples;
      const value = Math.round(Number(this.sampleField.value));
      const bounded = Number.isFinite(value) ? Math.max(0, Math.min(count - 1, value)) : 0;
      this.sampleField.value = String(bounded);
      this.add([column({ sample: bounded })]);
    });
    addTop.addEventListener("click", () => this.add(classColumns(state.input, topClasses(this.classes, 3))));
    addClass.addEventListener("click", () => {
      if (this.classSelect.value !== "") this.add(classColumns(state.input, [Number(this.classSelect.value)]));
    });
    state.on((changes) => {
      if (changes.has("configs") || changes.has("config")) this.renderRows();
      if (changes.has("input") || changes.has("target")) this.describeCurrent();
      if (changes.has("input") && this.visible) setTimeout(() => void this.loadClasses(), 0);
      if (this.visible && (changes.has("configs") || changes.has("config") || changes.has("tab"))) this.refreshSoon();
    });
    this.renderRows();
    this.describeCurrent();
  }

  show(): void {
    this.renderRows();
    setTimeout(() => void this.loadClasses(), 0);
    this.refreshSoon();
  }

  private get visible(): boolean {
    return this.state.tab === "compare";
  }

  private add(columns: GridColumn[]): void {
    const { columns: next, skipped } = addColumns(this.columns, columns, this.rowPositions().length);
    this.note.textContent = skipped ?? "";
    if (next.length === this.columns.length) return;
    this.columns = next;
    this.renderRows();
    this.refreshSoon();
  }

  private remove(position: number): void {
    this.columns = removeColumn(this.columns, position);
    this.note.textContent = "";
    this.renderRows();
    this.refreshSoon();
  }

  private rowPositions(): number[] {
    const names = this.state.configs.map((e) => e.config.name);
    if (!this.touched && this.state.configs.length) this.selected = new Set([this.state.config.name]);
    for (const name of [...this.selected]) if (!names.includes(name)) this.selected.delete(name);
    return chosenRows(names, this.selected);
  }

  private renderRows(): void {
    const chosen = new Set(this.rowPositions());
    const { state } = this;
    this.rowsBox.replaceChildren(
      ...state.configs.map((entry, position) => {
        const name = entry.config.name;
        const box = el("input", { type: "checkbox", value: name, "data-name": name });
        box.checked = chosen.has(position);
        box.disabled = !box.checked && !fits(chosen.size + 1, Math.max(1, this.columns.length));
        box.addEventListener("change", () => {
          this.touched = true;
          if (box.checked) this.selected.add(name);
          else this.selected.delete(name);
          this.renderRows();
          this.refreshSoon();
        });
        const flags = entry.stored === null ? "unsaved" : state.modified(entry) ? "modified" : "saved";
        return el(
          "label",
          { class: "compare-row-choice", "data-name": name },
          box,
          el("span", { class: "config-name", text: name }),
          el("span", { class: `flag ${flags}`, text: flags }),
          segmentBar(entry.config, state.catalog),
        );
      }),
    );
  }

  private describeCurrent(): void {
    const { state } = this;
    this.current.textContent = `Add the current input (${columnTitle(column(state.input, state.target, state.index))})`;
  }

  /** The current input's classes (top 10, as the sample panel asks: its answer is shared). */
  private async loadClasses(): Promise<void> {
    const input = this.state.input;
    const body = { input, k: 10 };
    try {
      const { predictions } = await this.state.api.predict.cache.get(bodyKey(body), () => this.predictOperation.run(body));
      if (this.state.input !== input) return;
      this.classes = predictions;
      const chosen = this.classSelect.value;
      this.classSelect.replaceChildren(
        ...predictions.map((p) =>
          el("option", { value: p.index, text: `${p.name} (class ${p.index}${p.probability === null ? "" : `, ${(100 * p.probability).toFixed(1)}%`})` }),
        ),
      );
      if (predictions.some((p) => String(p.index) === chosen)) this.classSelect.value = chosen;
    } catch (error) {
      if (!isSuperseded(error)) this.note.textContent = `classes: ${(error as Error).message}`;
    }
  }

  /** Ask for the grid of the chosen rows and columns (when it changed), and draw it. */
  async refresh(): Promise<void> {
    if (!this.visible) return;
    const { state } = this;
    const rows = this.rowPositions().map((i) => state.configs[i]);
    const columns = [...this.columns];
    if (!rows.length || !columns.length) {
      this.asked++;
      this.shown = null;
      this.grid.replaceChildren();
      this.colourbar.hidden = true;
      this.status.textContent = !rows.length ? "choose at least one configuration" : "add a column";
      this.result.dataset.state = "empty";
      return;
    }
    const body = compareBody(rows.map((e) => toJson(e.config)), columns);
    const key = bodyKey(body);
    if (key === this.shown) return;
    const ticket = ++this.asked;
    this.result.dataset.state = "loading";
    this.status.textContent = `${rows.length} × ${columns.length}: computing…`;
    try {
      const answer = await this.operation.run(body);
      if (ticket !== this.asked) return;
      this.shown = key;
      this.draw(answer, rows.map((e) => e.config), columns);
      this.result.dataset.state = "ready";
    } catch (error) {
      if (isSuperseded(error) || ticket !== this.asked) return;
      this.shown = null;
      this.result.dataset.state = "error";
      this.status.textContent = (error as Error).message;
    }
  }

  private draw(answer: CompareAnswer, configs: Config[], columns: GridColumn[]): void {
    const { state } = this;
    const cells = answer.cells.length * columns.length;
    this.status.textContent = `${answer.names.length} configuration${answer.names.length === 1 ? "" : "s"} × ${columns.length} column${columns.length === 1 ? "" : "s"} · ${cells} cells`;
    // The colour bar: bwr from −scale to +scale, the same for every cell.
    const scale = answer.scale;
    this.colourbar.hidden = false;
    this.colourbar.dataset.scale = scale === null ? "" : String(scale);
    (this.colourbar.querySelector(".lo") as HTMLElement).textContent = scale === null ? "–" : formatValue(-scale);
    (this.colourbar.querySelector(".hi") as HTMLElement).textContent = scale === null ? "–" : formatValue(scale);
    (this.colourbar.querySelector(".scale-text") as HTMLElement).textContent =
      scale === null ? "no finite cell: no scale" : `one scale for all cells: max |R| = ${formatValue(scale)}`;
    const head = el(
      "tr",
      {},
      el("th", { class: "corner", text: "" }),
      ...columns.map((c, i) => {
        const first = answer.cells[0]?.[i];
        const remove = el("button", { type: "button", class: "remove-column", title: `remove ${columnTitle(c)}`, "aria-label": `remove column ${i + 1}`, text: "×" });
        remove.addEventListener("click", () => this.remove(i));
        return el(
          "th",
          { class: "column-head", scope: "col", "data-column": i },
          el("img", { class: "column-input", src: state.api.imageUrl(c.input), alt: `input: ${inputTitle(c.input)}` }),
          el("div", { class: "input-title", text: inputTitle(c.input) }),
          el(
            "div",
            { class: "target-title" },
            `${targetTitle(c)}: `,
            el("span", { class: "target-name", "data-target": first?.target ?? "", text: first?.target_name ?? "?" }),
          ),
          remove,
        );
      }),
    );
    const body = answer.cells.map((row, r) =>
      el(
        "tr",
        { "data-row": r, "data-name": answer.names[r] },
        el("th", { class: "row-head", scope: "row" }, el("span", { class: "row-name", text: answer.names[r] }), configs[r] ? segmentBar(configs[r], state.catalog) : null),
        ...row.map((cell, c) =>
          el(
            "td",
            { class: "cell", "data-row": r, "data-column": c, "data-target": cell.target, "data-warnings": cell.warnings.length },
            cell.heatmap
              ? el("img", { class: "cell-map", src: cell.heatmap, alt: `${answer.names[r]} on ${columnTitle(columns[c])}: ${cell.target_name}` })
              : el("div", { class: "no-map", text: "no picture (relevance not finite)" }),
            cell.warnings.length ? el("ul", { class: "cell-warnings warnings" }, ...cell.warnings.map((w) => el("li", { text: w }))) : null,
          ),
        ),
      ),
    );
    this.grid.replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
    this.renders++;
    this.result.dataset.renders = String(this.renders);
  }
}

/** The tab for `registerTab`. */
export function compareTab(): Tab {
  const tab = new CompareTab();
  return { id: "compare", title: "Compare", mount: (panel, state) => tab.mount(panel, state), show: () => tab.show() };
}
