// `npm run test:faults`: the fault-injection suite (test/faults), apart from
// `npm test` because it runs for minutes and starts its own PostgreSQL.
import { defineConfig } from "vitest/config";
import path from "node:path";

export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname) } },
  test: {
    include: ["test/faults/**/*.test.ts"],
    testTimeout: 900_000,
    hookTimeout: 180_000,
    maxWorkers: 1,
    pool: "forks",
  },
});
