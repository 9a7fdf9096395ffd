import type { State } from "../engine/states";

/** The command as clients and the console see it (DESIGN §3). */
export type CommandView = {
  id: string;
  type: string;
  status: State;
  payload: unknown;
  result: unknown;
  failure: unknown;
  error: string | null;
  attemptCount: number;
  idempotencyKey: string | null;
  orderingKey: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
};

export type CommandRow = {
  id: string;
  type: string;
  status: State;
  payload: unknown;
  result: unknown;
  failure: unknown;
  error: string | null;
  attempt_count: number;
  idempotency_key: string | null;
  ordering_key: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
};

export function toView(r: CommandRow): CommandView {
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    payload: r.payload,
    result: r.result ?? null,
    failure: r.failure ?? null,
    error: r.error,
    attemptCount: r.attempt_count,
    idempotencyKey: r.idempotency_key,
    orderingKey: r.ordering_key ?? null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}
