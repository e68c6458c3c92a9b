/** Typed calls of the relscope HTTP API (`/api/`, see its OpenAPI schema at /api/openapi.json). */

export interface ProjectInfo {
  id: number;
  name: string;
  model: string;
  dataset: { name: string; type: string; samples: number };
  attribution: { method: string; strategy: string } | null;
  analyses: string[];
}
export interface Label {
  index: number;
  word_net_id?: string | null;
  name: string;
}
export interface CategoryRow {
  name: string;
  label_index: number | null;
  label_name: string | null;
  size: number;
  scores: Record<string, number | null>;
}
export interface EmbeddingInfo {
  name: string;
  dims: number;
  base: string | null;
  eigenvalues: (number | null)[] | null;
}
export interface ClusteringInfo {
  name: string;
  k: number | null;
  clusters: { label: number; size: number }[];
}
export interface CategoryDetail {
  name: string;
  size: number;
  index: number[];
  scores: Record<string, number | null>;
  embeddings: EmbeddingInfo[];
  clusterings: ClusteringInfo[];
}
export interface PageSample {
  index: number;
  labels: number[];
  predicted: number | null;
}
export interface Colormap {
  name: string;
  palette: string[];
}

export class ApiError extends Error {}

const q = encodeURIComponent;

async function call(path: string, init?: RequestInit, signal?: AbortSignal): Promise<Response> {
  const response = await fetch(path, { ...init, signal });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      // The body was not JSON; the status text says enough.
    }
    throw new ApiError(`${path}: ${response.status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response;
}

const json = async <T>(path: string, init?: RequestInit, signal?: AbortSignal): Promise<T> =>
  (await call(path, init, signal)).json() as Promise<T>;

export const projects = () => json<ProjectInfo[]>("api/projects");
export const labels = (p: number) => json<Label[]>(`api/projects/${p}/labels`);
export const colormaps = () => json<Colormap[]>("api/colormaps");

const analysisPath = (p: number, a: string) => `api/projects/${p}/analyses/${q(a)}`;
const categoryPath = (p: number, a: string, c: string) => `${analysisPath(p, a)}/categories/${q(c)}`;

export const categories = (p: number, a: string) => json<CategoryRow[]>(`${analysisPath(p, a)}/categories`);
export const category = (p: number, a: string, c: string) => json<CategoryDetail>(categoryPath(p, a, c));

/** Coordinates as a flat float32 array (x0, y0, x1, y1, ...). */
export async function embedding(
  p: number,
  a: string,
  c: string,
  e: string,
  dims: [number, number],
): Promise<Float32Array> {
  const response = await call(`${categoryPath(p, a, c)}/embeddings/${q(e)}?dims=${dims.join(",")}&format=binary`);
  return new Float32Array(await response.arrayBuffer());
}

export async function clustering(p: number, a: string, c: string, k: string): Promise<Int32Array> {
  const response = await call(`${categoryPath(p, a, c)}/clusterings/${q(k)}?format=binary`);
  return new Int32Array(await response.arrayBuffer());
}

export const samplePage = (p: number, indices: number[], offset: number, limit: number, signal?: AbortSignal) =>
  json<{ total: number; offset: number; samples: PageSample[] }>(
    `api/projects/${p}/samples/page`,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ indices, offset, limit }) },
    signal,
  );

export interface SampleInfo {
  index: number;
  labels: { index: number; name: string }[];
  prediction: { index: number; name: string; score: number | null }[] | null;
}
export const sample = (p: number, i: number) => json<SampleInfo>(`api/projects/${p}/samples/${i}`);

export const imageUrl = (p: number, i: number) => `api/projects/${p}/samples/${i}/image.png`;
export const heatmapUrl = (p: number, i: number) => `api/projects/${p}/samples/${i}/heatmap.png`;

export async function bytes(url: string, signal?: AbortSignal): Promise<Uint8Array> {
  return new Uint8Array(await (await call(url, undefined, signal)).arrayBuffer());
}

/** A designer of the server: the model of a project (or one given at start-up). */
export interface DesignerRow {
  id: number;
  name: string;
  project: number | null;
  problem: string | null; // why its model cannot be built, where known without building it
}

export const designers = () => json<DesignerRow[]>("api/designer");

/** The Designer page's address for a sample of a project's designer. */
export const designerUrl = (designer: number, sample: number) => `designer.html#d=${designer}&s=${sample}`;
