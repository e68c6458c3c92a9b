/**
 * The rule panel of the selected segment (issue 16 item 4): preset buttons, z^B for the input
 * layer, and the unified rule's ten parameters in four guided steps, each a slider and a
 * number field kept in step, with the formula (MathML) showing the current values.
 *
 * A preset is stored as the rule "unified" with the preset's parameters (GET
 * /api/designer/rules: for the non-negative inputs of ReLU networks it explains exactly like
 * the named rule), so the sliders always show what the segment does. A named rule loaded from
 * a file is shown by its unified equivalent and becomes "unified" when edited; z^B and other
 * rules without one show their own parameters.
 */

import { el } from "./dom";
import { formatValue, formulaMathML } from "./formula";
import { PRESET_BUTTONS, STEPS, asUnified, presetOf, ruleKey, ruleLabel, type UnifiedParam } from "./rules";
import { type Params, setRule, split } from "./segments";
import type { DesignerState } from "./state";

export class RulePanel {
  private readonly root = document.querySelector("#rule-panel") as HTMLElement;
  private readonly formula = document.querySelector("#formula") as HTMLElement;
  private readonly fields = new Map<string, { slider: HTMLInputElement; number: HTMLInputElement }>();
  private built = false;

  constructor(private readonly state: DesignerState) {
    state.on((changes) => {
      if (changes.has("config") || changes.has("segment")) this.update();
    });
  }

  private get segment() {
    return this.state.config.segments[this.state.segment];
  }

  private set(rule: string, params: Params): void {
    this.state.setConfig({ ...this.state.config, segments: setRule(this.state.config.segments, this.state.segment, rule, params) });
  }

  private preset(name: string): void {
    this.set("unified", { ...this.state.catalog.unified.presets[name] });
  }

  /** z^B on the input layer alone (the segment holding layer 0 is split after it). */
  private zbox(): void {
    let segments = this.state.config.segments;
    if (segments[0].stop > 1) segments = split(segments, 1);
    const low = Number((this.root.querySelector("#zbox-low") as HTMLInputElement | null)?.value ?? 0);
    const high = Number((this.root.querySelector("#zbox-high") as HTMLInputElement | null)?.value ?? 1);
    this.state.segment = 0;
    this.state.setConfig({ ...this.state.config, segments: setRule(segments, 0, "zbox", { low, high }) }, true);
  }

  /** Set one unified parameter (the segment becomes unified, from its equivalent). */
  private param(name: string, value: number | boolean): void {
    const base = asUnified(this.segment, this.state.catalog) ?? { ...this.state.catalog.unified.presets.lrp0 };
    this.set("unified", { ...base, [name]: value });
  }

