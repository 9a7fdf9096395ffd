// The database's copy of the lifecycle equals server/engine/states.ts: its
// state enum, its transition table, the lists in its trigger functions and the
// trigger's WHEN clause, and the state lists of its checks and partial indexes
// (each the engine group it stands for). A migration that changes one side
// without the other fails here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import {
  AT_REST,
  CLAIMABLE,
  KEY_BLOCKING,
  KEY_FREE,
  LEASABLE,
  PRUNABLE,
  NOTIFY_STATES,
  STATES,
  canTransition,
  type State,
} from "../../server/engine/states";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

const q = async <R>(sql: string, values: unknown[] = []) => (await t.db.pool.query(sql, values)).rows as R[];
const one = async (sql: string, values: unknown[] = []) =>
  Object.values((await q<Record<string, string>>(sql, values))[0]!)[0]!;

const pairs = (allowed: (from: State, to: State) => boolean) =>
  STATES.flatMap((f) => STATES.filter((to) => to !== f && allowed(f, to)).map((to) => `${f}>${to}`)).sort();
const CODE = pairs(canTransition);
const sorted = (xs: readonly string[]) => [...xs].sort();
/** The states quoted in a piece of SQL ('a', 'a'::command_status), in order. */
const quoted = (sql: string) => [...sql.matchAll(/'([a-z_]+)'(?:::command_status)?/g)].map((m) => m[1]!);
/** Every `status IN (…)` list in a function's source. */
const inLists = (src: string, alias: string) =>
  [...src.matchAll(new RegExp(`${alias}\\.status IN \\(([^)]*)\\)`, "g"))].map((m) => quoted(m[1]!));

describe("the lifecycle in the database", () => {
  it("has the engine's states, in its order", async () => {
    expect(await one(`SELECT enum_range(NULL::command_status)::text[] AS s`)).toEqual([...STATES]);
  });

  it("holds the engine's transitions in command_transitions and in conveyor_transition_allowed()", async () => {
    const table = await q<{ f: string; t: string }>(
      `SELECT from_status::text AS f, to_status::text AS t FROM command_transitions`,
    );
    expect(table.map((r) => `${r.f}>${r.t}`).sort()).toEqual(CODE);
    const fn = await q<{ f: State; t: State; ok: boolean }>(
      `SELECT f::text AS f, t::text AS t, conveyor_transition_allowed(f, t) AS ok
       FROM unnest(enum_range(NULL::command_status)) f, unnest(enum_range(NULL::command_status)) t WHERE f <> t`,
    );
    expect(pairs((f, to) => fn.find((r) => r.f === f && r.t === to)!.ok)).toEqual(CODE);
  });

  it("checks the same transitions in the row trigger: its function's list, and its WHEN clause's bitmask", async () => {
    const src = await one(`SELECT pg_get_functiondef('conveyor_command_update'::regproc)`);
    const list = /= ANY \('\{([^}]*)\}'::text\[\]\)/.exec(src);
    expect(list, src).not.toBeNull();
    expect(list![1]!.split(",").sort()).toEqual(CODE);
    // and it sets finished_at exactly on entering a state at rest
    expect(inLists(src, "NEW")).toEqual([[...AT_REST]]);

    const when = await one(`SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'commands_update'`);
    const masks = /'\{([\d,]+)\}'::integer\[\]/.exec(when)![1]!.split(",").map(Number);
    const order = /'\{([a-z_,]+)\}'::command_status\[\]/.exec(when)![1]!.split(",");
    expect(order).toEqual([...STATES]);
    // array_position is 1-based: bit (1 << position of the new state) of the old state's mask
    expect(pairs((f, to) => (masks[order.indexOf(f)]! & (1 << (order.indexOf(to) + 1))) !== 0)).toEqual(CODE);
  });

  it("queues callbacks and wakes workers for the engine's groups (conveyor_commands_changed)", async () => {
    const src = await one(`SELECT pg_get_functiondef('conveyor_commands_changed'::regproc)`);
    const lists = inLists(src, "n").map(sorted);
    const notify = lists.filter((l) => l.join() === sorted(NOTIFY_STATES).join());
    const claimable = lists.filter((l) => l.join() === sorted(CLAIMABLE).join());
    expect(notify.length + claimable.length, JSON.stringify(lists)).toBe(lists.length);
    expect([notify.length, claimable.length]).toEqual([2, 2]);
  });

  it("keeps finished_at, leases and the claim index to the engine's groups", async () => {
    const check = (name: string) =>
      one(`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1`, [name]);
    expect(quoted(await check("commands_finished_check"))).toEqual([...AT_REST]);
    expect(quoted(await check("commands_lease_state_check"))).toEqual([...LEASABLE]);
    const claimIdx = await one(`SELECT pg_get_indexdef('commands_claim_idx'::regclass)`);
    expect(quoted(claimIdx.slice(claimIdx.indexOf(" WHERE ")))).toEqual([...CLAIMABLE]);
  });

  it("counts the finished commands (finished_counts) in the states the pruner deletes, in every trigger that keeps them", async () => {
    const check = await one(
      `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'finished_counts_status_check'`,
    );
    expect(quoted(check)).toEqual([...PRUNABLE]);
    const changed = await one(`SELECT pg_get_functiondef('conveyor_commands_changed'::regproc)`);
    const lists = [...changed.matchAll(/ch\.[no]s IN \(([^)]*)\)/g)].map((m) => quoted(m[1]!));
    expect(lists).toEqual([[...PRUNABLE], [...PRUNABLE]]);
    const deleted = await one(`SELECT pg_get_functiondef('conveyor_finished_deleted'::regproc)`);
    expect(inLists(deleted, "o")).toEqual([[...PRUNABLE]]);
    const inserted = await one(`SELECT pg_get_functiondef('conveyor_finished_inserted'::regproc)`);
    expect(inLists(inserted, "n")).toEqual([[...PRUNABLE], [...PRUNABLE]]);
  });

  it("holds ordering keys by the engine's groups: what blocks a key, and what frees it", async () => {
    const check = await one(
      `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'commands_key_waiting_state_check'`,
    );
    expect(quoted(check)).toEqual([...KEY_BLOCKING]);
    const idx = await one(`SELECT pg_get_indexdef('commands_ordering_idx'::regclass)`);
    expect(quoted(idx)).toEqual([...KEY_BLOCKING]);
    const release = await one(`SELECT pg_get_functiondef('conveyor_release_key'::regproc)`);
    expect(inLists(release, "w").concat(inLists(release, "h"))).toEqual([[...KEY_BLOCKING], [...KEY_BLOCKING]]);
    const when = await one(`SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'commands_order_release'`);
    const lists = [...when.matchAll(/ANY \(ARRAY\[([^\]]*)\]\)/g)].map((m) => quoted(m[1]!));
    expect(lists).toEqual([[...KEY_FREE], [...KEY_FREE]]);
  });
});
