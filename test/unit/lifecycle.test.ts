// The lifecycle as a decision table, without a database: a fake command type
// whose every answer is chosen per row, run through the attempt runner, the
// engine's decisions and its transition constructors. Every completion must
// make a transition the state machine allows (the database refuses the others).
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AT_REST,
  CLAIMABLE,
  FINISHES,
  FINISH_KINDS,
  IN_FLIGHT,
  LEASABLE,
  NOTIFY_STATES,
  PRUNABLE,
  QUEUED,
  STATES,
  TRANSITIONS,
  UNSUCCESSFUL,
  WAITING_FOR_A_WORKER,
  canTransition,
  type State,
} from "../../server/engine/states";
import { handBack, rescued } from "../../server/engine/transitions";
import type { Claimed, Completion, Expired } from "../../server/engine/types";
import { createRegistry } from "../../server/command-types/registry";
import {
  defineCommandType,
  type CommandType,
  type CompensateResult,
  type ExecuteResult,
  type QueryResult,
} from "../../server/command-types/types";
import { Interrupt, ShuttingDown, runClaimed } from "../../server/worker/attempt";

type Answer<R> = R | "throws" | "interrupted";
type Fake = {
  execute?: Answer<ExecuteResult>;
  query?: Answer<QueryResult> | "none";
  compensate?: Answer<CompensateResult> | "none";
  idempotent?: boolean;
  retryBusinessFailures?: boolean;
  compensateOnFailure?: boolean;
};

const MAX = 3;
const answer = async <R>(a: Answer<R> | undefined): Promise<R> => {
  if (a === undefined) throw new Error("the row did not expect this call");
  if (a === "throws") throw new Error("boom");
  if (a === "interrupted") throw new ShuttingDown();
  return a;
};

/** A command type whose answers are the row's. */
function fakeType(f: Fake): CommandType {
  return defineCommandType({
    name: "fake",
    description: "answers as the table says",
    schema: z.object({ n: z.number() }),
    execute: () => answer(f.execute),
    query: f.query === "none" ? undefined : () => answer(f.query as Answer<QueryResult>),
    compensate: f.compensate === "none" ? undefined : () => answer(f.compensate as Answer<CompensateResult>),
    retry: { maxAttempts: MAX, backoffMs: 10, maxBackoffMs: 100 },
    retryBusinessFailures: f.retryBusinessFailures ?? false,
    compensateOnFailure: f.compensateOnFailure ?? false,
    idempotent: () => f.idempotent ?? true,
    timeoutMs: () => 1_000,
  }) as CommandType;
}

const claimed = (over: Partial<Claimed> = {}): Claimed => ({
  id: "00000000-0000-4000-8000-000000000001",
  leaseId: "00000000-0000-4000-8000-0000000000aa",
  type: "fake",
  payload: { n: 1 },
  status: "running",
  phase: "execute",
  tries: 0,
  attemptCount: 4,
  needsReconcile: false,
  maxAttempts: null,
  backoffMs: null,
  maxBackoffMs: null,
  stateChangedAt: new Date(),
  clientId: "00000000-0000-4000-8000-0000000000cc",
  runAt: new Date(),
  targetHost: null,
  probe: false,
  keyed: false,
  trace: null,
  ...over,
});

/** What a row expects of the completion: runAt "date" is a scheduled time, "infinity" never (an inbound callback only). */
type Expect = {
  status: State;
  tries: number;
  needsReconcile?: boolean;
  runAt: "null" | "date" | "infinity";
  attempts: string[];
  error?: RegExp | null;
  thenCompensate?: boolean;
};

const runAtKind = (r: Completion["runAt"]) => (r === null ? "null" : r === "infinity" ? "infinity" : "date");

