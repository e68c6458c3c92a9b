/**
 * The Designer page (designer.html; issue 16): one sample, LRP configurations designed by
 * segments and rules. The designer is `#d=<id>` of the URL (default 0).
 *
 * Module API, for the tabs (Compare, Pixel flipping and Neuron ablation use it):
 *
 * - `DesignerState` (state.ts) is the shared state: `api` (DesignerApi: typed calls of
 *   /api/designer/{id}, `api.operation(path)` makes a latest-only, cached POST operation),
 *   `info`, `layers`, `catalog` (rules and presets), `input` ({sample} or {upload}),
 *   `target`/`index`, `configs`/`active`/`config`/`configJson`, `segment`, `tab`.
 *   `state.on(changes => ...)` is called after every change with what changed
 *   ("configs", "config", "structure", "input", "target", "tab", "segment");
 *   `state.explain(config?, operation?)` explains the current input and target (cached;
 *   a newer call cancels an older one, which then rejects with Superseded: check
 *   `isSuperseded(error)` and ignore it).
 * - A tab is registered with `registerTab({id, title, mount(panel, state), show?()})`
 *   before `start()`: `mount` builds its content in its own `<section>` once, `show` is
 *   called whenever the tab becomes visible. The tab is part of the URL (`tab=<id>`).
 *
 * The URL fragment holds the view (urlstate.ts); every change pushes a history entry
 * (parameter edits replace the current one), and back/forward restore the view.
 */

import "../style.css";
import "./designer.css";
import { isSuperseded, ruleCatalog, DesignerApi } from "./api";
import { el } from "./dom";
import { compareTab } from "./compare";
import { FlippingTab } from "./flipping";
import { ModelManager } from "./manager";
import { neuronsTab } from "./neurons";
import { ResultPanel } from "./result";
import { RulePanel } from "./rulepanel";
import { SegmentRuler } from "./ruler";
import { SamplePanel } from "./sample";
import { debounce } from "./cache";
import { normalize, toJson, type Config } from "./segments";
import { DesignerState, type Change } from "./state";
import { decodeView, encodeView, type ViewState } from "./urlstate";

export interface Tab {
  id: string;
  title: string;
  mount(panel: HTMLElement, state: DesignerState): void;
  show?(): void;
}

const tabs: Tab[] = [];

/** Add a tab to the page (call before `start()`). */
export function registerTab(tab: Tab): void {
  tabs.push(tab);
}

registerTab({ id: "design", title: "Design", mount() {} }); // its panels are in designer.html
registerTab(compareTab());
registerTab(new FlippingTab());
registerTab(neuronsTab);

function report(text: string, error = false): void {
  const box = document.querySelector("#message") as HTMLElement;
  box.textContent = text;
  box.hidden = !text;
  box.classList.toggle("error", error);
}

export async function start(): Promise<DesignerState> {
  const initial = decodeView(location.hash);
  const api = new DesignerApi(initial.designer);
  const [info, layers, catalog, names] = await Promise.all([api.info(), api.layers(), ruleCatalog(), api.designs()]);
  document.querySelector("#designer-name")!.textContent = info.name;
  document.title = `relscope Designer · ${info.name}`;
  const state = new DesignerState(api, info, layers, catalog);
  const stored = await Promise.all(names.map((name) => api.design(name).catch(() => null)));
  stored.forEach((json, i) => {
    if (!json) return;
    const config = normalize({ ...json, name: names[i] }, layers.length);
    state.configs.push({ config, stored: names[i], storedJson: JSON.stringify(toJson(config)) });
  });

  // Tabs.
  const tablist = document.querySelector("#tabs") as HTMLElement;
  for (const tab of tabs) {
    let panel = document.querySelector(`#tab-${tab.id}`) as HTMLElement | null;
    if (!panel) {
      panel = el("section", { id: `tab-${tab.id}`, class: "tab-panel", role: "tabpanel" });
      document.querySelector("#tab-panels")!.append(panel);
    }
    tab.mount(panel, state);
    const button = el("button", { type: "button", role: "tab", id: `tab-button-${tab.id}`, "data-tab": tab.id, text: tab.title });
    button.addEventListener("click", () => state.setTab(tab.id));
    tablist.append(button);
  }
  const showTab = () => {
    if (!tabs.some((t) => t.id === state.tab)) state.tab = "design";
    for (const tab of tabs) {
      const selected = tab.id === state.tab;
      document.querySelector(`#tab-button-${tab.id}`)!.setAttribute("aria-selected", String(selected));
      (document.querySelector(`#tab-${tab.id}`) as HTMLElement).hidden = !selected;
      if (selected) tab.show?.();
    }
  };

  const manager = new ModelManager(state, report);
  const sample = new SamplePanel(state, report);
  new SegmentRuler(state);
  new RulePanel(state);
  const result = new ResultPanel(state);

  // Explanations: debounced, the stale ones cancelled, repeated ones from the cache.
  let asked = 0;
  const explain = debounce(async () => {
    const ticket = ++asked;
    const status = document.querySelector("#result") as HTMLElement;
    status.dataset.state = "loading";
    try {
      const answer = await state.explain();
      if (ticket !== asked) return;
      result.show(answer);
      sample.showTarget(answer.target);
      report("");
      status.dataset.state = "ready";
    } catch (error) {
      if (isSuperseded(error) || ticket !== asked) return;
      status.dataset.state = "error";
      report((error as Error).message, true);
    }
  }, 150);

  // The URL: pushed on every change but parameter edits (replaced), restored on back/forward.
  let restoring = false;
  let lastStructure = "";
  const writeUrl = (changes: Set<Change>) => {
    const fragment = "#" + encodeView(state.view());
    if (fragment === location.hash) return;
    const structure = JSON.stringify({ ...state.view(), config: state.config.segments.map((s) => [s.start, s.rule]) });
    const onlyValues = changes.has("config") && !changes.has("structure") && structure === lastStructure;
    lastStructure = structure;
    if (onlyValues) history.replaceState(null, "", fragment);
    else history.pushState(null, "", fragment);
  };
  state.on((changes) => {
    if (changes.has("tab")) showTab();
    if (changes.has("config") || changes.has("input") || changes.has("target")) explain();
    if (!restoring) writeUrl(changes);
  });

  const apply = async (view: ViewState) => {
    restoring = true;
    try {
      let position = -1;
      if (view.saved !== null) position = state.configs.findIndex((e) => e.stored === view.saved);
      if (position < 0 && view.config) {
        const config: Config = normalize(view.config, layers.length);
        position = state.configs.findIndex((e) => e.config.name === config.name);
        if (position >= 0) state.configs[position] = { ...state.configs[position], config };
        else {
          state.configs.push({ config, stored: null, storedJson: null });
          position = state.configs.length - 1;
        }
      }
      if (position < 0 && !state.configs.length) manager.create();
      state.active = Math.max(0, position < 0 ? state.active : position);
      state.segment = Math.min(view.segment, state.config.segments.length - 1);
      state.tab = view.tab;
      state.target = view.target;
      state.index = view.target === "predicted" ? null : view.index;
      const inputChanged = JSON.stringify(view.input) !== JSON.stringify(state.input) || !sample.predictions.length;
      state.input = view.input;
      state.emit("configs", "config", "structure", "tab", "target", "segment", ...(inputChanged ? (["input"] as Change[]) : []));
    } finally {
      restoring = false;
    }
  };
  window.addEventListener("popstate", () => void apply(decodeView(location.hash)));
  await apply(initial);
  history.replaceState(null, "", "#" + encodeView(state.view()));
  return state;
}
