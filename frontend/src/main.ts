/**
 * The Explorer page: project tabs, analysis setup, category ranking, the embedding canvas, the
 * eigenvalue plot, the cluster list and the gallery (see explorer.ts).
 */

import "./style.css";
import { showMessage } from "./dom";
import { Explorer } from "./explorer";

const explorer = new Explorer();
// A read-only handle for tests and benchmarks: where each point is drawn, and which sample
// each category position is.
Object.assign(window, { relscope: explorer.inspect() });
explorer.start().catch((error: Error) => showMessage(error.message, true));
