/**
 * The embedding canvas: a thin WebGL 2 layer that draws up to millions of points in one
 * call, with zoom (wheel), pan (drag), hover picking through a uniform grid, and box or
 * lasso selection drawn on a 2-D overlay canvas. Coordinates: data y grows upwards.
 */

import { type Combine, combineFor, pointsInBox, pointsInPolygon } from "./geometry";

export type Tool = "pan" | "box" | "lasso";

export interface ScatterEvents {
  select(positions: Int32Array, how: Combine): void;
  hover(position: number | null, clientX: number, clientY: number): void;
  rendered(count: number): void;
}

const VERTEX = `#version 300 es
in vec2 a_pos;
in vec3 a_color;
in float a_sel;
uniform vec2 u_center;
uniform vec2 u_scale;
uniform float u_size;
uniform float u_mode; // 0: no selection, 1: faded pass, 2: selected pass
out vec4 v_color;
void main() {
  gl_Position = vec4((a_pos - u_center) * u_scale, 0.0, 1.0);
  gl_PointSize = u_mode == 2.0 ? u_size * 1.5 : u_size;
  vec3 color = a_color;
  float alpha = 0.85;
  if (u_mode == 1.0 && a_sel < 0.5) {
    float gray = dot(color, vec3(0.299, 0.587, 0.114));
    color = mix(vec3(gray), color, 0.25);
    alpha = 0.35;
  } else if (u_mode == 2.0) {
    alpha = 1.0;
  }
  v_color = vec4(color, alpha);
}`;

const FRAGMENT = `#version 300 es
precision mediump float;
in vec4 v_color;
out vec4 outColor;
void main() {
  vec2 d = gl_PointCoord - vec2(0.5);
  if (dot(d, d) > 0.25) discard;
  outColor = v_color;
}`;

function compile(gl: WebGL2RenderingContext, type: number, source: string): WebGLShader {
  const shader = gl.createShader(type)!;
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader) ?? "shader");
  return shader;
}

/** [minX, minY, maxX, maxY] of flat x, y pairs. */
function extentOf(points: Float32Array): [number, number, number, number] {
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < points.length; i += 2) {
    const x = points[i];
    const y = points[i + 1];
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return [minX, minY, maxX, maxY];
}

const GRID = 128;
// During a zoom or pan a renderer that needs more than SLOW_FRAME_MS per frame (software
// WebGL, weak GPUs) draws a fixed random subset of LOD_POINTS; IDLE_MS after the gesture the
// full picture is drawn again. Fast GPUs always draw every point.
const LOD_POINTS = 20000;
const SLOW_FRAME_MS = 40;
const IDLE_MS = 150;

export class Scatter {
  readonly canvas: HTMLCanvasElement;
  readonly overlay: HTMLCanvasElement;
  tool: Tool = "pan";
  private gl: WebGL2RenderingContext;
  private program: WebGLProgram;
  private buffers: { pos: WebGLBuffer; color: WebGLBuffer; sel: WebGLBuffer; selected: WebGLBuffer };
  private uniforms: Record<string, WebGLUniformLocation | null> = {};
  private points: Float32Array = new Float32Array(0);
  private extent = extentOf(new Float32Array(0)); // minX, minY, maxX, maxY of the points
  private selectedCount = 0;
  private center = [0, 0];
  private scale = 1; // CSS pixels per data unit
  private frame = 0;
  private grid: { x0: number; y0: number; cell: number; start: Int32Array; order: Int32Array } | null = null;
  private gesture: { kind: "pan" | "box" | "lasso"; x: number; y: number; path: number[]; moved: boolean } | null =
    null;
  private hovered: number | null = null;
  private firstRendered = false;
  private subset: WebGLBuffer;
  private inSubset = new Uint8Array(0);
  private selectedSubset: WebGLBuffer;
  private selectedSubsetCount = 0;
  private interacting = 0; // timer of the gesture's end, 0 when idle
  private slow = false;

