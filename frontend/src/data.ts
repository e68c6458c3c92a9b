/**
 * The server's data as the Explorer uses it: the projects and colour maps, and, each loaded
 * once per key through api.ts, label names, rankings, category details, embeddings,
 * clusterings and sample information.
 */

import * as api from "./api";
import { memo } from "./memo";
import { paletteBytes } from "./png";
import type { ViewState } from "./state";

export class Data {
  projects: api.ProjectInfo[] = [];
  /** The designer serving each project's model, where the project names one. */
  designerOf = new Map<number, number>();
  private palettes = new Map<string, Uint8Array>();

  /** Class names by class index, per project. */
  readonly labelNames = memo(
    async (project: number) => new Map((await api.labels(project)).map((l) => [l.index, l.name] as const)),
  );
  readonly rankings = memo(api.categories);
  readonly details = memo(api.category);
  readonly embeddings = memo(api.embedding);
  readonly clusterings = memo(api.clustering);
  readonly samples = memo(api.sample);

  /** Load the projects and colour maps; returns the colour maps' names. */
  async load(): Promise<string[]> {
    const [projects, colormaps, designers] = await Promise.all([
      api.projects(),
      api.colormaps(),
      api.designers().catch(() => [] as api.DesignerRow[]), // the Explorer works without them
    ]);
    this.projects = projects;
    this.designerOf = new Map(designers.filter((d) => d.project !== null && d.problem === null).map((d) => [d.project!, d.id]));
    for (const colormap of colormaps) this.palettes.set(colormap.name, paletteBytes(colormap.palette));
    return colormaps.map((c) => c.name);
  }

  /** The Designer page's address for a sample, or null where the project has no designer. */
  designerUrl(project: number, sample: number): string | null {
    const designer = this.designerOf.get(project);
    return designer === undefined ? null : api.designerUrl(designer, sample);
  }

  hasColormap(name: string): boolean {
    return this.palettes.has(name);
  }

  /** The RGB palette (256 x 3 bytes) of a colour map the server has. */
  palette(name: string): Uint8Array {
    return this.palettes.get(name)!;
  }

  /** The number of samples in a view's category. */
  async size(view: Pick<ViewState, "project" | "analysis" | "category">): Promise<number> {
    return (await this.details(view.project, view.analysis, view.category)).size;
  }
}
