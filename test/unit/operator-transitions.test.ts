// Operator actions without a database: where each applies (the console's
// buttons ask the same rule), and the decision table of
// test/helpers/operator-table.ts walked over the engine's constructors.
// test/integration/operator-actions-sql.test.ts walks it over the SQL they render.
import { describe, expect, it } from "vitest";
import { ACTION_FROM, ACTION_NAMES, RESOLVE_OUTCOMES, whyNot, type ActionName } from "../../server/engine/actions";
import {
  operatorCancel,
  operatorCompensate,
  operatorEditAndRetry,
  operatorResolve,
  operatorRetry,
  type OperatorChange,
} from "../../server/engine/operator-transitions";
import { STATES, canTransition, type State } from "../../server/engine/states";
import type { Phase } from "../../server/engine/types";
import { OPERATOR_ROWS, rowName, type OperatorRow } from "../helpers/operator-table";

/** Every change an action can make (resolve: one per outcome). */
const changesOf = (action: ActionName): OperatorChange[] =>
  action === "retry"
    ? [operatorRetry()]
    : action === "compensate"
      ? [operatorCompensate()]
      : action === "cancel"
        ? [operatorCancel()]
        : action === "editAndRetry"
          ? [operatorEditAndRetry()]
          : RESOLVE_OUTCOMES.map(operatorResolve);

const changeFor = (r: OperatorRow) => (r.action === "resolve" ? operatorResolve(r.outcome!) : changesOf(r.action)[0]!);

/** What the change does to a command in this state and phase, read the way the SQL reads it. */
function outcome(c: OperatorChange, status: State, phase: Phase): OperatorRow["expect"] {
  const t = c.to.find((t) => !t.when || (t.when.status === status && (!t.when.phase || t.when.phase === phase)))!;
  return {
    status: t.status,
    phase: t.phase ?? phase,
    tries: c.resetTries ? "reset" : "kept",
    runAt: c.dueNow ? "now" : "kept",
    needsReconcile: c.clearReconcile ? "cleared" : "kept",
    error: c.clearError ? "cleared" : "kept",
    failure: c.clearFailureIn.includes(status) ? "cleared" : "kept",
  };
}

describe("operator actions", () => {
  for (const action of ACTION_NAMES) {
    it(`${action} applies exactly where its transition is allowed, and says why elsewhere`, () => {
      for (const s of STATES) {
        const applies = ACTION_FROM[action].includes(s);
        expect(whyNot(action, { status: s, leased: false }) === null, `${action} on ${s}`).toBe(applies);
        expect(whyNot(action, { status: s, leased: true }), `${action} on a leased ${s}`).toMatch(
          /a worker is working on it/,
        );
      }
    });

    it(`${action}: its changes apply where it does, and every target is a transition the state machine allows`, () => {
      for (const c of changesOf(action)) {
        expect(c.action).toBe(action);
        expect(c.from).toEqual(ACTION_FROM[action]);
        // conditional targets first, then one for all the others (the SQL's CASE … ELSE)
        expect(c.to.at(-1)!.when).toBeUndefined();
        expect(c.to.slice(0, -1).every((t) => t.when)).toBe(true);
        for (const s of c.from)
          for (const phase of ["execute", "compensate"] as const) {
            const to = outcome(c, s, phase).status;
            expect(canTransition(s, to), `${action}: ${s} (${phase}) → ${to}`).toBe(true);
          }
        for (const t of c.to) if (t.when) expect(c.from).toContain(t.when.status);
      }
    });
  }

  it("the table has a row for every state each action applies in (and every outcome of resolve)", () => {
    for (const action of ACTION_NAMES)
      for (const c of changesOf(action))
        for (const s of c.from)
          expect(
            OPERATOR_ROWS.some(
              (r) => r.action === action && r.from === s && changeFor(r).to[0]!.status === c.to[0]!.status,
            ),
            `${action} from ${s}`,
          ).toBe(true);
  });
});

it("edit & retry makes exactly the change of a retry (the payload aside, which its own statement stores)", () => {
  expect({ ...operatorEditAndRetry(), action: "retry" }).toEqual(operatorRetry());
  expect(whyNot("editAndRetry", { status: "succeeded", leased: false })).toBe(
    "succeeded: edit & retry applies only to failed, exception, cancelled commands",
  );
});

describe("the operator's changes, row by row", () => {
  for (const r of OPERATOR_ROWS)
    it(rowName(r), () => {
      const c = changeFor(r);
      expect(c.from).toContain(r.from);
      expect(outcome(c, r.from, r.phase)).toEqual(r.expect);
    });
});