function check(c: Claimed, done: Completion, e: Expect) {
  expect({
    status: done.status,
    tries: done.tries,
    needsReconcile: done.needsReconcile,
    runAt: runAtKind(done.runAt),
    attempts: done.attempts.map((a) => `${a.kind}:${a.outcome}`),
    attemptCount: done.attemptCount,
    thenCompensate: !!done.thenCompensate,
  }).toEqual({
    status: e.status,
    tries: e.tries,
    needsReconcile: e.needsReconcile ?? false,
    runAt: e.runAt,
    attempts: e.attempts,
    attemptCount: c.attemptCount + e.attempts.length,
    thenCompensate: e.thenCompensate ?? false,
  });
  expect(done.attempts.map((a) => a.number)).toEqual(e.attempts.map((_, i) => c.attemptCount + i + 1));
  expect([done.id, done.leaseId, done.phase]).toEqual([c.id, c.leaseId, c.phase]);
  if (e.error === null) expect(done.error).toBeNull();
  else if (e.error) expect(done.error).toMatch(e.error);
  // The change is one the state machine allows (or none), and so is failed → compensating after it.
  if (done.status !== c.status) expect(canTransition(c.status, done.status), `${c.status} → ${done.status}`).toBe(true);
  if (done.thenCompensate) expect(canTransition(done.status, "compensating")).toBe(true);
}

const ok = { outcome: "success", result: { ok: 1 } } as const;
const bad = { outcome: "failure", failure: { no: 1 } } as const;

