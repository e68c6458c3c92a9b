/**
 * Typed calls of the designer's HTTP API (`/api/designer/{designer}/...`, see
 * src/relscope/app/designer_api.py). Every POST carries this page's `X-Designer-Session`
 * id, so that the server stops a superseded request of the same operation (it answers
 * 409); `Operation` cancels the previous request itself (AbortController) and reuses
 * answers of equal bodies (RequestCache). A cancelled or superseded request rejects with
 * `Superseded`, which callers ignore.
 */

import { ApiError } from "../api";
import { bodyKey, RequestCache } from "./cache";
import type { ConfigJson } from "./segments";
import type { RuleCatalog } from "./rules";
import type { InputRef, Target } from "./urlstate";

export { ApiError };

/** A request that a newer one replaced (aborted here, or answered 409 by the server). */
export class Superseded extends Error {}

export const isSuperseded = (error: unknown) =>
  error instanceof Superseded || (error instanceof DOMException && error.name === "AbortError");

/** This page's session id (random per page load). */
export const SESSION = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");

export interface DesignerInfo {
  id: number;
  name: string;
  project: number | null;
  input_shape: number[] | null;
  samples: number;
  uploads: boolean;
  layers: number;
  command: string; // the start of the `relscope attribute` line for its designs
}
export interface LayerInfo {
  index: number;
  name: string;
  kind: string;
  type: string;
  shape: number[] | null;
}
export interface Prediction {
  index: number;
  name: string;
  score: number | null;
  probability: number | null;
}
export interface Boundary {
  index: number;
  after: string;
  total: number | null;
  shape: number[];
  heatmap: string | null;
}
export interface Explanation {
  target: number;
  target_name: string;
  score: number | null;
  heatmap: string | null;
  shape: number[];
  boundaries: Boundary[];
  sums: { layer: string; sum: number | null }[];
  output_sum: number | null;
  input_sum: number | null;
  warnings: string[];
}
export interface ExplainBody {
  input: InputRef;
  config: ConfigJson | string;
  target: Target;
  index?: number | null;
  cmap?: string;
}

async function call(path: string, init: RequestInit = {}, signal?: AbortSignal): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("X-Designer-Session")) headers.set("X-Designer-Session", SESSION);
  const response = await fetch(path, { ...init, headers, signal });
  if (response.status === 409 && init.method === "POST" && !path.includes("/designs/")) {
    throw new Superseded(`${path}: superseded`);
  }
  if (!response.ok) {
    let detail: unknown = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      // not JSON: the status text says enough
    }
    throw new ApiError(`${response.status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response;
}

const json = async <T>(path: string, init?: RequestInit, signal?: AbortSignal) =>
  (await call(path, init, signal)).json() as Promise<T>;
const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const q = encodeURIComponent;

/** A latest-only operation: starting a request with a new body cancels the previous one. */
export class Operation<T> {
  private controller: AbortController | null = null;
  private key: string | null = null;
  private seq = 0;

  constructor(
    private readonly load: (body: unknown, signal: AbortSignal) => Promise<T>,
    readonly cache = new RequestCache<T>(32),
  ) {}

  async run(body: unknown): Promise<T> {
    const key = bodyKey(body);
    const seq = ++this.seq;
    if (this.key !== key) {
      this.controller?.abort();
      this.controller = null;
    }
    this.key = key;
    const answer = await this.cache.get(key, () => {
      this.controller = new AbortController();
      return this.load(body, this.controller.signal);
    });
    if (seq !== this.seq) throw new Superseded("a newer request was made");
    return answer;
  }
}

/** The API of one designer. */
export class DesignerApi {
  readonly base: string;

  constructor(readonly designer: number) {
    this.base = `api/designer/${designer}`;
  }

  info = () => json<DesignerInfo>(this.base);
  layers = () => json<LayerInfo[]>(`${this.base}/layers`);
  sampleLabel = (i: number) => json<{ index: number; label: string }>(`${this.base}/samples/${i}`);
  imageUrl = (input: InputRef) =>
    "sample" in input ? `${this.base}/samples/${input.sample}/image.png` : `${this.base}/uploads/${input.upload}/image.png`;

  upload = (file: Blob) =>
    json<{ upload: string; shape: number[] }>(`${this.base}/uploads`, {
      method: "POST",
      headers: { "content-type": file.type || "application/octet-stream" },
      body: file,
    });

  /** The latest-only operations (other tabs add their own with `operation`). */
  readonly predict = this.operation<{ predictions: Prediction[] }>("predict");
  readonly explain = this.operation<Explanation>("explain");

  /** A latest-only POST of `path`; `session` names the server-side channel its requests
   * supersede each other on (a tab that must not cancel another's work gives its own). */
  operation<T>(path: string, session = SESSION): Operation<T> {
    return new Operation<T>((body, signal) => {
      const init = post(body);
      init.headers = { ...(init.headers as Record<string, string>), "X-Designer-Session": session };
      return json<T>(`${this.base}/${path}`, init, signal);
    });
  }

  designs = () => json<string[]>(`${this.base}/designs`);
  design = (name: string) => json<ConfigJson>(`${this.base}/designs/${q(name)}`);
  save = (name: string, config: ConfigJson) =>
    json<ConfigJson>(`${this.base}/designs/${q(name)}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(config),
    });
  remove = async (name: string) => {
    await call(`${this.base}/designs/${q(name)}`, { method: "DELETE" });
  };
  rename = (name: string, to: string) => json<ConfigJson>(`${this.base}/designs/${q(name)}/rename`, post({ to }));
  duplicate = (name: string, to: string) => json<ConfigJson>(`${this.base}/designs/${q(name)}/duplicate`, post({ to }));
}

export const ruleCatalog = () => json<RuleCatalog>("api/designer/rules");
