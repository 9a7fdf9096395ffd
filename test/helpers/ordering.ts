// For the ordering-key tests (DESIGN §7): a command type that records every
// attempt it makes (key, seq, kind, start, end) and whether two attempts of
// one key ever ran at once, and follows a script per command; a loopback
// HTTP backend that records the same for the built-in http type (worker
// processes); and the checks both are judged by.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { createRegistry } from "../../server/command-types/registry";
import { defineCommandType, type CommandType, type ExecuteResult } from "../../server/command-types/types";

export type Exec = { id: string; key: string; seq: number; kind: string; start: number; end: number };

/**
 * What one execute does, in turn per command (then "ok"): succeed, throw (an
 * exception: outcome unknown), fail (business failure), apply and then hang
 * (the backend did it, the answer never comes: a crash's view), or wait for
 * a gate the test opens.
 */
export type Step = "ok" | "throw" | "fail" | "apply-then-hang" | { gate: Promise<void> };

export type Recorder = {
  execs: Exec[];
  /** Attempts of one key that overlapped: must stay empty. */
  overlaps: string[];
  /** Steps per command tag (payload.tag); consumed in turn. */
  script: Map<string, Step[]>;
  /** Gates for compensations, per tag. */
  compensateGate: Map<string, Promise<void>>;
  /** Tags the backend applied (what `query` reports). */
  applied: Set<string>;
  /** Resolves when an attempt of the tag starts. */
  started: (tag: string) => Promise<void>;
};

export const orderedPayload = z.object({ key: z.string(), seq: z.int(), tag: z.string().default("") });

export function orderedTypes(): { registry: ReturnType<typeof createRegistry>; rec: Recorder } {
  const running = new Map<string, number>();
  const waiters = new Map<string, (() => void)[]>();
  const rec: Recorder = {
    execs: [],
    overlaps: [],
    script: new Map(),
    compensateGate: new Map(),
    applied: new Set(),
    started: (tag) => new Promise((r) => waiters.set(tag, [...(waiters.get(tag) ?? []), r])),
  };
  const attempt = async <T>(p: z.infer<typeof orderedPayload>, id: string, kind: string, body: () => Promise<T>) => {
    const n = (running.get(p.key) ?? 0) + 1;
    running.set(p.key, n);
    if (n > 1) rec.overlaps.push(`${p.key}: ${kind} of seq ${p.seq} began while ${n - 1} other(s) ran`);
    const e: Exec = { id, key: p.key, seq: p.seq, kind, start: performance.now(), end: NaN };
    rec.execs.push(e);
    for (const w of waiters.get(p.tag) ?? []) w();
    waiters.delete(p.tag);
    try {
      return await body();
    } finally {
      if (Number.isNaN(e.end)) {
        e.end = performance.now();
        running.set(p.key, running.get(p.key)! - 1);
      }
    }
  };
  const ordered = defineCommandType({
    name: "ordered",
    description: "records its attempts per ordering key, follows a script",
    schema: orderedPayload,
    retry: { maxAttempts: 5, backoffMs: 10, maxBackoffMs: 20 },
    retryBusinessFailures: false,
    compensateOnFailure: false,
    idempotent: () => false,
    timeoutMs: () => 60_000,
    execute: (p, ctx) =>
      attempt(p, ctx.commandId, "execute", async (): Promise<ExecuteResult> => {
        const step = rec.script.get(p.tag)?.shift() ?? "ok";
        if (typeof step === "object") await step.gate;
        // a tiny pause: attempts of different keys overlap, and a missing order would show
        await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
        if (step === "throw") throw new Error("backend did not answer");
        if (step === "fail") return { outcome: "failure", failure: { code: "declined" } };
        rec.applied.add(p.tag || ctx.commandId);
        if (step === "apply-then-hang") {
          // The backend acted; its answer never arrives. The attempt no longer runs at the backend.
          const e = rec.execs.findLast((x) => x.id === ctx.commandId)!;
          e.end = performance.now();
          running.set(p.key, running.get(p.key)! - 1);
          return new Promise<never>(() => {});
        }
        return { outcome: "success", result: { seq: p.seq } };
      }),
    query: (p, ctx) =>
      attempt(p, ctx.commandId, "reconcile", async () =>
        rec.applied.has(p.tag || ctx.commandId)
          ? { outcome: "success" as const, result: { seq: p.seq, reconciled: true } }
          : { outcome: "not_found" as const },
      ),
    compensate: (p, ctx) =>
      attempt(p, ctx.commandId, "compensate", async () => {
        await rec.compensateGate.get(p.tag);
        return { outcome: "success" as const, result: { undone: true } };
      }),
  });
  return { registry: createRegistry([ordered] as CommandType<any>[]), rec };
}

/** A gate: a promise and the function that opens it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Per key: the attempts in the order they started must be in receipt order (seq) and must not overlap. */
export function orderProblems(execs: Exec[], expected: Map<string, number[]>): string[] {
  const problems: string[] = [];
  const byKey = new Map<string, Exec[]>();
  for (const e of execs) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
  for (const [key, want] of expected) {
    const got = (byKey.get(key) ?? []).sort((a, b) => a.start - b.start);
    const seqs = got.map((e) => e.seq);
    if (JSON.stringify(seqs) !== JSON.stringify(want))
      problems.push(`${key}: ran ${seqs.join(",")} instead of ${want.join(",")}`);
    for (let i = 1; i < got.length; i++)
      if (got[i]!.start < got[i - 1]!.end)
        problems.push(`${key}: seq ${got[i]!.seq} started before seq ${got[i - 1]!.seq} ended`);
  }
  return problems;
}

/** The most attempts (of any keys) in flight at the same moment. */
export function maxSimultaneous(execs: { start: number; end: number }[]): number {
  const edges = execs.flatMap((e) => [
    [e.start, 1],
    [e.end, -1],
  ]);
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let n = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (n += d!));
  return max;
}

/**
 * A loopback backend for the http type: POST /do?key=&seq= is held a few
 * milliseconds and answered 200; each request is recorded with the time it
 * arrived and the time its answer was sent, by X-Command-Id.
 */
export async function startRecordingBackend(holdMs: () => number) {
  const execs: Exec[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const e: Exec = {
        id: String(req.headers["x-command-id"]),
        key: url.searchParams.get("key") ?? "",
        seq: Number(url.searchParams.get("seq")),
        kind: "execute",
        start: performance.now(),
        end: NaN,
      };
      execs.push(e);
      setTimeout(() => {
        e.end = performance.now();
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: true }));
      }, holdMs());
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    execs,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
