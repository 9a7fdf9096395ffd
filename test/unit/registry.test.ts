import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createRegistry } from "../../server/command-types/registry";
import { defineCommandType } from "../../server/command-types/types";
import { http, isFailureStatus, httpPayload } from "../../server/command-types/http";

const echo = defineCommandType({
  name: "echo",
  description: "test",
  schema: z.object({ n: z.int() }),
  execute: async (p) => ({ outcome: "success", result: p.n }),
  retry: { maxAttempts: 3, backoffMs: 10, maxBackoffMs: 100 },
  retryBusinessFailures: false,
  compensateOnFailure: false,
  idempotent: () => true,
  timeoutMs: () => 1000,
});

describe("command type registry", () => {
  it("adds a type with one line and validates its payload", () => {
    const r = createRegistry([http, echo]);
    expect(r.names()).toEqual(["http", "echo"]);
    expect(r.validate("echo", { n: 2 })).toEqual({ n: 2 });
    expect(() => r.validate("echo", { n: "x" })).toThrow(/Invalid payload/);
    try {
      r.validate("echo", { n: "x" });
    } catch (e) {
      expect((e as { issues: unknown }).issues).toEqual([{ path: ["payload", "n"], message: expect.any(String) }]);
    }
  });

  it("refuses duplicate or malformed type names", () => {
    expect(() => createRegistry([echo, echo])).toThrow(/twice/);
    expect(() => createRegistry([{ ...echo, name: "Bad Name" }])).toThrow(/Invalid command type name/);
  });
});

describe("http type payload", () => {
  it("applies DESIGN §2 defaults", () => {
    expect(httpPayload.parse({ url: "https://x.example/" })).toEqual({
      url: "https://x.example/",
      method: "POST",
      timeoutMs: 10000,
      idempotent: true,
    });
  });
  it("treats 400–499 except 408 and 429 as business failures by default", () => {
    const p = httpPayload.parse({ url: "https://x.example/" });
    expect([400, 404, 422, 499].every((s) => isFailureStatus(p, s))).toBe(true);
    expect([408, 429, 500, 503, 302].some((s) => isFailureStatus(p, s))).toBe(false);
    const custom = httpPayload.parse({ url: "https://x.example/", failureStatuses: [409, 500] });
    expect(isFailureStatus(custom, 500)).toBe(true);
    expect(isFailureStatus(custom, 400)).toBe(false);
  });
  it("refuses bad fields by name", () => {
    const r = httpPayload.safeParse({
      url: "https://x.example/",
      method: "TRACE",
      headers: { "bad header": "x" },
      extra: 1,
    });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["method", "headers.bad header", ""]));
  });
});

describe("payload schemas the console checks with", () => {
  it("are the very objects the registry validates with, each for a registered type", async () => {
    const { BROWSER_SCHEMAS } = await import("../../server/command-types/browser-schemas");
    const { registry } = await import("../../server/command-types");
    expect(Object.keys(BROWSER_SCHEMAS).length).toBeGreaterThan(0);
    for (const [name, schema] of Object.entries(BROWSER_SCHEMAS)) expect(registry.get(name)?.schema).toBe(schema);
  });
});
