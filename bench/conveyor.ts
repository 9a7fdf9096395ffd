// What the benchmarks that run Conveyor's worker share: the no-op command type
// (the worker's, and the intake side's for validation), the worker processes
// they start and stop, and the probe of whether any work is left.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { z } from "zod";
import { defineCommandType } from "../server/command-types/types";
import type { Db } from "../server/db/client";
import { directIntake } from "../server/commands/submit";
import { createRegistry } from "../server/command-types/registry";
import { http } from "../server/command-types/http";
import { root } from "./lib";

/** Does nothing, successfully; `onStart` hears of each start of a command whose payload asks to be reported. */
export const noopType = (onStart?: (commandId: string) => void) =>
  defineCommandType({
    name: "noop",
    description: "does nothing, successfully",
    schema: z.object({ report: z.boolean().optional() }),
    execute: async (p, ctx) => {
      if (p.report) onStart?.(ctx.commandId);
      return { outcome: "success" };
    },
    retry: { maxAttempts: 3, backoffMs: 100, maxBackoffMs: 1000 },
    retryBusinessFailures: false,
    compensateOnFailure: false,
    idempotent: () => true,
    timeoutMs: () => 10_000,
  });

/** Intake with the registry of bench/conveyor-noop-worker.ts (http and no-op), for validation as the web process does. */
export const benchIntake = (db: Db) => directIntake(db, createRegistry([http, noopType()]));

export type Proc = { child: ChildProcess; lines: (fn: (l: string) => void) => void };

/**
 * A worker process of `script` (compiled as `npm run worker` compiles the worker: scripts/worker.mjs), resolved once
 * it prints READY; BENCH_NODE_ARGS go to node (e.g. --cpu-prof).
 */
export function startProc(script: string, env: Record<string, string>): Promise<Proc> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      path.join(root, "scripts/worker.mjs"),
      path.join(root, script),
    ],
    { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const fns: ((l: string) => void)[] = [];
  let buf = "";
  child.stdout!.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      for (const f of fns) f(line);
    }
  });
  return new Promise((resolve, reject) => {
    const p = { child, lines: (fn: (l: string) => void) => void fns.push(fn) };
    p.lines((l) => l === "READY" && resolve(p));
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

export const stopProcs = (ps: Proc[]) =>
  Promise.all(ps.map((p) => new Promise<void>((r) => (p.child.once("exit", () => r()), p.child.kill("SIGTERM")))));

/**
 * Whether any of Conveyor's commands is left to run, each half through its own index: unleased commands waiting
 * (the claim index), those waiting behind their ordering key (the ordering index), leased ones (the lease index).
 * A probe of `status IN (…, 'running', …)` found no index for the leased rows and read the table each time.
 */
export const workLeft = async (db: Db) =>
  (
    await db.pool.query<{ left: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM commands WHERE status IN ('pending', 'retrying') AND lease_id IS NULL AND NOT key_waiting)
           OR EXISTS (SELECT 1 FROM commands WHERE status = 'pending' AND key_waiting AND ordering_key IS NOT NULL)
           OR EXISTS (SELECT 1 FROM commands WHERE locked_until IS NOT NULL) AS left`,
    )
  ).rows[0]!.left;

/**
 * Stores finished commands as commands live, a chunk at a time: stored pending, claimed, then succeeded with their
 * one attempt, then vacuumed, so that the table's pages hold what a drained history leaves (the dead versions'
 * space reused by the next chunk, as autovacuum lets intake do). A one-insert fill packs every page and leaves
 * each a tail of free space that later, smaller rows are put in one per page (docs/operations.md §7.5).
 * `rows` is a FROM clause over the statement's `args` giving `i` (a sequence number) and `t` (the command's
 * creation time); `id`, `payload` and `key` are SQL expressions of them. Nothing may claim meanwhile: the rows are
 * due (run_at = t) and told apart by `tag` (locked_by, and the attempts' worker).
 */
export async function storeFinished(
  db: Db,
  o: {
    rows: string;
    args: unknown[];
    /** the commands' client_id, as SQL (a parameter of `args`) */
    client: string;
    type: string;
    id: string;
    payload: string;
    key: string;
    result: string;
    startMs: number;
    finishMs: number;
    tag: string;
  },
): Promise<void> {
  const at = (ms: number) => `created_at + interval '${ms} ms'`;
  await db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload, idempotency_key, created_at, updated_at, state_changed_at, run_at)
     SELECT ${o.id}, ${o.client}, '${o.type}', ${o.payload}, ${o.key}, t, t, t, t ${o.rows}`,
    o.args,
  );
  await db.pool.query(
    `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = $1,
            locked_until = now() + interval '1 hour', attempt_started_at = ${at(o.startMs)},
            state_changed_at = ${at(o.startMs)}, updated_at = ${at(o.startMs)}
     WHERE status = 'pending'`,
    [o.tag],
  );
  await db.pool.query(
    `WITH c AS (
       UPDATE commands SET status = 'succeeded', lease_id = NULL, locked_by = NULL, locked_until = NULL,
              attempt_started_at = NULL, finished_at = ${at(o.finishMs)}, state_changed_at = ${at(o.finishMs)},
              updated_at = ${at(o.finishMs)}, attempt_count = 1, tries = 1, result = $2::jsonb
       WHERE status = 'running' AND locked_by = $1
       RETURNING id, created_at)
     INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, worker)
     SELECT id, 1, 'execute', 'success', ${at(o.startMs)}, ${at(o.finishMs)}, $1 FROM c`,
    [o.tag, o.result],
  );
  await db.pool.query("VACUUM commands");
}