type Row = { name: string; c?: Partial<Claimed>; type?: Fake | "unknown"; expect: Expect };
const rows: Row[] = [
  // running: execute
  {
    name: "execute succeeds",
    type: { execute: ok },
    expect: { status: "succeeded", tries: 1, runAt: "null", attempts: ["execute:success"], error: null },
  },
  {
    name: "execute fails: final",
    type: { execute: bad },
    expect: { status: "failed", tries: 1, runAt: "null", attempts: ["execute:failure"], error: null },
  },
  {
    name: "execute fails, compensated on failure",
    type: { execute: bad, compensateOnFailure: true, compensate: ok },
    expect: { status: "failed", tries: 1, runAt: "null", attempts: ["execute:failure"], thenCompensate: true },
  },
  {
    name: "execute fails, compensate on failure but no compensation",
    type: { execute: bad, compensateOnFailure: true, compensate: "none" },
    expect: { status: "failed", tries: 1, runAt: "null", attempts: ["execute:failure"] },
  },
  {
    name: "execute fails, business failures retried",
    type: { execute: bad, retryBusinessFailures: true },
    expect: { status: "retrying", tries: 1, runAt: "date", attempts: ["execute:failure"], error: null },
  },
  {
    name: "execute fails, business failures retried, last try",
    c: { tries: MAX - 1 },
    type: { execute: bad, retryBusinessFailures: true },
    expect: { status: "failed", tries: MAX, runAt: "null", attempts: ["execute:failure"] },
  },
  {
    name: "execute throws: reconciled next time",
    type: { execute: "throws", query: ok },
    expect: {
      status: "retrying",
      tries: 1,
      needsReconcile: true,
      runAt: "date",
      attempts: ["execute:exception"],
      error: /^boom$/,
    },
  },
  {
    name: "execute throws on the last try",
    c: { tries: MAX - 1 },
    type: { execute: "throws", query: ok },
    expect: {
      status: "exception",
      tries: MAX,
      needsReconcile: true,
      runAt: "null",
      attempts: ["execute:exception"],
      error: /boom; gave up after 3 tries \(maxAttempts 3\)/,
    },
  },
  {
    name: "execute throws, no query but idempotent",
    type: { execute: "throws", query: "none" },
    expect: { status: "retrying", tries: 1, needsReconcile: true, runAt: "date", attempts: ["execute:exception"] },
  },
  {
    name: "execute throws, neither reconcilable nor idempotent",
    type: { execute: "throws", query: "none", idempotent: false },
    expect: {
      status: "exception",
      tries: 1,
      needsReconcile: true,
      runAt: "null",
      attempts: ["execute:exception"],
      error: /neither be reconciled/,
    },
  },
  {
    name: "execute interrupted by shutdown: no try used",
    c: { tries: 1 },
    type: { execute: "interrupted", query: ok },
    expect: {
      status: "retrying",
      tries: 1,
      needsReconcile: true,
      runAt: "date",
      attempts: ["execute:exception"],
      error: /shut down/,
    },
  },
  {
    name: "execute accepted, polled",
    type: { execute: { outcome: "accepted" }, query: ok },
    expect: { status: "awaiting", tries: 0, runAt: "date", attempts: ["execute:accepted"], error: null },
  },
  {
    name: "execute accepted, nothing to poll",
    type: { execute: { outcome: "accepted" }, query: "none" },
    expect: { status: "awaiting", tries: 0, runAt: "infinity", attempts: ["execute:accepted"] },
  },
  // running: reconcile first
  {
    name: "reconcile: done",
    c: { needsReconcile: true, tries: 1 },
    type: { query: ok },
    expect: { status: "succeeded", tries: 1, runAt: "null", attempts: ["reconcile:success"] },
  },
  {
    name: "reconcile: failed",
    c: { needsReconcile: true, tries: 1 },
    type: { query: bad },
    expect: { status: "failed", tries: 1, runAt: "null", attempts: ["reconcile:failure"] },
  },
  {
    name: "reconcile: never received, executed again",
    c: { needsReconcile: true, tries: 1 },
    type: { query: { outcome: "not_found" }, execute: ok },
    expect: { status: "succeeded", tries: 2, runAt: "null", attempts: ["reconcile:not_found", "execute:success"] },
  },
  {
    name: "reconcile: cannot tell",
    c: { needsReconcile: true, tries: 1 },
    type: { query: { outcome: "unknown" } },
    expect: {
      status: "retrying",
      tries: 2,
      needsReconcile: true,
      runAt: "date",
      attempts: ["reconcile:unknown"],
      error: /cannot tell yet/,
    },
  },
  {
    name: "reconcile throws on the last try",
    c: { needsReconcile: true, tries: MAX - 1 },
    type: { query: "throws" },
    expect: {
      status: "exception",
      tries: MAX,
      needsReconcile: true,
      runAt: "null",
      attempts: ["reconcile:exception"],
      error: /^reconcile: boom; gave up/,
    },
  },
  {
    name: "reconcile interrupted",
    c: { needsReconcile: true, tries: 1 },
    type: { query: "interrupted" },
    expect: { status: "retrying", tries: 1, needsReconcile: true, runAt: "date", attempts: ["reconcile:exception"] },
  },
  {
    name: "unknown outcome, neither reconcilable nor idempotent: no attempt",
    c: { needsReconcile: true },
    type: { query: "none", idempotent: false },
    expect: { status: "exception", tries: 0, needsReconcile: true, runAt: "null", attempts: [] },
  },
  {
    name: "unknown outcome, idempotent: executed again",
    c: { needsReconcile: true },
    type: { query: "none", execute: ok },
    expect: { status: "succeeded", tries: 1, runAt: "null", attempts: ["execute:success"] },
  },
  // awaiting: poll
  {
    name: "poll: done",
    c: { status: "awaiting", tries: 2 },
    type: { query: ok },
    expect: { status: "succeeded", tries: 2, runAt: "null", attempts: ["poll:success"] },
  },
  {
    name: "poll: failed",
    c: { status: "awaiting" },
    type: { query: bad },
    expect: { status: "failed", tries: 0, runAt: "null", attempts: ["poll:failure"] },
  },
  {
    name: "poll: not yet",
    c: { status: "awaiting", tries: 2 },
    type: { query: { outcome: "unknown" } },
    expect: { status: "awaiting", tries: 3, runAt: "date", attempts: ["poll:unknown"] },
  },
  {
    name: "poll: forgotten by the backend, sent again",
    c: { status: "awaiting" },
    type: { query: { outcome: "not_found" } },
    expect: { status: "retrying", tries: 0, runAt: "date", attempts: ["poll:not_found"], error: /no longer knows/ },
  },
  {
    name: "poll throws",
    c: { status: "awaiting", tries: 2 },
    type: { query: "throws" },
    expect: { status: "awaiting", tries: 3, runAt: "date", attempts: ["poll:exception"] },
  },
  {
    name: "poll interrupted",
    c: { status: "awaiting", tries: 2 },
    type: { query: "interrupted" },
    expect: { status: "awaiting", tries: 2, runAt: "date", attempts: ["poll:exception"] },
  },
  {
    name: "awaiting with nothing to poll",
    c: { status: "awaiting" },
    type: { query: "none" },
    expect: { status: "awaiting", tries: 0, runAt: "infinity", attempts: [] },
  },
  {
    name: "awaited too long",
    c: { status: "awaiting", stateChangedAt: new Date(Date.now() - 25 * 3600_000) },
    type: { query: ok },
    expect: {
      status: "exception",
      tries: 0,
      runAt: "null",
      attempts: [],
      error: /no result from the backend within 86400 s/,
    },
  },
  // compensating
  {
    name: "compensation succeeds",
    c: { status: "compensating", phase: "compensate" },
    type: { compensate: ok },
    expect: { status: "compensated", tries: 1, runAt: "null", attempts: ["compensate:success"], error: null },
  },
  {
    name: "compensation fails",
    c: { status: "compensating", phase: "compensate" },
    type: { compensate: bad },
    expect: {
      status: "exception",
      tries: 1,
      runAt: "null",
      attempts: ["compensate:failure"],
      error: /^compensation failed: /,
    },
  },
  {
    name: "compensation throws",
    c: { status: "compensating", phase: "compensate" },
    type: { compensate: "throws" },
    expect: {
      status: "compensating",
      tries: 1,
      runAt: "date",
      attempts: ["compensate:exception"],
      error: /^compensation: boom$/,
    },
  },
  {
    name: "compensation throws on the last try",
    c: { status: "compensating", phase: "compensate", tries: MAX - 1 },
    type: { compensate: "throws" },
    expect: {
      status: "exception",
      tries: MAX,
      runAt: "null",
      attempts: ["compensate:exception"],
      error: /^compensation could not complete: boom; gave up/,
    },
  },
  {
    name: "compensation interrupted",
    c: { status: "compensating", phase: "compensate", tries: 1 },
    type: { compensate: "interrupted" },
    expect: { status: "compensating", tries: 1, runAt: "date", attempts: ["compensate:exception"] },
  },
  {
    name: "compensation asked of a type without one",
    c: { status: "compensating", phase: "compensate" },
    type: { compensate: "none" },
    expect: { status: "exception", tries: 0, runAt: "null", attempts: [], error: /has no compensate/ },
  },
  // what the worker cannot run
  {
    name: "unknown type",
    type: "unknown",
    expect: { status: "exception", tries: 0, runAt: "null", attempts: [], error: /unknown command type "fake"/ },
  },
  {
    name: "stored payload no longer valid",
    c: { payload: { n: "x" } },
    type: { execute: ok },
    expect: { status: "exception", tries: 0, runAt: "null", attempts: [], error: /does not match the type's schema/ },
  },
];

describe("the attempt runner, the decisions and the transitions", () => {
  for (const row of rows) {
    it(row.name, async () => {
      const c = claimed(row.c);
      const registry = createRegistry(row.type === "unknown" ? [] : [fakeType(row.type ?? {})]);
      const done = await runClaimed(c, registry, { workerId: "w-test", intr: new Interrupt() });
      check(c, done, row.expect);
    });
  }
});

describe("the rescuer's decisions on an expired lease", () => {
  const expired = (over: Partial<Expired>): Expired => ({
    ...claimed(),
    lockedBy: "w-dead",
    attemptStartedAt: new Date(Date.now() - 60_000),
    ...over,
  });
  const cases: { name: string; r: Partial<Expired>; type?: Fake | "unknown"; expect: Expect }[] = [
    {
      name: "running, reconcilable: retried, reconciled first",
      r: {},
      type: { query: ok },
      expect: {
        status: "retrying",
        tries: 1,
        needsReconcile: true,
        runAt: "date",
        attempts: ["execute:exception"],
        error: /^lease expired: worker w-dead/,
      },
    },
    {
      name: "running, a reconcile under way",
      r: { needsReconcile: true },
      type: { query: ok },
      expect: { status: "retrying", tries: 1, needsReconcile: true, runAt: "date", attempts: ["reconcile:exception"] },
    },
    {
      name: "running, its last try",
      r: { tries: MAX - 1 },
      type: { query: ok },
      expect: {
        status: "exception",
        tries: MAX,
        needsReconcile: true,
        runAt: "null",
        attempts: ["execute:exception"],
        error: /gave up after 3 tries/,
      },
    },
    {
      name: "running, neither reconcilable nor idempotent",
      r: {},
      type: { query: "none", idempotent: false },
      expect: {
        status: "exception",
        tries: 1,
        needsReconcile: true,
        runAt: "null",
        attempts: ["execute:exception"],
        error: /neither be reconciled/,
      },
    },
    {
      name: "awaiting: polled again now",
      r: { status: "awaiting", tries: 2 },
      type: { query: ok },
      expect: { status: "awaiting", tries: 2, runAt: "date", attempts: ["poll:exception"], error: null },
    },
    {
      name: "compensating: compensated again",
      r: { status: "compensating", phase: "compensate" },
      type: { compensate: ok },
      expect: {
        status: "compensating",
        tries: 1,
        runAt: "date",
        attempts: ["compensate:exception"],
        error: /^compensation: lease expired/,
      },
    },
    {
      name: "compensating, its last try",
      r: { status: "compensating", phase: "compensate", tries: MAX - 1 },
      type: { compensate: ok },
      expect: {
        status: "exception",
        tries: MAX,
        runAt: "null",
        attempts: ["compensate:exception"],
        error: /^compensation could not complete: lease expired/,
      },
    },
    {
      name: "a type this worker does not know",
      r: {},
      type: "unknown",
      expect: {
        status: "exception",
        tries: 1,
        runAt: "null",
        attempts: ["execute:exception"],
        error: /; unknown command type$/,
      },
    },
  ];
  for (const k of cases) {
    it(k.name, () => {
      const r = expired(k.r);
      const type = k.type === "unknown" ? undefined : fakeType(k.type ?? {});
      const done = rescued(r, type, r.payload);
      check(r, done, k.expect);
      expect(done.attempts[0]!.worker).toBe("w-dead");
      expect(done.attempts[0]!.startedAt).toEqual(r.attemptStartedAt);
    });
  }
});

describe("hand-back on stop", () => {
  for (const status of LEASABLE) {
    it(`a ${status} command claimed but not started goes back as it was (running as retrying), due now`, () => {
      const c = claimed({
        status,
        phase: status === "compensating" ? "compensate" : "execute",
        tries: 2,
        needsReconcile: true,
      });
      const back = handBack(c);
      check(c, back, {
        status: status === "running" ? "retrying" : status,
        tries: 2,
        needsReconcile: true,
        runAt: "date",
        attempts: [],
        error: null,
      });
    });
  }
});

describe("the groups", () => {
  it("partition the states into at rest and in flight, and sit where their doc says", () => {
    expect([...new Set(STATES)]).toHaveLength(STATES.length);
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...STATES].sort());
    expect([...AT_REST, ...IN_FLIGHT].sort()).toEqual([...STATES].sort());
    expect(NOTIFY_STATES).toEqual(AT_REST);
    // at rest: only an operator moves it on (no worker transition leads out, but to compensating or pending)
    for (const s of AT_REST)
      for (const to of TRANSITIONS[s]) expect(["pending", "compensating", "succeeded", "failed"]).toContain(to);
    expect(CLAIMABLE.every((s) => IN_FLIGHT.includes(s))).toBe(true);
    expect(QUEUED.every((s) => CLAIMABLE.includes(s) && canTransition(s, "running"))).toBe(true);
    expect([...CLAIMABLE.filter((s) => !QUEUED.includes(s as never)), "running"].sort()).toEqual([...LEASABLE].sort());
    expect(PRUNABLE).toEqual(AT_REST.filter((s) => s !== "exception"));
    expect(UNSUCCESSFUL.every((s) => AT_REST.includes(s))).toBe(true);
    expect(WAITING_FOR_A_WORKER.every((s) => CLAIMABLE.includes(s as never) && s !== "awaiting")).toBe(true);
    // the chart's kinds of finish: states at rest, each counted in one kind at most
    const finished = FINISH_KINDS.flatMap((k) => FINISHES[k]);
    expect(new Set(finished).size).toBe(finished.length);
    expect(finished.every((s) => AT_REST.includes(s))).toBe(true);
  });
});
