// The OpenAPI 3.1 document of the REST intake API (server/api/rest.ts), served
// at GET /api/openapi.json. Request schemas are generated with zod 4's own
// z.toJSONSchema from the very schemas intake validates with
// (server/commands/inputs.ts and each command type's payload schema), so the
// document cannot drift from what the server accepts. Response schemas are
// written here, and checked against the TypeScript types the server answers
// with (see the type assertions below and test/integration/rest.test.ts).
import { z } from "zod";
import { getManyInput, retryInput, submitBatchInput, submitInput, MAX_BATCH } from "../commands/inputs";
import { STATES, type State } from "../engine/states";
import type { BatchView } from "../commands/batches";
import type { CommandView } from "../commands/view";
import type { Receipt, Rejection } from "../commands/submit";
import type { Registry } from "../command-types/registry";

const uuid = z.uuid();
const stateSchema = z.enum(STATES).meta({ description: "Command state (DESIGN §1)" });

const issueSchema = z.object({
  path: z.array(z.union([z.string(), z.int()])).meta({ description: 'Where the problem is, e.g. ["payload", "url"]' }),
  message: z.string(),
});

const errorSchema = z.object({
  error: z.object({
    code: z.string().meta({
      description:
        "BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_SUPPORTED, CONFLICT, PAYLOAD_TOO_LARGE, TOO_MANY_REQUESTS or INTERNAL_SERVER_ERROR",
      examples: ["BAD_REQUEST"],
    }),
    message: z.string(),
    issues: z.array(issueSchema).optional().meta({ description: "For BAD_REQUEST: each invalid field and why" }),
  }),
});

export const receiptSchema = z.object({
  id: uuid,
  status: stateSchema.meta({ description: '"pending" for a new command; the current state for a duplicate' }),
  duplicate: z.boolean().meta({
    description: "true when this client already sent this idempotencyKey: the answer names the original command",
  }),
});

export const batchReceiptSchema = z.union([
  z.object({ ok: z.literal(true), ...receiptSchema.shape }),
  z.object({
    ok: z.literal(false),
    error: z.object({
      code: z.enum(["BAD_REQUEST", "CONFLICT"]),
      message: z.string(),
      issues: z.array(issueSchema).optional(),
    }),
  }),
]);

