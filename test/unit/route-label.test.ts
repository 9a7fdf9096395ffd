import { expect, it } from "vitest";
import { routeLabel } from "../../server/metrics";
import { appRouter } from "../../server/api/root";

const procedures = new Set(Object.keys(appRouter._def.procedures));

it("names known routes, shapes ids, and folds everything else into one label", () => {
  expect(procedures.has("intake.submit")).toBe(true);
  expect(routeLabel("/api/trpc/intake.submit", procedures)).toBe("trpc:intake.submit");
  expect(routeLabel("/api/trpc/commands.list?input=%7B%7D", procedures)).toBe("trpc:commands.list");
  expect(routeLabel("/api/trpc/commands.list,commands.counts", procedures)).toBe("trpc:batch");
  expect(routeLabel("/api/trpc/made.up.name", procedures)).toBe("trpc:unknown");
  expect(routeLabel("/api/health", procedures)).toBe("/api/health");
  expect(routeLabel("/api/v1/commands/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", procedures)).toBe("/api/v1/commands/:id");
  expect(routeLabel("/api/commands/0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B/result", procedures)).toBe(
    "/api/commands/:id/result",
  );
  // made-up paths cannot mint new series
  expect(routeLabel("/api/anything-" + Math.random(), procedures)).toBe("api:other");
  expect(routeLabel("/api/v1/commands/not-an-id", procedures)).toBe("api:other");
  expect(routeLabel("/_next/static/chunks/x.js", procedures)).toBe("static");
  expect(routeLabel("/commands?state=exception", procedures)).toBe("page");
});
