/**
 * Views outside the page: the URL fragment and browser history, and the Export view, Import
 * view and Share link buttons.
 */

import type * as api from "./api";
import { $, showMessage } from "./dom";
import { emptyState, exportView, fromFragment, importView, toFragment, type ViewState } from "./state";

type SizeOf = (state: ViewState) => Promise<number>;

/** The state of a URL fragment; an empty one gives the defaults, a broken one too, with a note. */
export async function readLink(fragment: string, sizeOf: SizeOf): Promise<{ state: ViewState; notes: string[] }> {
  if (fragment.length <= 1) return { state: emptyState(0), notes: [] };
  try {
    return { state: await fromFragment(fragment, sizeOf), notes: [] };
  } catch (error) {
    return { state: emptyState(0), notes: [`the link could not be read (${(error as Error).message})`] };
  }
}

/** Refuse an imported view of another project, or with a selection past its category's end. */
export async function checkImport(
  state: ViewState,
  projectName: string,
  projects: readonly Pick<api.ProjectInfo, "name">[],
  sizeOf: SizeOf,
): Promise<void> {
  const project = projects[state.project];
  if (!project || project.name !== projectName) {
    throw new Error(`the file is a view of project "${projectName}", which this server does not have at position ${state.project}`);
  }
  const size = await sizeOf(state);
  const last = state.selection[state.selection.length - 1];
  if (state.selection.length && last >= size) {
    throw new Error(`the selection names position ${last} of a category of ${size}`);
  }
}

/** Record a view in the history: a new entry (unless it is the current one), in place, or not at all. */
export async function record(state: ViewState, size: number, history: "push" | "replace" | "none"): Promise<void> {
  const fragment = "#" + (await toFragment(state, size));
  if (history === "push" && fragment !== location.hash) window.history.pushState(null, "", fragment);
  if (history === "replace") window.history.replaceState(null, "", fragment);
}

export interface LinkHost {
  readonly state: ViewState;
  readonly detail: api.CategoryDetail | null;
  /** Show an imported view and record it in the history. */
  open(state: ViewState): Promise<void>;
}

/** The Export, Import and Share buttons. */
export function bindLinks(host: LinkHost, data: { projects: readonly api.ProjectInfo[]; size: SizeOf }): void {
  $("#export").addEventListener("click", () => {
    if (!host.detail) return;
    const view = exportView(host.state, data.projects[host.state.project].name, host.detail.index);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([JSON.stringify(view, null, 1)], { type: "application/json" }));
    link.download = `relscope-view-${host.state.category}.json`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });
  $<HTMLInputElement>("#import").addEventListener("change", async (event) => {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    try {
      const { state, projectName } = importView(JSON.parse(await file.text()));
      await checkImport(state, projectName, data.projects, (s) => data.size(s));
      await host.open(state);
      showMessage(`Imported the view from ${file.name}.`, false);
    } catch (error) {
      showMessage(`${file.name} could not be imported: ${(error as Error).message}`, true);
    }
  });
  $("#share").addEventListener("click", async () => {
    const url = new URL(location.href);
    url.hash = await toFragment(host.state, host.detail?.size ?? 0);
    const field = $<HTMLInputElement>("#share-url");
    field.value = url.toString();
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      showMessage("The link to this view was copied.", false);
    } catch {
      showMessage("Copy the link from the field next to the button.", false);
    }
  });
}
