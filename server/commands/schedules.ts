// Schedules as data (DESIGN §8): create, change, delete and "run now", each
// audited in the change's own transaction, and the list the console shows.
// The commands they submit belong to the internal client `schedules`
// (./schedule-client.ts); the scheduler's round is ./schedule-ticks.ts.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import {
  changeSchedule,
  insertSchedule,
  listedSchedules,
  removeSchedule,
  runScheduleNow,
  type ScheduleColumns,
  type ScheduleRow,
} from "../db/schedules";
import { AppError, type Issue } from "../errors";
import { canonicalTimezone, nextTick, normalizeCron } from "../schedules/cron";
import type { ScheduleCommand, ScheduleInput, ScheduleUpdate } from "../schedules/input";
import { jsonProblem } from "./inputs";
import { keepMaskedSecrets, maskSecrets } from "./mask";
import { submit, type IntakeDeps } from "./submit";
import { schedulesClientId } from "./schedule-client";

export type ScheduleDeps = {
  db: Db;
  registry: Registry;
  /** The API's host allow-list check (HTTP_ALLOWED_HOSTS), as intake applies it. */
  hostCheck?: ((url: string) => string | null) | null;
};

/** The command as intake would judge it (type, payload, target hosts), with issues under `command`. */
function checkCommand(deps: ScheduleDeps, c: ScheduleCommand): void {
  const at = (path: (string | number)[], message: string): Issue => ({ path: ["command", ...path], message });
  const problem = jsonProblem(c.payload);
  if (problem)
    throw new AppError("BAD_REQUEST", "Invalid payload", [at(["payload", ...problem.path], problem.message)]);
  let payload: unknown;
  try {
    payload = deps.registry.validate(c.type, c.payload);
  } catch (err) {
    if (err instanceof AppError)
      throw new AppError(
        "BAD_REQUEST",
        err.message,
        (err.issues ?? []).map((i) => at(i.path, i.message)),
      );
    throw err;
  }
  if (!deps.hostCheck) return;
  const issues = (deps.registry.get(c.type)!.targets?.(payload) ?? []).flatMap((t) => {
    const refused = deps.hostCheck!(t.url);
    return refused ? [at(["payload", ...t.path], refused)] : [];
  });
  const cb = c.callbackUrl ? deps.hostCheck(c.callbackUrl) : null;
  if (cb) issues.push(at(["callbackUrl"], cb));
  if (issues.length) throw new AppError("BAD_REQUEST", `Invalid command for type "${c.type}"`, issues);
}

/** The command as stored: only the fields given. */
const stored = (c: ScheduleCommand): ScheduleColumns["command"] =>
  Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as ScheduleColumns["command"];

/** The command as the console and the audit log show it: secrets in the payload masked. */
const shown = (c: ScheduleColumns["command"]) => ({ ...c, payload: maskSecrets(c.payload) });

const nextRun = (s: { cron: string; timezone: string; enabled: boolean }, now: Date) =>
  s.enabled ? nextTick(s, now) : null;

/** `actor`: who makes the change, as the audit log names them (a user's email, or token:<name>). */
export async function createSchedule(deps: ScheduleDeps, input: ScheduleInput, actor: string) {
  checkCommand(deps, input.command);
  const id = randomUUID();
  const s = {
    name: input.name,
    cron: normalizeCron(input.cron),
    timezone: canonicalTimezone(input.timezone ?? "UTC"),
    command: stored(input.command),
    enabled: input.enabled ?? true,
  };
  const columns = { ...s, nextRunAt: nextRun(s, new Date()) };
  await insertSchedule(deps.db, id, columns, actor, {
    actor,
    action: "schedules.create",
    reason: null,
    details: { id, ...s, command: shown(s.command) },
  });
  return { id };
}

export async function updateSchedule(deps: ScheduleDeps, input: ScheduleUpdate, actor: string) {
  if (input.command) checkCommand(deps, input.command);
  const found = await changeSchedule(deps.db, input.id, (cur) => {
    const command = input.command
      ? stored({
          ...input.command,
          payload: keepMaskedSecrets(input.command.payload, cur.command.payload) as ScheduleCommand["payload"],
        })
      : cur.command;
    const s = {
      name: input.name ?? cur.name,
      cron: input.cron === undefined ? cur.cron : normalizeCron(input.cron),
      timezone: input.timezone === undefined ? cur.timezone : canonicalTimezone(input.timezone),
      command,
      enabled: input.enabled ?? cur.enabled,
    };
    // The next tick stays unless what decides it changed (a tick due now is still run).
    const same = s.cron === cur.cron && s.timezone === cur.timezone && s.enabled === cur.enabled;
    const nextRunAt = same ? cur.nextRunAt : nextRun(s, new Date());
    const changed = Object.fromEntries(
      (["name", "cron", "timezone", "enabled"] as const).filter((k) => s[k] !== cur[k]).map((k) => [k, s[k]]),
    );
    return {
      columns: { ...s, nextRunAt },
      audit: {
        actor,
        action: "schedules.update",
        reason: null,
        details: { id: input.id, name: s.name, ...changed, ...(input.command ? { command: shown(command) } : {}) },
      },
    };
  });
  if (!found) throw new AppError("NOT_FOUND", "No such schedule");
  return { id: input.id };
}

export async function deleteSchedule(deps: Pick<ScheduleDeps, "db">, id: string, actor: string) {
  const found = await removeSchedule(deps.db, id, (name) => ({
    actor,
    action: "schedules.delete",
    reason: null,
    details: { id, name },
  }));
  if (!found) throw new AppError("NOT_FOUND", "No such schedule");
  return { id };
}

/** The idempotency key of a schedule's command at a tick (DESIGN §8). */
export const tickKey = (scheduleId: string, tick: Date) => `schedule:${scheduleId}:${tick.toISOString()}`;
/** The key of a command an operator asked for now ("Run now"): never a tick's. */
export const manualKey = (scheduleId: string, at: Date) => `schedule:${scheduleId}:manual:${at.toISOString()}`;

/** The intake input of a schedule's command under `key`. */
export const commandInput = (s: Pick<ScheduleRow, "command">, key: string) => ({ ...s.command, idempotencyKey: key });

/**
 * Submits the schedule's command now, whether or not it is enabled, under
 * the key schedule:<id>:manual:<now>; the command becomes the schedule's
 * last, audited in the same transaction.
 */
export async function runNow(
  deps: { db: Db; intake: IntakeDeps; secretKey: () => Promise<Buffer> },
  id: string,
  actor: string,
) {
  const clientId = await schedulesClientId(deps.db, deps.secretKey);
  const r = await runScheduleNow(
    deps.db,
    id,
    async (s) => {
      const at = new Date();
      const receipt = await submit(deps.intake, clientId, commandInput(s, manualKey(s.id, at)));
      return { commandId: receipt.id, at };
    },
    (s, commandId) => ({
      actor,
      action: "schedules.runNow",
      reason: null,
      commandIds: [commandId],
      details: { id, name: s.name },
    }),
  );
  if (!r) throw new AppError("NOT_FOUND", "No such schedule");
  return r;
}

export async function listSchedules(db: Db) {
  const rows = await listedSchedules(db);
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    enabled: r.enabled,
    nextRunAt: r.nextRunAt?.toISOString() ?? null,
    lastRunAt: r.lastRunAt?.toISOString() ?? null,
    lastCommandId: r.lastCommandId,
    lastCommandStatus: r.lastCommandStatus,
    command: shown(r.command) as ScheduleCommand,
    createdAt: r.createdAt.toISOString(),
    createdBy: r.createdBy,
  }));
}