  private build(): void {
    const presets = el(
      "div",
      { class: "presets", role: "group", "aria-label": "Presets" },
      ...PRESET_BUTTONS.map(({ name, label, title }) => {
        const button = el("button", { type: "button", "data-preset": name, title, text: label });
        button.addEventListener("click", () => this.preset(name));
        return button;
      }),
    );
    const zbox = el("button", { type: "button", "data-preset": "zbox", title: "zᴮ for the input layer: inputs bounded by low and high", text: "zᴮ (input)" });
    zbox.addEventListener("click", () => this.zbox());
    presets.append(zbox);
    const steps = STEPS.map((step) =>
      el(
        "fieldset",
        { class: "step", "data-step": step.id },
        el("legend", { text: step.title }),
        el("p", { class: "guide", text: step.guide }),
        ...step.params.map((info) => {
          const slider = el("input", { type: "range", min: info.min, max: info.max, step: info.step, "data-param": info.name, "aria-label": info.label });
          const number = el("input", { type: "number", step: "any", "data-param": info.name, "aria-label": `${info.label} value` });
          const label = el("label", { class: "param" }, el("span", { class: "symbol" }), slider, number);
          label.querySelector(".symbol")!.innerHTML = info.symbol; // static markup of rules.ts
          slider.addEventListener("input", () => {
            number.value = slider.value;
            this.param(info.name, Number(slider.value));
          });
          number.addEventListener("change", () => {
            const value = Number(number.value);
            if (number.value.trim() === "" || !Number.isFinite(value)) return;
            slider.value = String(value);
            this.param(info.name, value);
          });
          this.fields.set(info.name, { slider, number });
          return label;
        }),
      ),
    );
    const bias = el("input", { type: "checkbox", id: "include-bias" });
    bias.addEventListener("change", () => this.param("include_bias", bias.checked));
    steps[2].append(el("label", { class: "param bias" }, bias, " bias as a weight of a constant input"));
    const zboxFields = el(
      "div",
      { id: "zbox-params", hidden: true },
      el("p", { class: "guide", text: "zᴮ: each input lies between low and high (e.g. 0 and 1 for images in [0, 1])." }),
      el("label", { class: "param" }, "low ", el("input", { type: "number", step: "any", id: "zbox-low", value: 0 })),
      el("label", { class: "param" }, "high ", el("input", { type: "number", step: "any", id: "zbox-high", value: 1 })),
    );
    for (const id of ["#zbox-low", "#zbox-high"]) {
      zboxFields.querySelector(id)!.addEventListener("change", () => {
        if (this.segment.rule !== "zbox") return;
        const low = Number((zboxFields.querySelector("#zbox-low") as HTMLInputElement).value);
        const high = Number((zboxFields.querySelector("#zbox-high") as HTMLInputElement).value);
        if (Number.isFinite(low) && Number.isFinite(high) && low <= high) this.set("zbox", { ...this.segment.params, low, high });
      });
    }
    const other = el("p", { id: "other-rule", class: "guide", hidden: true });
    this.root.replaceChildren(el("div", { class: "rule-head" }, el("h3", { id: "rule-title" }), presets), zboxFields, other, el("div", { class: "steps" }, ...steps));
    this.built = true;
  }

  update(): void {
    if (!this.built) this.build();
    const { state } = this;
    const segment = this.segment;
    const key = ruleKey(segment, state.catalog);
    const title = this.root.querySelector("#rule-title")!;
    title.textContent = `Segment ${state.segment + 1} of ${state.config.segments.length}: layers ${segment.start}–${segment.stop - 1} · ${ruleLabel(key)}`;
    const unified = asUnified(segment, state.catalog);
    const preset = segment.rule === "unified" ? presetOf(segment.params, state.catalog) : null;
    for (const button of this.root.querySelectorAll<HTMLButtonElement>("[data-preset]")) {
      const name = button.dataset.preset!;
      button.setAttribute("aria-pressed", String(name === "zbox" ? segment.rule === "zbox" : name === preset));
      if (name === "zbox") button.disabled = segment.start !== 0;
    }
    (this.root.querySelector("#zbox-params") as HTMLElement).hidden = segment.rule !== "zbox";
    if (segment.rule === "zbox") {
      (this.root.querySelector("#zbox-low") as HTMLInputElement).value = String(segment.params.low ?? 0);
      (this.root.querySelector("#zbox-high") as HTMLInputElement).value = String(segment.params.high ?? 1);
    }
    const other = this.root.querySelector("#other-rule") as HTMLElement;
    other.hidden = unified !== null || segment.rule === "zbox";
    other.textContent = unified === null ? `Rule "${segment.rule}" ${JSON.stringify(segment.params)}: choose a preset or move a parameter to replace it by the unified rule.` : "";
    const values = unified ?? state.catalog.unified.presets.lrp0;
    for (const [name, { slider, number }] of this.fields) {
      const value = Number(values[name as UnifiedParam] ?? state.catalog.unified.defaults[name] ?? 0);
      if (document.activeElement !== number) number.value = formatValue(value).includes("e") ? String(value) : formatValue(value);
      if (document.activeElement !== slider) slider.value = String(value);
    }
    (this.root.querySelector("#include-bias") as HTMLInputElement).checked = Boolean(values.include_bias);
    this.root.querySelector(".steps")!.classList.toggle("inactive", unified === null);
    this.formula.innerHTML = formulaMathML(values, state.catalog.unified.defaults);
    this.formula.dataset.rule = unified === null ? segment.rule : "unified";
  }
}
