/**
 * The designer's shared state: which designer, the input, the target, the configurations
 * (saved and unsaved) and the active one, the selected segment and the tab. Panels read it
 * and change it through its methods; every change is announced to the listeners with what
 * changed (`Change`), and the page keeps the URL in step (see main.ts).
 */

import type { DesignerApi, DesignerInfo, Explanation, LayerInfo } from "./api";
import { type RuleCatalog } from "./rules";
import { type Config, type ConfigJson, normalize, toJson } from "./segments";
import type { InputRef, Target, ViewState } from "./urlstate";

/** A configuration in the model manager: `stored` is its name on the server (null: unsaved),
 * `storedJson` what the server holds (to tell an edited one). */
export interface ConfigEntry {
  config: Config;
  stored: string | null;
  storedJson: string | null;
}

export type Change = "configs" | "config" | "structure" | "input" | "target" | "tab" | "segment";

export class DesignerState {
  configs: ConfigEntry[] = [];
  active = 0;
  input: InputRef = { sample: 0 };
  target: Target = "predicted";
  index: number | null = null;
  tab = "design";
  segment = 0;
  private listeners: ((changes: Set<Change>) => void)[] = [];

  constructor(
    readonly api: DesignerApi,
    readonly info: DesignerInfo,
    readonly layers: LayerInfo[],
    readonly catalog: RuleCatalog,
  ) {}

  get designer(): number {
    return this.api.designer;
  }

  /** Call `listener` after every change, with what changed. */
  on(listener: (changes: Set<Change>) => void): void {
    this.listeners.push(listener);
  }

  emit(...changes: Change[]): void {
    const set = new Set(changes);
    for (const listener of this.listeners) listener(set);
  }

  get entry(): ConfigEntry {
    return this.configs[this.active];
  }

  /** The active configuration. */
  get config(): Config {
    return this.entry.config;
  }

  /** The active configuration as the server's JSON. */
  get configJson(): ConfigJson {
    return toJson(this.config);
  }

  modified(entry: ConfigEntry = this.entry): boolean {
    return entry.stored === null || JSON.stringify(toJson(entry.config)) !== entry.storedJson;
  }

  normalize(json: ConfigJson): Config {
    return normalize(json, this.layers.length);
  }

  /** Replace the active configuration (`structure`: its segments' ranges changed too). */
  setConfig(config: Config, structure = false): void {
    this.configs[this.active] = { ...this.entry, config };
    this.segment = Math.min(this.segment, config.segments.length - 1);
    this.emit("config", "configs", ...(structure ? (["structure"] as Change[]) : []));
  }

  activate(position: number): void {
    this.active = Math.max(0, Math.min(position, this.configs.length - 1));
    this.segment = Math.min(this.segment, this.config.segments.length - 1);
    this.emit("configs", "config", "structure");
  }

  setInput(input: InputRef): void {
    this.input = input;
    this.emit("input");
  }

  setTarget(target: Target, index: number | null = this.index): void {
    this.target = target;
    this.index = target === "predicted" ? null : index;
    this.emit("target");
  }

  setTab(tab: string): void {
    this.tab = tab;
    this.emit("tab");
  }

  setSegment(segment: number): void {
    this.segment = Math.max(0, Math.min(segment, this.config.segments.length - 1));
    this.emit("segment");
  }

  /** Explain the current input and target with `config` (default: the active one); cached,
   * and a newer call of the same `operation` cancels this one (it then rejects with
   * Superseded, which callers ignore). */
  explain(config: ConfigJson = this.configJson, operation = this.api.explain): Promise<Explanation> {
    return operation.run({
      input: this.input,
      config,
      target: this.target,
      index: this.target === "predicted" ? null : this.index,
    });
  }

  /** The view for the URL. */
  view(): ViewState {
    const saved = this.entry.stored !== null && !this.modified() ? this.entry.stored : null;
    return {
      designer: this.designer,
      saved,
      config: saved === null ? this.configJson : null,
      input: this.input,
      target: this.target,
      index: this.target === "predicted" ? null : this.index,
      tab: this.tab,
      segment: this.segment,
    };
  }
}
