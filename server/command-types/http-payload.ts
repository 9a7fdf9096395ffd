// The payload of the built-in `http` type (DESIGN §2), on its own so that
// the console can check a payload with the very schema the server checks it
// with (Edit & retry): this module imports zod and the pure input helpers,
// nothing that reaches Node or the database.
import { z } from "zod";
import { noCredentials, NO_CREDENTIALS } from "../commands/inputs";

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "not a valid HTTP header name");
const httpUrl = z
  .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
  .max(4096)
  .refine(noCredentials, NO_CREDENTIALS);

export const httpPayload = z.strictObject({
  url: httpUrl,
  method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]).default("POST"),
  headers: z.record(headerName, z.string().max(8192)).optional(),
  body: z.unknown().optional(),
  timeoutMs: z.int().min(100).max(300_000).default(10_000),
  statusUrl: httpUrl.optional(),
  compensateUrl: httpUrl.optional(),
  failureStatuses: z.array(z.int().min(100).max(599)).max(500).optional(),
  idempotent: z.boolean().default(true),
});
export type HttpPayload = z.infer<typeof httpPayload>;
