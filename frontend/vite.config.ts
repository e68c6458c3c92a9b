import { defineConfig } from "vitest/config";

// The build lands inside the Python package, which serves it (relscope.app).
export default defineConfig({
  base: "./",
  build: {
    outDir: "../src/relscope/app/static",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
