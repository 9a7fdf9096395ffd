// Alerts: every worker evaluates the rules on an interval (the evaluator's
// lock keeps it to one at a time across workers).
import type { Db } from "../db/client";
import type { Logger } from "../log";
import { evaluateRules } from "../alerts/evaluator";
import { startEvaluator } from "../alerts/mailer";
import { started, type Service } from "./service";

export function alertEvaluator(o: {
  db: Db;
  log: Logger;
  everyMs: number;
  publicUrl: string;
  metrics?: { evaluation: (ok: boolean) => void };
}): Service {
  return started("alert evaluator", () =>
    startEvaluator({
      everyMs: o.everyMs,
      log: o.log,
      run: () => evaluateRules(o.db, { publicUrl: o.publicUrl }),
      metrics: o.metrics,
    }),
  );
}
