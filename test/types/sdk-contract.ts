// The SDK's hand-written types (packages/client/src/types.ts) against the
// server's zod schemas and router outputs: each line fails to compile when the
// two differ, in either direction (a field added, dropped, made optional or
// retyped on one side only). Checked by `npm run typecheck` (this file is in
// the root tsconfig) and by test/unit/sdk-types.test.ts, which also shows that
// a drift is caught.
import type { z } from "zod";
import type { inferProcedureOutput, inferRouterError } from "@trpc/server";
import type { AppRouter } from "../../server/api/root";
import type {
  getBatchInput,
  getInput,
  getManyInput,
  retryInput,
  submitBatchInput,
  submitInput,
} from "../../server/commands/inputs";
import type { httpPayload } from "../../server/command-types/http";
import type { CommandView as ServerView } from "../../server/commands/view";
import type { Receipt as ServerReceipt, Rejection as ServerRejection } from "../../server/commands/submit";
import type { BatchView as ServerBatchView } from "../../server/commands/batches";
import type { State as ServerState } from "../../server/engine/states";
import type { AppErrorCode, Issue as ServerIssue } from "../../server/errors";
import type * as Sdk from "../../packages/client/src/index";

/** Object types compared member by member, whether written as intersections, mapped types or literals. */
type Normalize<T> = T extends readonly (infer U)[]
  ? Normalize<U>[]
  : T extends (...args: never[]) => unknown
    ? T
    : T extends object
      ? { [K in keyof T]: Normalize<T[K]> }
      : T;
/** Identical, not merely assignable: an optional member present on one side only counts. */
type Equal<A, B> =
  (<T>() => T extends Normalize<A> ? 1 : 2) extends <T>() => T extends Normalize<B> ? 1 : 2 ? true : false;
type Extends<A, B> = [A] extends [B] ? true : false;
type Expect<T extends true> = T;

type Intake = AppRouter["intake"];
type Output<P extends keyof Intake> = inferProcedureOutput<Intake[P]>;

export type Contract = [
  Expect<Equal<Sdk.State, ServerState>>,
  Expect<Equal<Sdk.Issue, ServerIssue>>,
  // Inputs: what the server's schemas accept is what the SDK's types allow.
  Expect<Equal<Sdk.SubmitInput, z.input<typeof submitInput>>>,
  Expect<Equal<Sdk.RetryPolicy, z.input<typeof retryInput>>>,
  Expect<Equal<Sdk.HttpPayload, z.input<typeof httpPayload>>>,
  Expect<Equal<Sdk.HttpSubmitInput, Omit<z.input<typeof submitInput>, "type" | "payload"> & Sdk.HttpSubmitInput>>,
  // `get` takes one of the two: the schema's output (after its refinement) is that union.
  Expect<Equal<Sdk.GetInput, z.output<typeof getInput>>>,
  Expect<Extends<Sdk.GetInput, z.input<typeof getInput>>>,
  Expect<Equal<Sdk.GetManyInput, z.input<typeof getManyInput>>>,
  // Batch items are validated one by one with submitInput (the envelope takes unknown[]).
  Expect<Extends<Sdk.SubmitBatchInput["commands"], z.input<typeof submitBatchInput>["commands"]>>,
  Expect<Equal<Sdk.BatchOptions, NonNullable<z.input<typeof submitBatchInput>["batch"]>>>,
  Expect<Equal<Sdk.GetBatchInput, z.input<typeof getBatchInput>>>,
  // Answers. The server types a receipt's status as a string; the SDK names the states.
  Expect<Equal<Omit<Sdk.Receipt, "status">, Omit<Output<"submit">, "status">>>,
  Expect<Extends<Sdk.Receipt["status"], Output<"submit">["status"]>>,
  Expect<Equal<Sdk.Receipt, Omit<ServerReceipt, "ok" | "status"> & { status: Sdk.State }>>,
  Expect<Equal<Extract<Sdk.BatchReceipt, { ok: false }>, ServerRejection>>,
  Expect<Equal<Extract<Sdk.BatchReceipt, { ok: true }>, Omit<ServerReceipt, "status"> & { status: Sdk.State }>>,
  Expect<Equal<Sdk.CommandView, ServerView>>,
  Expect<Equal<Output<"get">, ServerView>>,
  Expect<Equal<Sdk.GetManyResult, Output<"getMany">>>,
  Expect<Equal<Omit<Sdk.SubmitBatchResult, "receipts">, Omit<Output<"submitBatch">, "receipts">>>,
  Expect<Equal<Sdk.BatchView, ServerBatchView>>,
  Expect<Equal<Output<"getBatch">, ServerBatchView>>,
  // Errors: every code the server throws is one the SDK names, and issues have one shape.
  Expect<Extends<AppErrorCode, Sdk.ConveyorErrorCode>>,
  Expect<Equal<NonNullable<inferRouterError<AppRouter>["data"]["issues"]>, Sdk.Issue[]>>,
];
