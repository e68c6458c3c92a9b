import { defineConfig } from "vitest/config";

// The build lands inside the Python package, which serves it (relscope.app): two pages,
// the Explorer (index.html) and the Designer (designer.html), paths from frontend/.
export default defineConfig({
  base: "./",
  build: {
    outDir: "../src/relscope/app/static",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    rollupOptions: {
      input: {
        index: "index.html",
        designer: "designer.html",
      },
    },
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
