// A shorter road for the commonest request: one (non-batched) procedure call
// by POST with a JSON body — every intake submit. It calls the procedure
// through tRPC itself (same middlewares, validation and error formatter) but
// skips building fetch Request/Response objects, which on a 2-core machine
// cost more CPU than the submit. Anything else (batches, GET, unknown paths,
// unparsable JSON) goes through the full fetch adapter. A differential test
// (test/integration/direct-call.test.ts) holds both roads to the same answers.
import { callTRPCProcedure, getTRPCErrorFromUnknown, getTRPCErrorShape } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { appRouter } from "./root";
import { createContext, type HeaderReader } from "./context";
import type { ApiDeps } from "./deps";
import { retryAfterHeader } from "../errors";

export type DirectAnswer = { status: number; body: string; headers?: Record<string, string> };

const procedures = appRouter._def.procedures as unknown as Record<
  string,
  { _def: { type: "query" | "mutation" | "subscription" } }
>;

/** Returns null when this request must take the full road. */
export async function callDirect(
  deps: ApiDeps,
  path: string,
  body: Buffer,
  header: HeaderReader,
): Promise<DirectAnswer | null> {
  const procedure = procedures[path];
  if (!procedure || procedure._def.type === "subscription") return null;
  let input: unknown;
  try {
    if (body.length === 0) return null;
    input = JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
  const type = procedure._def.type;
  const ctx = await createContext(deps, header);
  try {
    const data = await callTRPCProcedure({
      router: appRouter,
      path,
      getRawInput: async () => input,
      ctx,
      type,
      signal: undefined,
      batchIndex: 0,
    });
    return { status: 200, body: JSON.stringify({ result: { data } }) };
  } catch (cause) {
    const error = getTRPCErrorFromUnknown(cause);
    const shape = getTRPCErrorShape({ config: appRouter._def._config, error, type, path, input, ctx });
    return {
      status: getHTTPStatusCodeFromError(error),
      body: JSON.stringify({ error: shape }),
      headers: retryAfterHeader(cause),
    };
  }
}
