import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Db } from "../../server/db/client";
import { createRegistry, type Registry } from "../../server/command-types/registry";
import { http } from "../../server/command-types/http";
import { defineCommandType, type CommandType } from "../../server/command-types/types";
import { startWorker, type WorkerOptions } from "../../server/worker/worker";
import { directIntake, submit } from "../../server/commands/submit";
import { resolveSecretKey } from "../../server/db/settings";
import { createLogger } from "../../server/log";
import { startListener } from "../../server/db/listener";
import { createUrlGuard } from "../../server/outbound/url-guard";
import { newToken } from "./api";

export type TestWorker = ReturnType<typeof startWorker> & { close: () => Promise<void> };

export async function startTestWorker(
  db: Db,
  url: string,
  registry: Registry,
  opts: Partial<WorkerOptions> = {},
): Promise<TestWorker> {
  const listener = startListener(url);
  await new Promise<void>((r) => listener.onConnect(r));
  const w = startWorker({
    db,
    registry,
    log: createLogger({ name: "test-worker", level: process.env.TEST_LOG ?? "silent" }),
    workerId: `test-${randomUUID().slice(0, 8)}`,
    concurrency: 10,
    listener,
    leaseMs: 2_000,
    pollMs: 100,
    rescueEveryMs: 200,
    graceMs: 2_000,
    secretKey: () => resolveSecretKey(db, undefined),
    checkUrl: createUrlGuard("*"),
    ...opts,
  });
  return Object.assign(w, {
    close: async () => {
      await w.stop();
      await listener.close();
    },
  });
}

export async function testClient(db: Db) {
  const t = await newToken(db, "client");
  return { clientId: t.id, signingSecret: t.signingSecret };
}

export const submitWith = (db: Db, registry: Registry, clientId: string) => (input: Record<string, unknown>) =>
  submit(directIntake(db, registry), clientId, input).then((r) => r.id);

export type Row = {
  id: string;
  status: string;
  result: any;
  failure: any;
  error: string | null;
  attempt_count: number;
  tries: number;
  needs_reconcile: boolean;
  phase: string;
  lease_id: string | null;
  finished_at: Date | null;
};

export async function getRow(db: Db, id: string): Promise<Row> {
  return (await db.pool.query<Row>("SELECT * FROM commands WHERE id = $1", [id])).rows[0]!;
}

export async function attemptsOf(db: Db, id: string) {
  return (
    await db.pool.query<{ number: number; kind: string; outcome: string | null; error: string | null; worker: string }>(
      "SELECT number, kind, outcome, error, worker FROM attempts WHERE command_id = $1 ORDER BY number, id",
      [id],
    )
  ).rows;
}

/** Waits until the command is in one of the states (checking the database as it changes). */
export async function waitForStatus(db: Db, id: string, states: string[], timeoutMs = 20_000): Promise<Row> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await getRow(db, id);
    if (states.includes(r.status) && r.lease_id === null) return r;
    if (Date.now() > deadline)
      throw new Error(
        `command ${id} is ${r.status} (lease ${r.lease_id}), not ${states.join("/")}, after ${timeoutMs} ms; error: ${r.error}`,
      );
    await new Promise((res) => setTimeout(res, 25));
  }
}

export async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** Types for the engine tests, beside the built-in http. */
export function testTypes(state: { calls: Map<string, number>; running: number; maxRunning: number }) {
  const base = {
    retry: { maxAttempts: 3, backoffMs: 10, maxBackoffMs: 50 },
    retryBusinessFailures: false,
    compensateOnFailure: false,
    idempotent: () => true,
    timeoutMs: () => 2000,
  };
  const count = (id: string) => state.calls.set(id, (state.calls.get(id) ?? 0) + 1).get(id)!;
  const flaky = defineCommandType({
    ...base,
    name: "flaky",
    description: "fails with a business error until the n-th attempt",
    schema: z.object({ succeedOn: z.int() }),
    retryBusinessFailures: true,
    execute: async (p, ctx) =>
      count(ctx.commandId) >= p.succeedOn
        ? { outcome: "success", result: { attempt: ctx.attempt } }
        : { outcome: "failure", failure: { code: "not yet" } },
  });
  const refundable = defineCommandType({
    ...base,
    name: "refundable",
    description: "fails, then compensates",
    schema: z.object({ compensation: z.enum(["ok", "throws", "fails"]) }),
    compensateOnFailure: true,
    execute: async () => ({ outcome: "failure", failure: { code: "declined" } }),
    compensate: async (p) => {
      if (p.compensation === "throws") throw new Error("refund service down");
      if (p.compensation === "fails") return { outcome: "failure", failure: { code: "refund refused" } };
      return { outcome: "success", result: { refunded: true } };
    },
  });
  const asyncType = (withQuery: boolean) =>
    defineCommandType({
      ...base,
      name: withQuery ? "async-polled" : "async-callback",
      description: "accepted now, result later",
      schema: z.object({ readyAfterPolls: z.int().default(1) }),
      execute: async () => ({ outcome: "accepted" }),
      ...(withQuery
        ? {
            query: async (p: { readyAfterPolls: number }, ctx: { commandId: string }) =>
              count(ctx.commandId) > p.readyAfterPolls
                ? { outcome: "success" as const, result: { done: true } }
                : { outcome: "unknown" as const },
          }
        : {}),
      poll: { intervalMs: 20, maxIntervalMs: 40 },
    });
  const capped = defineCommandType({
    ...base,
    name: "capped",
    description: "at most 2 at once across workers",
    schema: z.object({}),
    concurrency: 2,
    execute: async () => {
      state.running++;
      state.maxRunning = Math.max(state.maxRunning, state.running);
      await new Promise((r) => setTimeout(r, 30));
      state.running--;
      return { outcome: "success" };
    },
  });
  const sticky = defineCommandType({
    ...base,
    name: "sticky",
    description: "ignores its abort signal and never ends",
    schema: z.object({}),
    timeoutMs: () => 100,
    idempotent: () => false,
    execute: () => new Promise(() => {}),
  });
  const nul = defineCommandType({
    ...base,
    name: "nul",
    description: "answers with a NUL character (which PostgreSQL cannot store) in its result or its error",
    schema: z.object({ where: z.enum(["result", "error", "deep"]) }),
    execute: async (p) => {
      if (p.where === "error") throw new Error("backend said bad\u0000byte");
      if (p.where === "deep") {
        // a result nested deeper than JSON.stringify (and jsonb) can go
        let deep: unknown = "bottom";
        for (let i = 0; i < 200_000; i++) deep = [deep];
        return { outcome: "success", result: deep };
      }
      return { outcome: "success", result: { text: "a\u0000b" } };
    },
  });
  return createRegistry([
    http,
    flaky,
    refundable,
    asyncType(true),
    asyncType(false),
    capped,
    sticky,
    nul,
  ] as CommandType<any>[]);
}