export const commandViewSchema = z.object({
  id: uuid,
  type: z.string(),
  status: stateSchema,
  payload: z.unknown().meta({ description: "The payload as submitted" }),
  result: z.unknown().meta({ description: "The backend's answer once succeeded; null before" }),
  failure: z.unknown().meta({ description: "Why it failed (business failure); null otherwise" }),
  error: z.string().nullable().meta({ description: "The last exception's message, if any" }),
  attemptCount: z.int().min(0),
  idempotencyKey: z.string().nullable(),
  orderingKey: z
    .string()
    .nullable()
    .meta({ description: "Commands of a client with the same key run one at a time, in order" }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
});

export const batchViewSchema = z.object({
  id: uuid,
  name: z.string().nullable(),
  total: z
    .int()
    .min(1)
    .meta({ description: "The commands stored with it (duplicates that answered earlier commands do not join)" }),
  counts: z
    .object(Object.fromEntries(STATES.map((s) => [s, z.int().min(0)])) as Record<State, z.ZodInt>)
    .meta({ description: "Its commands per state (every state, 0 where none)" }),
  done: z.boolean().meta({ description: "Every command is succeeded, failed, exception, compensated or cancelled" }),
  createdAt: z.iso.datetime(),
  doneAt: z.iso.datetime().nullable().meta({ description: "When it last became done; null while open" }),
});

// The documented responses must describe what the server really sends: same
// keys, and every real value accepted (compile-time checks).
type Keys<T> = keyof T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const described = <T extends true>() => undefined as unknown as T;
described<Same<Keys<CommandView>, Keys<z.output<typeof commandViewSchema>>>>();
described<CommandView extends z.input<typeof commandViewSchema> ? true : false>();
described<Same<Keys<BatchView>, Keys<z.output<typeof batchViewSchema>>>>();
described<BatchView extends z.input<typeof batchViewSchema> ? true : false>();
described<Same<Keys<Omit<Receipt, "ok">>, Keys<z.output<typeof receiptSchema>>>>();
// (Receipt.status is typed as a string; it holds a state.)
described<
  Rejection | (Omit<Receipt, "status"> & { status: z.input<typeof stateSchema> }) extends z.input<
    typeof batchReceiptSchema
  >
    ? true
    : false
>();

type JsonSchema = Record<string, unknown>;

/**
 * The formats a document may claim: those the server checks as a validator
 * of that format would. Not "uri": the server's URL fields take what the
 * WHATWG URL parser takes (e.g. `https://payments.internal/charges/{commandId}`),
 * which an RFC 3986 check (ajv-formats) refuses.
 */
const ENFORCED_FORMATS = new Set(["date-time", "uuid"]);

/** The keywords whose values are schemas (one, a list, or a map of them). */
const ONE = [
  "items",
  "additionalProperties",
  "propertyNames",
  "not",
  "contains",
  "if",
  "then",
  "else",
  "unevaluatedItems",
  "unevaluatedProperties",
];
const LIST = ["anyOf", "oneOf", "allOf", "prefixItems"];
const MAP = ["properties", "patternProperties", "$defs", "dependentSchemas"];

/** Applies `fix` to a schema and to every schema inside it. */
function eachSchema(schema: unknown, fix: (s: JsonSchema) => void) {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return;
  const s = schema as JsonSchema;
  fix(s);
  for (const k of ONE) eachSchema(s[k], fix);
  for (const k of LIST) if (Array.isArray(s[k])) for (const x of s[k] as unknown[]) eachSchema(x, fix);
  for (const k of MAP)
    if (s[k] && typeof s[k] === "object") for (const x of Object.values(s[k] as object)) eachSchema(x, fix);
}

const addDescription = (s: JsonSchema, text: string) =>
  void (s.description = s.description ? `${s.description}. ${text}` : text);

/** Drops every format the server does not enforce (see ENFORCED_FORMATS). */
function enforcedFormatsOnly(s: JsonSchema) {
  if (typeof s.format !== "string" || ENFORCED_FORMATS.has(s.format)) return;
  if (s.format === "uri") addDescription(s, "An http:// or https:// URL");
  delete s.format;
}

/**
 * Request side: a field the server fills in when it is left out is optional
 * (z.toJSONSchema with io "input"), and its default is said in words rather
 * than as `default`: client generators such as openapi-typescript read a
 * `default` in a component schema as "always present", and would require it.
 */
function requestSide(s: JsonSchema) {
  enforcedFormatsOnly(s);
  if (!("default" in s)) return;
  addDescription(s, `Default: ${JSON.stringify(s.default)}`);
  delete s.default;
}

/** Builds the document; the command types come from the registry, so a new type is documented with no extra step. */
export function buildOpenApiDocument(registry: Registry, serverUrl: string): Record<string, unknown> {
  // Request schemas describe what a client may send (zod's input side); response schemas what the server sends (its output side).
  const requests = z.registry<{ id: string; description?: string }>();
  const answers = z.registry<{ id: string; description?: string }>();
  const types = registry.names();
  const variants = types.map((name) => {
    const t = registry.get(name)!;
    const variant = submitInput.extend({ type: z.literal(name), payload: t.schema });
    requests.add(variant, {
      id: `SubmitCommand_${name}`,
      ...(t.description ? { description: `A command of type "${name}": ${t.description}` } : {}),
    });
    return variant;
  });
  const submitCommand = variants.length > 0 ? z.union(variants as unknown as [z.ZodType, ...z.ZodType[]]) : submitInput;
  requests.add(submitCommand, {
    id: "SubmitCommand",
    description: "A command: its type, the type's payload, and optional delivery settings",
  });
  requests.add(retryInput, { id: "RetryPolicy", description: "Overrides the type's retry policy for this command" });
  requests.add(
    z.strictObject({ commands: z.array(submitCommand).min(1).max(MAX_BATCH), batch: submitBatchInput.shape.batch }),
    { id: "SubmitBatch" },
  );
  requests.add(getManyInput, { id: "GetMany" });
  answers.add(stateSchema, { id: "State" });
  answers.add(issueSchema, { id: "Issue" });
  answers.add(errorSchema, { id: "Error" });
  answers.add(receiptSchema, { id: "Receipt" });
  answers.add(batchReceiptSchema, { id: "BatchReceipt", description: "One per submitted item, in input order" });
  answers.add(
    z.object({
      receipts: z.array(batchReceiptSchema),
      batchId: uuid.optional().meta({
        description:
          "With `batch`: the batch its stored commands make (absent when none was stored; a retry answered wholly by an earlier batch's commands names that batch)",
      }),
    }),
    { id: "BatchReceipts" },
  );
  answers.add(batchViewSchema, { id: "BatchView" });
  answers.add(commandViewSchema, { id: "CommandView" });
  answers.add(z.object({ items: z.array(commandViewSchema) }), { id: "CommandViews" });

  const convert = (reg: typeof requests, io: "input" | "output", fix: (s: JsonSchema) => void) => {
    const { schemas } = z.toJSONSchema(reg, {
      io,
      unrepresentable: "any",
      uri: (id) => `#/components/schemas/${id}`,
    }) as { schemas: Record<string, JsonSchema> };
    for (const s of Object.values(schemas)) {
      delete s.$schema;
      delete s.$id;
      eachSchema(s, fix);
    }
    return schemas;
  };
  const schemas = { ...convert(requests, "input", requestSide), ...convert(answers, "output", enforcedFormatsOnly) };
  if (variants.length > 0) {
    // Lets client generators pick the payload type from `type`.
    schemas.SubmitCommand = {
      ...schemas.SubmitCommand,
      discriminator: {
        propertyName: "type",
        mapping: Object.fromEntries(types.map((n) => [n, `#/components/schemas/SubmitCommand_${n}`])),
      },
    };
  }

  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const json = (schema: JsonSchema) => ({ "application/json": { schema } });
  const error = (description: string) => ({ description, content: json(ref("Error")) });
  const errors = (...names: (keyof typeof responses)[]) =>
    Object.fromEntries(names.map((n) => [responses[n].status, { $ref: `#/components/responses/${n}` }]));
  const responses = {
    BadRequest: { status: "400", description: "Invalid input (error.issues names each field) or malformed JSON" },
    Unauthorized: { status: "401", description: "No API token, or an unknown or revoked one" },
    NotFound: { status: "404", description: "No such command (or batch), or not one of this client's" },
    Conflict: { status: "409", description: "The idempotencyKey was already used with another type or payload" },
    PayloadTooLarge: { status: "413", description: "The body is larger than MAX_BODY_BYTES (1 MB by default)" },
    TooManyRequests: { status: "429", description: "Over INTAKE_RATE_LIMIT; nothing was stored" },
  } as const;
  const jsonBody = (schema: JsonSchema, description?: string) => ({
    required: true,
    ...(description ? { description } : {}),
    content: json(schema),
  });

  return {
    openapi: "3.1.0",
    info: {
      title: "Conveyor intake API",
      version: "1.0.0",
      description: [
        "Submit commands to Conveyor and read them back, over plain JSON." +
          " The same API is served as tRPC at /api/trpc for TypeScript clients; both share validation, authentication and rate limits.",
        "A submit answers with a receipt at once (never the business result);" +
          " workers carry the command out and its state moves on (pending → running → succeeded, failed, exception…)." +
          " Read it back with GET /api/v1/commands/{id}, or receive it at callbackUrl.",
        "Authenticate with `Authorization: Bearer <api token>`. Every error answers `{ error: { code, message, issues? } }`.",
      ].join("\n\n"),
    },
    servers: [{ url: serverUrl }],
    security: [{ bearerAuth: [] }],
    tags: [{ name: "commands" }, { name: "batches" }],
    paths: {
      "/api/v1/commands": {
        post: {
          operationId: "submitCommand",
          tags: ["commands"],
          summary: "Submit one command",
          description:
            "Stores the command and answers its receipt." +
            " The same client sending the same idempotencyKey again gets the original command (200, duplicate: true);" +
            " the same key with another type or payload is a 409. An unknown type or an invalid payload is a 400 and nothing is stored.",
          requestBody: jsonBody(ref("SubmitCommand")),
          responses: {
            "201": {
              description: "Stored: a new command",
              headers: { Location: { description: "/api/v1/commands/{id}", schema: { type: "string" } } },
              content: json(ref("Receipt")),
            },
            "200": {
              description: "A duplicate: the command first sent with this idempotencyKey",
              content: json(ref("Receipt")),
            },
            ...errors("BadRequest", "Unauthorized", "Conflict", "PayloadTooLarge", "TooManyRequests"),
          },
        },
        get: {
          operationId: "getCommandByIdempotencyKey",
          tags: ["commands"],
          summary: "Read one of this client's commands by its idempotency key",
          parameters: [
            {
              name: "idempotencyKey",
              in: "query",
              required: true,
              schema: { type: "string", minLength: 1, maxLength: 200 },
            },
          ],
          responses: {
            "200": { description: "The command", content: json(ref("CommandView")) },
            ...errors("BadRequest", "Unauthorized", "NotFound"),
          },
        },
      },
      "/api/v1/commands/batch": {
        post: {
          operationId: "submitCommands",
          tags: ["commands"],
          summary: `Submit 1–${MAX_BATCH} commands`,
          description:
            "Answers one receipt per item, in input order." +
            " The valid items are stored together in one transaction; each invalid one answers { ok: false, error } and is not stored." +
            " With `batch`, the commands stored make one batch (batchId): read its progress at GET /api/v1/batches/{id}," +
            " or receive its view at batch.callbackUrl each time it becomes done.",
          requestBody: jsonBody(ref("SubmitBatch")),
          responses: {
            "200": { description: "One receipt per item", content: json(ref("BatchReceipts")) },
            ...errors("BadRequest", "Unauthorized", "PayloadTooLarge", "TooManyRequests"),
          },
        },
      },
      "/api/v1/commands/get-many": {
        post: {
          operationId: "getCommands",
          tags: ["commands"],
          summary: "Read up to 1000 commands by id",
          description:
            "Ids that are unknown or not visible to this client are left out; the others come back in the order asked.",
          requestBody: jsonBody(ref("GetMany")),
          responses: {
            "200": { description: "The commands found", content: json(ref("CommandViews")) },
            ...errors("BadRequest", "Unauthorized", "PayloadTooLarge"),
          },
        },
      },
      "/api/v1/batches/{id}": {
        get: {
          operationId: "getBatch",
          tags: ["batches"],
          summary: "Read one batch: its counts per state and whether it is done",
          description: "A client token sees only its own batches; an admin-scoped token sees all.",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } }],
          responses: {
            "200": { description: "The batch", content: json(ref("BatchView")) },
            ...errors("BadRequest", "Unauthorized", "NotFound"),
          },
        },
      },
      "/api/v1/commands/{id}": {
        get: {
          operationId: "getCommand",
          tags: ["commands"],
          summary: "Read one command",
          description: "A client token sees only its own commands; an admin-scoped token sees all.",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } }],
          responses: {
            "200": { description: "The command", content: json(ref("CommandView")) },
            ...errors("BadRequest", "Unauthorized", "NotFound"),
          },
        },
      },
    },
    components: {
      schemas,
      responses: Object.fromEntries(
        Object.entries(responses).map(([name, r]) => [
          name,
          name === "TooManyRequests"
            ? {
                ...error(r.description),
                headers: {
                  "Retry-After": {
                    description: "Seconds until the client may submit again",
                    schema: { type: "integer", minimum: 1 },
                  },
                },
              }
            : error(r.description),
        ]),
      ),
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "An API token (cvy_…), made with tokens.create or printed by the first npm start",
        },
      },
    },
  };
}