  constructor(
    private host: HTMLElement,
    private events: ScatterEvents,
  ) {
    this.canvas = document.createElement("canvas");
    this.overlay = document.createElement("canvas");
    this.canvas.id = "embedding-canvas";
    this.overlay.className = "embedding-overlay";
    host.append(this.canvas, this.overlay);
    const gl = this.canvas.getContext("webgl2", { antialias: false, premultipliedAlpha: false });
    if (!gl) throw new Error("WebGL 2 is not available in this browser; the embedding cannot be drawn");
    this.gl = gl;
    const program = gl.createProgram()!;
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.bindAttribLocation(program, 0, "a_pos");
    gl.bindAttribLocation(program, 1, "a_color");
    gl.bindAttribLocation(program, 2, "a_sel");
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program) ?? "link");
    this.program = program;
    for (const name of ["u_center", "u_scale", "u_size", "u_mode"]) {
      this.uniforms[name] = gl.getUniformLocation(program, name);
    }
    this.buffers = {
      pos: gl.createBuffer()!,
      color: gl.createBuffer()!,
      sel: gl.createBuffer()!,
      selected: gl.createBuffer()!,
    };
    this.subset = gl.createBuffer()!;
    this.selectedSubset = gl.createBuffer()!;
    new ResizeObserver(() => this.resize()).observe(host);
    this.resize();
    this.listen();
  }

  get count(): number {
    return this.points.length >> 1;
  }

  /** New points (flat x, y) and their RGB colours; the view is fitted to them. */
  setData(points: Float32Array, colors: Uint8Array): void {
    const gl = this.gl;
    this.points = points;
    this.extent = extentOf(points);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.pos);
    gl.bufferData(gl.ARRAY_BUFFER, points, gl.STATIC_DRAW);
    this.setColors(colors);
    this.uploadSubset();
    this.setSelection(new Int32Array(0));
    this.buildGrid();
    this.fit();
  }

  /** A random subset of LOD_POINTS positions (Fisher-Yates prefix, fixed per data). */
  private uploadSubset(): void {
    const n = this.count;
    const take = Math.min(n, LOD_POINTS);
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    let seed = 12345;
    for (let i = 0; i < take; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const j = i + (seed % (n - i));
      [order[i], order[j]] = [order[j], order[i]];
    }
    this.inSubset = new Uint8Array(n);
    for (let i = 0; i < take; i++) this.inSubset[order[i]] = 1;
    const gl = this.gl;
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.subset);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, order.subarray(0, take), gl.STATIC_DRAW);
  }

  /** Whether a subset is drawn now ("lod" while a slow renderer is in a gesture). */
  get drawingSubset(): boolean {
    return this.slow && this.interacting !== 0 && this.count > LOD_POINTS;
  }

  private interact(): void {
    if (this.interacting) clearTimeout(this.interacting);
    this.interacting = window.setTimeout(() => {
      this.interacting = 0;
      this.requestRender();
    }, IDLE_MS);
  }

  setColors(colors: Uint8Array): void {
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.color);
    gl.bufferData(gl.ARRAY_BUFFER, colors, gl.STATIC_DRAW);
    this.requestRender();
  }

  /** Draw `positions` (ascending) saturated and on top; the rest faded. */
  setSelection(positions: Int32Array): void {
    const gl = this.gl;
    const mask = new Uint8Array(this.count);
    for (const p of positions) mask[p] = 1;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.sel);
    gl.bufferData(gl.ARRAY_BUFFER, mask, gl.STATIC_DRAW);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.selected);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, Uint32Array.from(positions), gl.STATIC_DRAW);
    this.selectedCount = positions.length;
    const sampled = Uint32Array.from(positions.filter((p) => this.inSubset[p] === 1));
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.selectedSubset);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, sampled, gl.STATIC_DRAW);
    this.selectedSubsetCount = sampled.length;
    this.requestRender();
  }

  /** Fit the view to the points' extent. */
  fit(): void {
    const { width, height } = this.cssSize();
    const [minX, minY, maxX, maxY] = Number.isFinite(this.extent[0]) ? this.extent : [-1, -1, 1, 1];
    this.center = [(minX + maxX) / 2, (minY + maxY) / 2];
    const spanX = Math.max(maxX - minX, 1e-9);
    const spanY = Math.max(maxY - minY, 1e-9);
    this.scale = 0.92 * Math.min(width / spanX, height / spanY);
    this.requestRender();
  }

  /** Screen position (CSS pixels, relative to the canvas) of every point, flat. */
  screenPoints(): Float32Array {
    const { width, height } = this.cssSize();
    const out = new Float32Array(this.points.length);
    for (let i = 0; i < this.points.length; i += 2) {
      out[i] = width / 2 + (this.points[i] - this.center[0]) * this.scale;
      out[i + 1] = height / 2 - (this.points[i + 1] - this.center[1]) * this.scale;
    }
    return out;
  }

  /** Zoom by `factor` keeping the data point under (x, y) (CSS pixels) in place. */
  zoom(factor: number, x: number, y: number): void {
    const [dx, dy] = this.toData(x, y);
    const { width, height } = this.cssSize();
    this.scale *= factor;
    this.center = [dx - (x - width / 2) / this.scale, dy + (y - height / 2) / this.scale];
    this.interact();
    this.requestRender();
  }

  pan(dx: number, dy: number): void {
    this.center = [this.center[0] - dx / this.scale, this.center[1] + dy / this.scale];
    this.interact();
    this.requestRender();
  }

  private toData(x: number, y: number): [number, number] {
    const { width, height } = this.cssSize();
    return [this.center[0] + (x - width / 2) / this.scale, this.center[1] - (y - height / 2) / this.scale];
  }

  private cssSize() {
    return { width: this.host.clientWidth || 1, height: this.host.clientHeight || 1 };
  }

  private resize(): void {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.cssSize();
    for (const canvas of [this.canvas, this.overlay]) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    this.requestRender();
  }

  requestRender(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const gl = this.gl;
    const { width, height } = this.cssSize();
    const ratio = window.devicePixelRatio || 1;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (this.count === 0) return;
    gl.useProgram(this.program);
    gl.enable(gl.BLEND);
    // Colour blends; the canvas stays opaque, so the page behind never shows through.
    gl.blendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.pos);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.color);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribPointer(1, 3, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.sel);
    gl.enableVertexAttribArray(2);
    gl.vertexAttribPointer(2, 1, gl.UNSIGNED_BYTE, false, 0, 0);
    gl.uniform2f(this.uniforms.u_center, this.center[0], this.center[1]);
    gl.uniform2f(this.uniforms.u_scale, (2 * this.scale) / width, (2 * this.scale) / height);
    // Points grow a little when zoomed in, and shrink in very dense plots.
    const size = Math.max(2, Math.min(8, 600 / Math.sqrt(this.count))) * ratio;
    gl.uniform1f(this.uniforms.u_size, size);
    gl.uniform1f(this.uniforms.u_mode, this.selectedCount ? 1 : 0);
    const subset = this.drawingSubset;
    if (subset) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.subset);
      gl.drawElements(gl.POINTS, LOD_POINTS, gl.UNSIGNED_INT, 0);
    } else {
      gl.drawArrays(gl.POINTS, 0, this.count);
    }
    if (this.selectedCount) {
      gl.uniform1f(this.uniforms.u_mode, 2);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, subset ? this.selectedSubset : this.buffers.selected);
      gl.drawElements(gl.POINTS, subset ? this.selectedSubsetCount : this.selectedCount, gl.UNSIGNED_INT, 0);
    }
    if (!this.firstRendered) {
      gl.finish();
      this.firstRendered = true;
    }
    if (this.interacting && !subset && this.count > LOD_POINTS && !this.slow) {
      // The next animation frame comes late when this frame took long to draw.
      const drawn = performance.now();
      requestAnimationFrame(() => {
        if (performance.now() - drawn > SLOW_FRAME_MS) this.slow = true;
      });
    }
    this.host.dataset.subset = String(subset);
    this.events.rendered(this.count);
  }

  private buildGrid(): void {
    const n = this.count;
    if (n === 0) {
      this.grid = null;
      return;
    }
    const [minX, minY, maxX, maxY] = this.extent;
    const cell = Math.max(maxX - minX, maxY - minY, 1e-9) / GRID;
    const cellOf = (p: number) => {
      const cx = Math.min(GRID - 1, Math.floor((this.points[2 * p] - minX) / cell));
      const cy = Math.min(GRID - 1, Math.floor((this.points[2 * p + 1] - minY) / cell));
      return cy * GRID + cx;
    };
    // Counting sort of the points by cell: start[c]..start[c + 1] index into `order`.
    const start = new Int32Array(GRID * GRID + 1);
    const cells = new Int32Array(n);
    for (let p = 0; p < n; p++) {
      cells[p] = cellOf(p);
      start[cells[p] + 1]++;
    }
    for (let c = 0; c < GRID * GRID; c++) start[c + 1] += start[c];
    const fill = start.slice(0, GRID * GRID);
    const order = new Int32Array(n);
    for (let p = 0; p < n; p++) order[fill[cells[p]]++] = p;
    this.grid = { x0: minX, y0: minY, cell, start, order };
  }

  /** The point nearest to (x, y) in CSS pixels within `radius` pixels, or null. */
  pick(x: number, y: number, radius = 6): number | null {
    const grid = this.grid;
    if (!grid) return null;
    const [dx, dy] = this.toData(x, y);
    const r = radius / this.scale;
    const c0 = Math.max(0, Math.floor((dx - r - grid.x0) / grid.cell));
    const c1 = Math.min(GRID - 1, Math.floor((dx + r - grid.x0) / grid.cell));
    const r0 = Math.max(0, Math.floor((dy - r - grid.y0) / grid.cell));
    const r1 = Math.min(GRID - 1, Math.floor((dy + r - grid.y0) / grid.cell));
    let best: number | null = null;
    let bestDistance = r * r;
    for (let row = r0; row <= r1; row++) {
      for (let col = c0; col <= c1; col++) {
        const c = row * GRID + col;
        for (let k = grid.start[c]; k < grid.start[c + 1]; k++) {
          const p = grid.order[k];
          const ex = this.points[2 * p] - dx;
          const ey = this.points[2 * p + 1] - dy;
          const distance = ex * ex + ey * ey;
          if (distance <= bestDistance) {
            bestDistance = distance;
            best = p;
          }
        }
      }
    }
    return best;
  }

  private local(event: MouseEvent): [number, number] {
    const rect = this.overlay.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  private drawGesture(): void {
    const context = this.overlay.getContext("2d")!;
    const ratio = window.devicePixelRatio || 1;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, this.overlay.width, this.overlay.height);
    const gesture = this.gesture;
    if (!gesture || gesture.kind === "pan" || gesture.path.length < 4) return;
    context.strokeStyle = "#222";
    context.fillStyle = "rgba(40, 120, 220, 0.12)";
    context.setLineDash([4, 3]);
    context.beginPath();
    if (gesture.kind === "box") {
      const [x1, y1] = gesture.path.slice(-2);
      context.rect(gesture.x, gesture.y, x1 - gesture.x, y1 - gesture.y);
    } else {
      context.moveTo(gesture.path[0], gesture.path[1]);
      for (let i = 2; i < gesture.path.length; i += 2) context.lineTo(gesture.path[i], gesture.path[i + 1]);
      context.closePath();
    }
    context.fill();
    context.stroke();
  }

  private listen(): void {
    const target = this.overlay;
    target.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [x, y] = this.local(event);
      this.zoom(Math.exp(-event.deltaY * 0.0015), x, y);
    }, { passive: false });
    target.addEventListener("mousedown", (event) => {
      if (event.button !== 0) return;
      const [x, y] = this.local(event);
      this.gesture = { kind: this.tool, x, y, path: [x, y], moved: false };
    });
    window.addEventListener("mousemove", (event) => {
      const [x, y] = this.local(event);
      const gesture = this.gesture;
      if (!gesture) {
        const inside = x >= 0 && y >= 0 && x <= this.overlay.clientWidth && y <= this.overlay.clientHeight;
        const hovered = inside ? this.pick(x, y) : null;
        if (hovered !== this.hovered || hovered !== null) this.events.hover(hovered, event.clientX, event.clientY);
        this.hovered = hovered;
        return;
      }
      const [lastX, lastY] = gesture.path.slice(-2);
      if (Math.hypot(x - gesture.x, y - gesture.y) > 3) gesture.moved = true;
      if (gesture.kind === "pan") {
        this.pan(x - lastX, y - lastY);
        gesture.path = [x, y];
      } else if (gesture.kind === "box") {
        gesture.path = [gesture.x, gesture.y, x, y];
      } else {
        gesture.path.push(x, y);
      }
      this.drawGesture();
    });
    window.addEventListener("mouseup", (event) => {
      const gesture = this.gesture;
      if (!gesture) return;
      this.gesture = null;
      this.drawGesture();
      const how = combineFor(event);
      if (!gesture.moved) {
        const hit = this.pick(gesture.x, gesture.y);
        if (hit !== null) this.events.select(Int32Array.of(hit), how);
        else if (how === "replace") this.events.select(new Int32Array(0), "replace");
        return;
      }
      if (gesture.kind === "box") {
        const [x0, y0, x1, y1] = gesture.path;
        this.events.select(pointsInBox(this.screenPoints(), x0, y0, x1, y1), how);
      } else if (gesture.kind === "lasso" && gesture.path.length >= 6) {
        this.events.select(pointsInPolygon(this.screenPoints(), gesture.path), how);
      }
    });
  }
}
