// Inbound results for `awaiting` commands (DESIGN §1, asynchronous backends).
// When a type answers "accepted", its attempt context carries a result URL
// and a per-command secret (an HMAC of the command id under the server key, so
// nothing is stored). The backend later POSTs
//   { "outcome": "success", "result": ... }  or  { "outcome": "failure", "failure": ... }
// to that URL with X-Conveyor-Signature: sha256=<hex HMAC-SHA256 of the body, keyed by the secret>.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Db } from "../db/client";
import { settleAwaiting } from "../db/inbound";
import { signBody } from "../crypto";

const resultSecret = (key: Buffer, commandId: string) =>
  createHmac("sha256", key).update(`inbound-result:${commandId}`).digest("base64url");

export const resultEndpoint = (publicUrl: string, key: Buffer) => (commandId: string) => ({
  url: `${publicUrl.replace(/\/$/, "")}/api/commands/${commandId}/result`,
  secret: resultSecret(key, commandId),
});

const body = z.discriminatedUnion("outcome", [
  z.strictObject({ outcome: z.literal("success"), result: z.unknown().optional() }),
  z.strictObject({ outcome: z.literal("failure"), failure: z.unknown() }),
]);

export async function acceptInboundResult(
  db: Db,
  key: Buffer,
  commandId: string,
  raw: string,
  signature: string | null,
): Promise<{ status: number; body: unknown }> {
  if (!z.uuid().safeParse(commandId).success) return { status: 404, body: { error: "no such command" } };
  const expected = Buffer.from(signBody(resultSecret(key, commandId), raw));
  const given = Buffer.from(signature ?? "");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { status: 401, body: { error: "missing or wrong X-Conveyor-Signature" } };
  }
  let parsed;
  try {
    parsed = body.safeParse(JSON.parse(raw));
  } catch {
    return { status: 400, body: { error: "body is not JSON" } };
  }
  if (!parsed.success)
    return {
      status: 400,
      body: { error: "invalid result", issues: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })) },
    };
  const r = parsed.data;
  const settled = await settleAwaiting(
    db,
    commandId,
    r.outcome === "success"
      ? { status: "succeeded", result: r.result ?? null }
      : { status: "failed", failure: r.failure },
    "inbound callback",
  );
  return settled
    ? { status: 200, body: { settled: true } }
    : {
        status: 409,
        body: { error: "the command is not awaiting a result (already settled, or never accepted asynchronously)" },
      };
}
