export { Conveyor, MAX_IDS_PER_REQUEST, newIdempotencyKey } from "./client.js";
export type { CallOptions, ConveyorOptions, SubmitBatchOptions, SubmitOptions, WaitForOptions } from "./client.js";
export { activeTraceContext } from "./trace.js";
export type { TraceContext, TraceContextSource } from "./trace.js";
export { ConveyorError } from "./errors.js";
export type { ConveyorErrorCode, ConveyorErrorInit } from "./errors.js";
export { backoffDelay, parseRetryAfter } from "./transport.js";
export type { FetchLike, RetryOptions, TransportOptions } from "./transport.js";
export { isBatchView, SIGNATURE_HEADER, verifyNodeRequest, verifyRequest, verifySignature } from "./signature.js";
export type { CallbackBody, NodeRequestLike, VerifyOptions } from "./signature.js";
export { AT_REST_STATES, isAtRest } from "./types.js";
export type {
  BatchOptions,
  BatchReceipt,
  BatchView,
  CommandView,
  GetInput,
  GetBatchInput,
  GetManyInput,
  GetManyResult,
  HttpPayload,
  HttpSubmitInput,
  Issue,
  PayloadOf,
  Receipt,
  RetryPolicy,
  State,
  SubmitBatchInput,
  SubmitBatchResult,
  SubmitInput,
  TypedSubmitInput,
} from "./types.js";
