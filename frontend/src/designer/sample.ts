/**
 * Sample and prediction (issue 16 item 2): a sample by index or an uploaded image, the input
 * as the model sees it, its top-10 classes as bars; a click on a class explains it, and the
 * target can be the predicted class or a contrastive one.
 */

import { isSuperseded, type Prediction } from "./api";
import { el } from "./dom";
import { explorerLink } from "./explorer-link";
import type { DesignerState } from "./state";
import type { Target } from "./urlstate";

export class SamplePanel {
  private readonly index = document.querySelector("#sample-index") as HTMLInputElement;
  private readonly file = document.querySelector("#upload") as HTMLInputElement;
  private readonly image = document.querySelector("#input-image") as HTMLImageElement;
  private readonly label = document.querySelector("#input-label") as HTMLElement;
  private readonly bars = document.querySelector("#predictions") as HTMLOListElement;
  predictions: Prediction[] = [];

  constructor(
    private readonly state: DesignerState,
    private readonly report: (text: string, error?: boolean) => void,
  ) {
    const count = state.info.samples;
    this.index.max = String(Math.max(0, count - 1));
    this.index.disabled = count === 0;
    document.querySelector("#sample-count")!.textContent = `of ${count}`;
    this.index.addEventListener("change", () => {
      const value = Math.round(Number(this.index.value));
      const bounded = Number.isFinite(value) ? Math.max(0, Math.min(count - 1, value)) : 0;
      this.index.value = String(bounded);
      state.setInput({ sample: bounded });
    });
    this.file.disabled = !state.info.uploads;
    this.file.addEventListener("change", async () => {
      const chosen = this.file.files?.[0];
      this.file.value = "";
      if (!chosen) return;
      try {
        const { upload } = await state.api.upload(chosen);
        state.setInput({ upload });
      } catch (error) {
        report(`upload: ${(error as Error).message}`, true);
      }
    });
    for (const radio of document.querySelectorAll<HTMLInputElement>("input[name=target]")) {
      radio.addEventListener("change", () => {
        if (!radio.checked) return;
        const target = radio.value as Target;
        state.setTarget(target, target === "predicted" ? null : (state.index ?? this.predictions[0]?.index ?? 0));
      });
    }
    state.on((changes) => {
      if (changes.has("input")) void this.load();
      if (changes.has("target")) this.showTarget();
    });
  }

  async load(): Promise<void> {
    const { state } = this;
    const input = state.input;
    this.image.src = state.api.imageUrl(input);
    if ("sample" in input) {
      this.index.value = String(input.sample);
      this.label.textContent = "";
      state.api.sampleLabel(input.sample).then(
        (answer) => {
          if (state.input === input) this.label.textContent = answer.label;
        },
        () => undefined,
      );
    } else this.label.textContent = `upload ${input.upload.slice(0, 8)}…`;
    void this.linkExplorer(input);
    this.bars.dataset.state = "loading";
    try {
      const { predictions } = await state.api.predict.run({ input, k: 10 });
      this.predictions = predictions;
      this.render();
    } catch (error) {
      if (!isSuperseded(error)) report(this.report, error);
    }
  }

  /** Point the header's Explorer link at the view of this sample's class. */
  private async linkExplorer(input: DesignerState["input"]): Promise<void> {
    const link = document.querySelector("#explorer-link") as HTMLAnchorElement;
    const project = this.state.info.project;
    const found = project !== null && "sample" in input ? await explorerLink(project, input.sample).catch(() => null) : null;
    if (this.state.input !== input) return;
    link.href = found ? found.href : "./";
    link.textContent = found ? `Explorer: ${found.label}` : "Explorer";
    link.title = found ? `The Explorer view of class ${found.label}` : "The Explorer";
  }

  private render(): void {
    const top = Math.max(...this.predictions.map((p) => p.probability ?? 0), 1e-12);
    this.bars.replaceChildren(
      ...this.predictions.map((p) => {
        const bar = el("span", { class: "fill" });
        bar.style.width = `${(100 * (p.probability ?? 0)) / top}%`;
        const row = el(
          "li",
          { "data-class": p.index },
          el(
            "button",
            { type: "button", class: "prediction", title: `explain class ${p.index} (${p.name})` },
            el("span", { class: "class-name", text: p.name }),
            el("span", { class: "track" }, bar),
            el("span", { class: "value", text: p.probability === null ? "–" : `${(100 * p.probability).toFixed(1)}%` }),
          ),
        );
        row.querySelector("button")!.addEventListener("click", () =>
          this.state.setTarget(this.state.target === "contrastive" ? "contrastive" : "class", p.index),
        );
        return row;
      }),
    );
    this.bars.dataset.state = "ready";
    this.showTarget();
  }

  /** The explained class, highlighted (for "predicted": the first row). */
  showTarget(explained: number | null = null): void {
    const { state } = this;
    for (const radio of document.querySelectorAll<HTMLInputElement>("input[name=target]")) radio.checked = radio.value === state.target;
    const chosen = explained ?? (state.target === "predicted" ? (this.predictions[0]?.index ?? null) : state.index);
    for (const row of this.bars.querySelectorAll<HTMLElement>("li")) row.setAttribute("aria-selected", String(Number(row.dataset.class) === chosen));
  }
}

function report(to: (text: string, error?: boolean) => void, error: unknown): void {
  to((error as Error).message, true);
}
