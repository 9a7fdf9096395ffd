// What each operator action does to a command, as a decision table: walked
// over the engine's constructors without a database (test/unit/operator-transitions.test.ts)
// and over the SQL they render (test/integration/operator-actions-sql.test.ts).
import type { ActionName, ResolveOutcome } from "../../server/engine/actions";
import type { State } from "../../server/engine/states";

type Phase = "execute" | "compensate";

/** A column the action sets ("set", to what the row says), or leaves as it was ("kept"). */
export type OperatorRow = {
  action: ActionName;
  outcome?: ResolveOutcome;
  from: State;
  phase: Phase;
  expect: {
    status: State;
    phase: Phase;
    /** "reset": 0, a new round of tries. */
    tries: "reset" | "kept";
    /** "now": due at once. */
    runAt: "now" | "kept";
    needsReconcile: "cleared" | "kept";
    error: "cleared" | "kept";
    failure: "cleared" | "kept";
  };
};

const kept = { tries: "kept", runAt: "kept", needsReconcile: "kept", error: "kept", failure: "kept" } as const;
/** A new round of attempts, due now; an unknown last outcome is still reconciled first. */
const runAgain = { ...kept, tries: "reset", runAt: "now", error: "cleared" } as const;

export const OPERATOR_ROWS: OperatorRow[] = [
  // retry: run again; an exception met while compensating is retried as compensation
  {
    action: "retry",
    from: "failed",
    phase: "execute",
    expect: { ...runAgain, status: "pending", phase: "execute", failure: "cleared" },
  },
  {
    action: "retry",
    from: "exception",
    phase: "execute",
    expect: { ...runAgain, status: "pending", phase: "execute" },
  },
  {
    action: "retry",
    from: "exception",
    phase: "compensate",
    expect: { ...runAgain, status: "compensating", phase: "compensate" },
  },
  {
    action: "retry",
    from: "cancelled",
    phase: "execute",
    expect: { ...runAgain, status: "pending", phase: "execute" },
  },
  // edit & retry: a retry with a corrected payload, row for row
  ...(
    [
      ["failed", "execute", "pending", "cleared"],
      ["exception", "execute", "pending", "kept"],
      ["exception", "compensate", "compensating", "kept"],
      ["cancelled", "execute", "pending", "kept"],
    ] as const
  ).map(([from, phase, status, failure]): OperatorRow => ({
    action: "editAndRetry",
    from,
    phase,
    expect: { ...runAgain, status, phase, failure },
  })),
  // compensate: undo, in a new round of tries, without reconciling first
  ...(["succeeded", "failed", "exception"] as const).map((from): OperatorRow => ({
    action: "compensate",
    from,
    phase: "execute",
    expect: { ...runAgain, status: "compensating", phase: "compensate", needsReconcile: "cleared" },
  })),
  {
    action: "compensate",
    from: "exception",
    phase: "compensate",
    expect: { ...runAgain, status: "compensating", phase: "compensate", needsReconcile: "cleared" },
  },
  // cancel: stop one waiting for a worker; everything else is kept as it was
  ...(["pending", "retrying", "awaiting"] as const).map((from): OperatorRow => ({
    action: "cancel",
    from,
    phase: "execute",
    expect: { ...kept, status: "cancelled", phase: "execute", needsReconcile: "cleared" },
  })),
  // resolve: the operator records the outcome
  ...(["succeeded", "failed"] as const).flatMap((outcome) =>
    (["execute", "compensate"] as const).map((phase): OperatorRow => ({
      action: "resolve",
      outcome,
      from: "exception",
      phase,
      expect: { ...kept, status: outcome, phase, needsReconcile: "cleared" },
    })),
  ),
];

export const rowName = (r: OperatorRow) =>
  `${r.action}${r.outcome ? ` as ${r.outcome}` : ""} of ${/^[aeiou]/.test(r.from) ? "an" : "a"} ${r.from} command (${r.phase})`;
