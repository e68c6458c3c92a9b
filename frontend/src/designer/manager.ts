/**
 * The model manager (issue 16 item 1): every configuration as a coloured bar of its segments
 * (one colour per rule, widths by the layers they cover); new, rename, duplicate, delete,
 * save (PUT) and reload from the server, download and upload as JSON; the active one
 * highlighted.
 */

import { ApiError } from "./api";
import { download, el } from "./dom";
import { ruleColour, ruleKey, ruleLabel } from "./rules";
import { type Config, type ConfigJson, normalize, toJson } from "./segments";
import type { ConfigEntry, DesignerState } from "./state";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A name like `base` that no configuration has yet (`base`, `base-2`, ...). */
export function freeName(base: string, taken: Iterable<string>): string {
  const names = new Set(taken);
  if (!names.has(base)) return base;
  for (let i = 2; ; i++) if (!names.has(`${base}-${i}`)) return `${base}-${i}`;
}

export class ModelManager {
  private readonly list = document.querySelector("#configs") as HTMLUListElement;
  private readonly nameField = document.querySelector("#config-name") as HTMLInputElement;
  private readonly status = document.querySelector("#config-status") as HTMLElement;

  constructor(
    private readonly state: DesignerState,
    private readonly report: (text: string, error?: boolean) => void,
  ) {
    const on = (id: string, action: () => unknown) =>
      document.querySelector(id)!.addEventListener("click", () => this.guard(action));
    on("#config-new", () => this.create());
    on("#config-duplicate", () => this.duplicate());
    on("#config-delete", () => this.remove());
    on("#config-save", () => this.save());
    on("#config-revert", () => this.revert());
    on("#config-download", () => download(`${this.state.config.name}.json`, JSON.stringify(this.state.configJson, null, 2) + "\n"));
    const file = document.querySelector("#config-upload") as HTMLInputElement;
    file.addEventListener("change", () =>
      this.guard(async () => {
        const chosen = file.files?.[0];
        file.value = "";
        if (chosen) this.adopt(JSON.parse(await chosen.text()) as ConfigJson);
      }),
    );
    this.nameField.addEventListener("change", () => this.guard(() => this.rename(this.nameField.value.trim())));
    state.on((changes) => {
      if (changes.has("configs")) this.render();
    });
  }

  private names(): string[] {
    return this.state.configs.map((e) => e.config.name);
  }

  private async guard(action: () => unknown): Promise<void> {
    try {
      await action();
    } catch (error) {
      this.report(error instanceof ApiError || error instanceof Error ? error.message : String(error), true);
    }
  }

  /** Add `entry` and make it the active one. */
  private add(entry: ConfigEntry): void {
    this.state.configs.push(entry);
    this.state.activate(this.state.configs.length - 1);
  }

  create(): void {
    const name = freeName("config", this.names());
    const params = this.state.catalog.unified.presets.epsilon ?? {};
    const config: Config = { name, segments: [{ start: 0, stop: this.state.layers.length, rule: "unified", params: { ...params } }] };
    this.add({ config, stored: null, storedJson: null });
  }

  /** A configuration read from a file: a new unsaved entry (named freely). */
  adopt(json: ConfigJson): void {
    if (!json || typeof json !== "object" || !Array.isArray(json.segments)) throw new Error("not a configuration file (no segments)");
    const config = normalize({ ...json, name: freeName(String(json.name || "uploaded"), this.names()) }, this.state.layers.length);
    this.add({ config, stored: null, storedJson: null });
  }

  async rename(to: string): Promise<void> {
    const entry = this.state.entry;
    if (to === entry.config.name) return;
    if (!NAME.test(to) || to.includes("..") || to.endsWith(".")) {
      this.nameField.value = entry.config.name;
      throw new Error(`"${to}": use letters, digits, '_', '-' or '.', starting with a letter or digit`);
    }
    if (this.names().includes(to)) {
      this.nameField.value = entry.config.name;
      throw new Error(`a configuration named "${to}" exists`);
    }
    if (entry.stored !== null) {
      const renamed = await this.state.api.rename(entry.stored, to);
      entry.stored = to;
      entry.storedJson = JSON.stringify(toJson(normalize(renamed, this.state.layers.length)));
    }
    this.state.setConfig({ ...entry.config, name: to });
  }

  async duplicate(): Promise<void> {
    const entry = this.state.entry;
    const name = freeName(`${entry.config.name}-copy`, this.names());
    const config = { ...entry.config, name, segments: entry.config.segments.map((s) => ({ ...s, params: { ...s.params } })) };
    this.add({ config, stored: null, storedJson: null });
  }

  async remove(): Promise<void> {
    const entry = this.state.entry;
    if (entry.stored !== null) await this.state.api.remove(entry.stored);
    this.state.configs.splice(this.state.active, 1);
    if (!this.state.configs.length) {
      this.create();
      return;
    }
    this.state.activate(Math.min(this.state.active, this.state.configs.length - 1));
  }

  async save(): Promise<void> {
    const entry = this.state.entry;
    const saved = await this.state.api.save(entry.config.name, toJson(entry.config));
    if (entry.stored !== null && entry.stored !== entry.config.name) await this.state.api.remove(entry.stored);
    entry.stored = entry.config.name;
    entry.storedJson = JSON.stringify(toJson(normalize(saved, this.state.layers.length)));
    this.report(`saved designs/${entry.config.name}.json`);
    this.state.emit("configs");
  }

  /** Load the stored version again (dropping the edits). */
  async revert(): Promise<void> {
    const entry = this.state.entry;
    if (entry.stored === null) return;
    const config = normalize(await this.state.api.design(entry.stored), this.state.layers.length);
    entry.storedJson = JSON.stringify(toJson(config));
    this.state.setConfig(config, true);
  }

  render(): void {
    const { state } = this;
    this.list.replaceChildren(
      ...state.configs.map((entry, position) => {
        const bar = el(
          "div",
          { class: "bar", "aria-hidden": "true" },
          ...entry.config.segments.map((s) => {
            const key = ruleKey(s, state.catalog);
            const part = el("span", { class: "part", "data-rule": key, title: `${s.start}–${s.stop - 1}: ${ruleLabel(key)}`, text: ruleLabel(key) });
            part.style.flexGrow = String(s.stop - s.start);
            part.style.background = ruleColour(key);
            return part;
          }),
        );
        const flags = entry.stored === null ? "unsaved" : state.modified(entry) ? "modified" : "saved";
        const item = el(
          "li",
          { class: "config", "data-name": entry.config.name, "data-flags": flags, "aria-current": position === state.active ? "true" : "false", tabindex: 0 },
          el("div", { class: "config-head" }, el("span", { class: "config-name", text: entry.config.name }), el("span", { class: `flag ${flags}`, text: flags })),
          bar,
        );
        item.addEventListener("click", () => state.activate(position));
        item.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") state.activate(position);
        });
        return item;
      }),
    );
    const entry = state.entry;
    this.nameField.value = entry.config.name;
    (document.querySelector("#config-revert") as HTMLButtonElement).disabled = entry.stored === null || !state.modified(entry);
    const command = document.querySelector("#command") as HTMLElement;
    if (entry.stored !== null) {
      command.hidden = false;
      const start = state.info.command || "relscope attribute DATASET --model MODEL --out designed.h5";
      command.querySelector("code")!.textContent = `${start} --method designs/${entry.stored}.json`;
    } else command.hidden = true;
    this.status.textContent = `${state.configs.length} configurations`;
  }
}
