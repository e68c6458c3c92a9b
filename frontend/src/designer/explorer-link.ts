/**
 * Back to the Explorer (issue 16 item 9): the Explorer view of a project sample's category,
 * the class of its (first) true label in the project's first analysis.
 */

interface Row {
  name: string;
  label_index: number | null;
}

async function get<T>(path: string): Promise<T> {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return (await response.json()) as T;
}

/** The Explorer fragment (without '#') for a category of an analysis of a project. */
export function explorerFragment(project: number, analysis: string, category: string): string {
  return new URLSearchParams({ p: String(project), a: analysis, c: category }).toString();
}

/** The Explorer address and the class name for a sample of a project, or null (no analysis,
 * no category of its class). */
export async function explorerLink(project: number, sample: number): Promise<{ href: string; label: string } | null> {
  const [projects, info] = await Promise.all([
    get<{ analyses: string[] }[]>("api/projects"),
    get<{ labels: { index: number; name: string }[] }>(`api/projects/${project}/samples/${sample}`),
  ]);
  const analysis = projects[project]?.analyses[0];
  const label = info.labels[0];
  if (analysis === undefined || label === undefined) return null;
  const rows = await get<Row[]>(`api/projects/${project}/analyses/${encodeURIComponent(analysis)}/categories`);
  const row = rows.find((r) => r.label_index === label.index);
  if (!row) return null;
  return { href: `./#${explorerFragment(project, analysis, row.name)}`, label: label.name };
}
