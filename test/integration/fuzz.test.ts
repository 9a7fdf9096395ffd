// Hostile input against every procedure of /api/trpc (issue #6, hardening).
//
// A few thousand malformed or hostile requests, sent over real HTTP to a real
// server on a real PostgreSQL: wrong types for every field, missing and extra
// fields, huge strings, deeply nested JSON, NUL bytes, lone surrogates, RTL
// marks and emoji, SQL-looking text, prototype-pollution keys, numbers out of
// range, invalid UUIDs and dates, 100,000-item arrays, malformed JSON bodies,
// wrong content types and methods, odd paths, hostile credentials and raw
// HTTP. Generated inputs come from fast-check with a fixed seed (FUZZ_SEED to
// try another), plus a hand-written list of the nastiest cases.
//
// Every answer must be a 4xx with a clear message (a validation error names the
// field in error.data.issues), never a 5xx; the server must keep serving (a
// health probe after each batch); and nothing may be stored: every hostile
// input is invalid by construction, and the rows of every table are counted
// before and after. A last phase sends hostile but *valid* values and checks
// that they are stored and read back exactly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import net from "node:net";
import pino from "pino";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { userWithSession } from "../helpers/fixtures";
import { appRouter } from "../../server/api/root";
import { STATES } from "../../server/engine/states";

const SEED = Number(process.env.FUZZ_SEED ?? 6_2026);
const CONCURRENCY = 16;
const BATCH = 200;
const MB = 1024 * 1024;
const RUNS = Number(process.env.FUZZ_RUNS ?? 90); // generated inputs per procedure and generator

// ---------------------------------------------------------------------------
// Wire format: JSON with a few values JSON.stringify cannot write.

/** A JSON fragment written verbatim (1e309, -0, 2**63 as digits, deep nesting). */
class Raw {
  constructor(readonly json: string) {}
}
const raw = (json: string) => new Raw(json);

/** JSON text of a value; own keys such as "__proto__" are kept, Raw is written as is. */
function ser(v: unknown): string {
  if (v instanceof Raw) return v.json;
  if (Array.isArray(v)) return `[${v.map(ser).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${ser((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** Sets an own property, even "__proto__". */
function put(o: Record<string, unknown>, k: string, v: unknown) {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}
const obj = (entries: [string, unknown][]) =>
  entries.reduce((o, [k, v]) => put(o, k, v), {} as Record<string, unknown>);

function setPath(base: Record<string, unknown>, path: string[], v: unknown): Record<string, unknown> {
  const out = structuredClone(base);
  let o = out;
  for (const k of path.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  put(o, path.at(-1)!, v);
  return out;
}
function delPath(base: Record<string, unknown>, path: string[]): Record<string, unknown> {
  const out = structuredClone(base);
  let o = out;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  delete o[path.at(-1)!];
  return out;
}

const deepArrays = (depth: number) => raw("[".repeat(depth) + "]".repeat(depth));
const deepObjects = (depth: number) => raw('{"a":'.repeat(depth) + "1" + "}".repeat(depth));
const manyItems = (n: number, item = "0") => raw(`[${Array(n).fill(item).join(",")}]`);

/** JSON with object keys sorted (jsonb keeps its own key order). */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------
// Hostile values.

const NASTY_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "a\ud800b",
  "\udc00\ud800",
  "\u202eevil\u202c",
  "\u200f\u200e\u061c",
  "🚀💥👩‍👩‍👧‍👦",
  "e\u0301\u0301\u0301",
  "\ufeff",
  "\uffff\ufffe",
  "'; DROP TABLE commands; --",
  '" OR 1=1 --',
  "' OR '1'='1",
  "1; SELECT pg_sleep(10)",
  "$1",
  "%",
  "_",
  "\\",
  "%_\\%",
  "__proto__",
  "constructor",
  "prototype",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e309",
  "-0",
  "9223372036854775808",
  "0x1F",
  "null",
  "undefined",
  "true",
  "{}",
  "[]",
  "%00",
  "%ZZ",
  "${jndi:ldap://x/a}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "../../../../etc/passwd",
  "\r\nX-Injected: 1",
  "\t\n\u000b\f\r",
  "\u2028\u2029",
];

const str = fc.oneof(
  { arbitrary: fc.constantFrom(...NASTY_STRINGS), weight: 3 },
  { arbitrary: fc.string({ unit: "binary", maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }), weight: 1 },
);
const withNul = fc.tuple(str, str).map(([a, b]) => `${a}\u0000${b}`);
const withLoneSurrogate = fc
  .tuple(str, fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff"), str)
  .map(([a, s, b]) => a + s + b);
const json = fc.jsonValue({ maxDepth: 3 });
const rawNumbers = fc.constantFrom(
  raw("1e309"),
  raw("-1e309"),
  raw("9223372036854775808"),
  raw("-9223372036854775809"),
  raw("1.5"),
  raw("1e-400"),
  raw("-0"),
  raw("123456789012345678901234567890"),
);

type JsonType = "string" | "number" | "boolean" | "null" | "array" | "object";
const byType: Record<JsonType, fc.Arbitrary<unknown>> = {
  string: str,
  number: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), rawNumbers),
  boolean: fc.boolean(),
  null: fc.constant(null),
  array: fc.array(json, { maxLength: 4 }),
  object: fc.dictionary(str, json, { maxKeys: 4 }),
};
/** A value of any JSON type but these. */
const notA = (...types: JsonType[]) =>
  fc.oneof(...(Object.keys(byType) as JsonType[]).filter((t) => !types.includes(t)).map((t) => byType[t]));

const UUID_LIKE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const uuid = () => crypto.randomUUID();
const badUuid = fc.oneof(
  notA("string"),
  str.filter((s) => !UUID_LIKE.test(s)),
  fc.constantFrom(
    "00000000-0000-0000-0000-00000000000g",
    "{00000000-0000-4000-8000-000000000000}",
    "00000000000040008000000000000000",
    "00000000-0000-4000-8000-000000000000\n",
    "00000000-0000-4000-8000-000000000000\u0000",
    " 00000000-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-0000000000000",
    "' OR '1'='1",
  ),
);

/** Integers outside [min, max], non-integers and other types. */
const badInt = (min: number, max: number) =>
  fc
    .oneof(
      notA("number"),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
      fc.integer({ max: min - 1 }),
      fc.integer({ min: max + 1 }),
      fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63), 1e300, 0.5),
      fc.constantFrom(raw("1e309"), raw("-1e309"), raw("9223372036854775808"), raw("1.5")),
      fc.constantFrom("1", "NaN", "1e309", "-0", "0x10", String(min)),
      ...(min > 0 ? [fc.constantFrom(raw("-0"), raw("1e-400"), 0)] : []),
    )
    .filter((v) => !(typeof v === "number" && Number.isInteger(v) && v >= min && v <= max));
const badNumber = (min: number, max: number) =>
  fc.oneof(
    notA("number"),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => d < min || d > max),
    fc.constantFrom(raw("1e309"), raw("-1e309"), "5", "NaN", max + 1, min - 1),
  );
const badBool = notA("boolean");
const badEnum = (values: readonly string[]) =>
  fc.oneof(
    notA("string"),
    str.filter((s) => !values.includes(s)),
    fc
      .constantFrom(...values.flatMap((v) => [v.toUpperCase(), ` ${v}`, `${v}\u0000`, `${v}\u200b`]))
      .filter((s) => !values.includes(s)),
  );
/** Strings refused by a `text(max)`-like field: empty, too long, NUL, and other types. */
const badText = (max: number, opts: { empty?: boolean } = {}) =>
  fc.oneof(
    notA("string"),
    fc.integer({ min: max + 1, max: max + 300 }).map((n) => "x".repeat(n)),
    withNul,
    ...(opts.empty === false ? [] : [fc.constant("")]),
  );
const badDateTime = fc.oneof(
  notA("string"),
  str.filter((s) => !/^\d{4}-\d\d-\d\dT/.test(s)),
  fc.constantFrom(
    "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z",
    "2024-01-01T23:59:60Z",
    "2024-01-01",
    "2024-01-01T00:00:00",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00+2400",
    "0000-01-01T00:00:00Z",
    "0000-12-31T23:59:59+01:00",
    "2024-01-01T00:00:00+16:00",
    "2024-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-20:00",
    "-000001-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z",
    "1714000000000",
    "now",
  ),
);
const badEmail = fc.oneof(
  notA("string"),
  str.filter((s) => !s.includes("@")),
  fc.constantFrom(
    "a@",
    "@b.example",
    "a@b",
    "a b@c.example",
    "a@b.example\u0000",
    "a\u0000@b.example",
    `${"x".repeat(195)}@a.example`,
    "a@b.example'; DROP TABLE users; --",
  ),
);
/** Whether the URL parser would read it as http(s): it drops tabs and newlines anywhere and C0 controls and spaces around. */
// eslint-disable-next-line no-control-regex -- C0 controls are exactly what the URL parser strips
const looksHttp = (s: string) => /^https?:/i.test(s.replace(/[\t\n\r]/g, "").replace(/^[\u0000-\u0020]+/, ""));
const badUrl = (max: number) =>
  fc.oneof(
    notA("string"),
    str.filter((s) => !looksHttp(s)),
    fc.constantFrom(
      "ftp://x.example/",
      "javascript:alert(1)",
      "file:///etc/passwd",
      "data:text/html,x",
      "http://",
      "https://",
      "http://[::1",
      "http://a b.example/",
      "http://x\u0000y.example/",
      "gopher://x.example/",
    ),
    fc.constant(`https://x.example/${"a".repeat(max)}`),
  );
/** Objects that carry a key the strict schemas do not know. */
const extraKey = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "",
    "\u0000",
    "\ud800",
    "💥",
    "'; DROP TABLE commands; --",
    "a".repeat(10_000),
  ),
  str,
);

// ---------------------------------------------------------------------------
// Procedures, who calls them, and how each field can be made invalid.

type Caller = "none" | "client" | "adminToken" | "adminSession";
type Field = { bad: fc.Arbitrary<unknown>; required?: boolean };
type Spec = {
  path: string;
  kind: "query" | "mutation";
  callers: Caller[];
  /** A valid input (null: the procedure takes none). */
  base: (() => Record<string, unknown>) | null;
  fields?: Record<string, Field>;
  /** Objects (dotted paths) whose unknown keys are refused; "" is the input itself. */
  strict?: string[];
  /** Hostile values that are valid (queries only): any answer but a 5xx. */
  nasty?: fc.Arbitrary<unknown>;
};

const intakeCallers: Caller[] = ["client", "adminToken"];
const consoleCallers: Caller[] = ["adminToken", "adminSession"];

const submitBase = () => ({ type: "http", payload: { url: "https://backend.example/orders" } });
/** The invalid ways of one intake command (intake.submit, and items of intake.submitBatch). */
const submitFields: Record<string, Field> = {
  type: {
    required: true,
    bad: fc.oneof(
      badText(64),
      str.filter((s) => s !== "http"),
    ),
  },
  payload: {
    required: true,
    bad: fc.oneof(
      notA("object"),
      fc.constant({}),
      fc.record({
        url: fc.constant("https://x.example/"),
        body: fc.oneof(
          withNul,
          fc.dictionary(withNul, json, { minKeys: 1, maxKeys: 2 }),
          fc.array(withNul, { minLength: 1, maxLength: 3 }),
        ),
      }),
      fc.record({
        url: fc.constant("https://x.example/"),
        body: fc.oneof(
          withLoneSurrogate,
          fc.dictionary(withLoneSurrogate, json, { minKeys: 1, maxKeys: 2 }),
          fc.array(withLoneSurrogate, { minLength: 1, maxLength: 3 }),
        ),
      }),
      fc.record({
        url: fc.constant("https://x.example/"),
        headers: fc.dictionary(withNul, fc.string(), { minKeys: 1, maxKeys: 2 }),
      }),
    ),
  },
  "payload.url": { required: true, bad: badUrl(4096) },
  "payload.method": { bad: badEnum(["GET", "POST", "PUT", "PATCH", "DELETE"]) },
  "payload.headers": {
    bad: fc.oneof(
      notA("object"),
      fc.dictionary(fc.constantFrom("", "X Bad", "Bad:Header", "é", "a\u0000", "a\nb"), fc.string(), {
        minKeys: 1,
        maxKeys: 2,
      }),
      fc.dictionary(fc.constantFrom("X-Ok"), notA("string"), { minKeys: 1, maxKeys: 1 }),
      fc.constant({ "X-Big": "x".repeat(8193) }),
    ),
  },
  "payload.timeoutMs": { bad: badInt(100, 300_000) },
  "payload.statusUrl": { bad: badUrl(4096) },
  "payload.compensateUrl": { bad: badUrl(4096) },
  "payload.failureStatuses": {
    bad: fc.oneof(
      notA("array"),
      fc.array(badInt(100, 599), { minLength: 1, maxLength: 3 }),
      fc.constant(manyItems(501, "500")),
    ),
  },
  "payload.idempotent": { bad: badBool },
  idempotencyKey: { bad: badText(200) },
  callbackUrl: { bad: badUrl(2048) },
  priority: { bad: badInt(-1000, 1000) },
  runAt: { bad: badDateTime },
  retry: { bad: notA("object") },
  "retry.maxAttempts": { bad: badInt(1, 100) },
  "retry.backoffMs": { bad: badInt(0, 86_400_000) },
  "retry.maxBackoffMs": { bad: badInt(0, 7 * 86_400_000) },
};

const filterFields = (prefix: string): Record<string, Field> => ({
  [`${prefix}status`]: {
    bad: fc.oneof(
      notA("array"),
      fc.array(badEnum(STATES), { minLength: 1, maxLength: 3 }),
      fc.constant(Array(STATES.length + 1).fill("pending")),
    ),
  },
  [`${prefix}type`]: { bad: fc.oneof(notA("string"), fc.constant("t".repeat(65)), withNul) },
  [`${prefix}q`]: { bad: fc.oneof(notA("string"), fc.constant("q".repeat(501)), withNul) },
  [`${prefix}createdAfter`]: { bad: badDateTime },
  [`${prefix}createdBefore`]: { bad: badDateTime },
  [`${prefix}batchId`]: { bad: badUuid },
});
const badIds = fc.oneof(
  notA("array"),
  fc.constant([]),
  fc.array(badUuid, { minLength: 1, maxLength: 3 }),
  fc.constant(manyItems(1001, `"${uuid()}"`)),
);
const badReason = fc.oneof(notA("string"), fc.constant("r".repeat(1001)), withNul);
const actionFields: Record<string, Field> = { ids: { required: true, bad: badIds }, reason: { bad: badReason } };

/** Flow scopes (DESIGN §7): exactly one of type or host; a host name only; a registered type. */
const badScope = fc.oneof(
  notA("object"),
  fc.constantFrom({}, { type: "http", host: "a.example" }, { name: "http" }, { type: null }, { host: null }),
);
const badHost = fc.oneof(
  notA("string"),
  fc.constantFrom(
    "",
    "   ",
    "a.example:8080",
    "https://a.example",
    "a.example/x",
    "user@a.example",
    "a b.example",
    "a.example?x",
    "a%41.example",
    "[::1]:80",
    "a\u0000b",
    "h".repeat(254),
  ),
);
const badScopeType = fc.oneof(badText(64), fc.constantFrom("no-such-type", "HTTP", "http ", "http\u0000"));
const ruleBase = () => ({ name: "fuzz rule", kind: "backlog", threshold: 5, recipients: ["ops@example.com"] });
const ruleFields: Record<string, Field> = {
  name: {
    required: true,
    bad: fc.oneof(notA("string"), fc.constantFrom("", " ", "\t\n "), fc.constant("n".repeat(201)), withNul),
  },
  kind: { required: true, bad: badEnum(["count", "stuck", "rate", "backlog", "latency", "circuit"]) },
  states: {
    bad: fc.oneof(
      notA("array"),
      fc.array(badEnum(STATES), { minLength: 1, maxLength: 3 }),
      fc.constant(Array(STATES.length + 1).fill("failed")),
    ),
  },
  type: { bad: fc.oneof(notA("string"), fc.constant(""), fc.constant("t".repeat(65)), withNul) },
  windowSeconds: { bad: badInt(10, 30 * 86400) },
  ageSeconds: { bad: badInt(10, 30 * 86400) },
  threshold: { required: true, bad: badNumber(0, 1_000_000_000) },
  recipients: {
    required: true,
    bad: fc.oneof(
      notA("array"),
      fc.constant([]),
      fc.array(badEmail, { minLength: 1, maxLength: 3 }),
      fc.constant(Array(51).fill("a@example.com")),
    ),
  },
  webhooks: {
    bad: fc.oneof(
      notA("array"),
      fc.array(badUrl(2048), { minLength: 1, maxLength: 3 }),
      fc.constant(Array(21).fill("https://hooks.example/x")),
    ),
  },
  percentile: { bad: badNumber(Number.MIN_VALUE, 100) },
  cooldownSeconds: { bad: badInt(60, 7 * 86400) },
  notifyOnResolve: { bad: badBool },
  enabled: { bad: badBool },
  silencedUntil: { bad: badDateTime.filter((v) => v !== null) },
};
const password = fc.oneof(notA("string"), fc.string({ maxLength: 11 }), fc.constant("p".repeat(201)));

const scheduleBase = () => ({ name: "fuzz schedule", cron: "0 3 * * *", command: submitBase() });
/** A schedule's command: intake's fields but its own key, run time and ordering key, under `command`. */
const scheduleCommandFields: Record<string, Field> = Object.fromEntries(
  Object.entries(submitFields)
    .filter(([f]) => !["idempotencyKey", "runAt", "orderingKey"].includes(f))
    .map(([f, v]) => [`command.${f}`, v]),
);
const scheduleFields: Record<string, Field> = {
  name: ruleFields.name!,
  cron: {
    required: true,
    bad: fc.oneof(
      notA("string"),
      fc.constantFrom("", "* * *", "* * * *", "* * * * * * *", "@daily", "61 * * * *", "* 24 * * *", "0 0 30 2 *"),
      fc.constantFrom("*/0 * * * *", "a b c d e", "* * * * \u0000", "L * * * *"),
      fc.constant("* ".repeat(120)),
    ),
  },
  timezone: {
    bad: fc.oneof(
      notA("string"),
      fc.constantFrom("", "Mars/Olympus", "+02:00", "UTC ", "../etc/passwd", "Europe/", "\u0000"),
      fc.constant("Z".repeat(101)),
    ),
  },
  command: { required: true, bad: notA("object") },
  ...scheduleCommandFields,
  enabled: { bad: badBool },
};

const SPECS: Spec[] = [
  {
    path: "intake.submit",
    kind: "mutation",
    callers: intakeCallers,
    base: submitBase,
    fields: submitFields,
    strict: ["", "payload", "retry"],
  },
  {
    path: "intake.submitBatch",
    kind: "mutation",
    callers: intakeCallers,
    base: () => ({ commands: [submitBase()] }),
    fields: {
      commands: { required: true, bad: fc.oneof(notA("array"), fc.constant([]), fc.constant(manyItems(1001, "{}"))) },
      batch: { bad: notA("object") },
      "batch.name": { bad: badText(200) },
      "batch.callbackUrl": { bad: badUrl(2048) },
    },
    strict: ["", "batch"],
  },
  {
    path: "intake.get",
    kind: "query",
    callers: intakeCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
    nasty: fc.oneof(fc.record({ idempotencyKey: str }), fc.record({ id: fc.uuid() })),
  },
  {
    path: "intake.getMany",
    kind: "query",
    callers: intakeCallers,
    base: () => ({ ids: [uuid()] }),
    fields: {
      ids: {
        required: true,
        bad: fc.oneof(
          notA("array"),
          fc.array(badUuid, { minLength: 1, maxLength: 3 }),
          fc.constant(manyItems(1001, `"${uuid()}"`)),
        ),
      },
    },
    strict: [""],
    nasty: fc.record({ ids: fc.array(fc.uuid(), { maxLength: 20 }) }),
  },
  {
    path: "commands.list",
    kind: "query",
    callers: consoleCallers,
    base: () => ({}),
    fields: {
      ...filterFields(""),
      cursor: { bad: fc.oneof(notA("string"), fc.constant("c".repeat(201)), withNul) },
      limit: { bad: badInt(1, 200) },
    },
    strict: [""],
    nasty: fc.record(
      {
        status: fc.subarray([...STATES]),
        type: str,
        q: str,
        cursor: fc.oneof(
          str,
          fc.string({ unit: "binary" }).map((s) => Buffer.from(s).toString("base64url")),
          fc.tuple(str, str).map(([a, b]) => Buffer.from(`${a}|${b}`).toString("base64url")),
        ),
        limit: fc.integer({ min: 1, max: 200 }),
      },
      { requiredKeys: [] },
    ),
  },
  { path: "commands.counts", kind: "query", callers: consoleCallers, base: null },
  {
    path: "commands.countMatching",
    kind: "query",
    callers: consoleCallers,
    base: () => ({}),
    fields: filterFields(""),
    strict: [""],
    nasty: fc.record({ status: fc.subarray([...STATES]), type: str, q: str }, { requiredKeys: [] }),
  },
  {
    path: "commands.preview",
    kind: "query",
    callers: consoleCallers,
    base: () => ({ ids: [uuid()] }),
    fields: { ids: { required: true, bad: badIds } },
    strict: [""],
    nasty: fc.record({ ids: fc.array(fc.uuid(), { minLength: 1, maxLength: 20 }) }),
  },
  {
    path: "commands.preview",
    kind: "query",
    callers: consoleCallers,
    base: () => ({ filter: { status: ["failed"] } }),
    fields: filterFields("filter."),
    strict: ["", "filter"],
  },
  { path: "commands.overview", kind: "query", callers: consoleCallers, base: null },
  { path: "commands.types", kind: "query", callers: consoleCallers, base: null },
  {
    path: "commands.get",
    kind: "query",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
    nasty: fc.record({ id: fc.uuid() }),
  },
  ...(["retry", "compensate", "cancel"] as const).map((a): Spec => ({
    path: `commands.${a}`,
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ ids: [uuid()], reason: "fuzz" }),
    fields: actionFields,
    strict: [""],
  })),
  // The same actions on "all that match a filter", with the filter made invalid.
  ...(["retry", "cancel"] as const).map((a): Spec => ({
    path: `commands.${a}`,
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ filter: { status: ["failed"] } }),
    fields: { ...filterFields("filter."), reason: { bad: badReason } },
    strict: ["", "filter"],
  })),
  {
    path: "commands.resolve",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ ids: [uuid()], outcome: "failed", reason: "checked" }),
    fields: {
      ...actionFields,
      outcome: { required: true, bad: badEnum(["succeeded", "failed"]) },
      reason: { required: true, bad: fc.oneof(badReason, fc.constantFrom("", "   ")) },
    },
    strict: [""],
  },
  { path: "tokens.list", kind: "query", callers: consoleCallers, base: null },
  {
    path: "tokens.create",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ name: "fuzz", scope: "client" }),
    fields: {
      name: { required: true, bad: badText(200) },
      scope: { required: true, bad: badEnum(["client", "admin"]) },
    },
    strict: [""],
  },
  {
    path: "tokens.revoke",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  {
    path: "tokens.rotateSecret",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  { path: "users.list", kind: "query", callers: consoleCallers, base: null },
  {
    path: "users.create",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ email: "fuzz@example.com", password: "a long enough password", role: "viewer" }),
    fields: {
      email: { required: true, bad: badEmail },
      password: { required: true, bad: password },
      role: { required: true, bad: badEnum(["viewer", "operator", "admin"]) },
    },
    strict: [""],
  },
  {
    path: "users.update",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid(), role: "viewer", disabled: false }),
    fields: {
      id: { required: true, bad: badUuid },
      role: { bad: badEnum(["viewer", "operator", "admin"]) },
      disabled: { bad: badBool },
    },
    strict: [""],
  },
  {
    path: "audit.list",
    kind: "query",
    callers: consoleCallers,
    base: () => ({}),
    fields: {
      cursor: {
        bad: fc.oneof(
          notA("string"),
          str.filter((s) => !/^\d+$/.test(s)),
          fc.constantFrom("99999999999999999999", "9223372036854775808", "1".repeat(200)),
        ),
      },
      limit: { bad: badInt(1, 200) },
    },
    strict: [""],
    nasty: fc.record(
      { cursor: fc.stringMatching(/^\d{1,15}$/), limit: fc.integer({ min: 1, max: 200 }) },
      { requiredKeys: [] },
    ),
  },
  { path: "auth.me", kind: "query", callers: ["none", "client", "adminToken", "adminSession"], base: null },
  {
    path: "auth.changePassword",
    kind: "mutation",
    callers: ["adminSession"],
    base: () => ({ current: "whatever it was", next: "another long password" }),
    fields: {
      current: { required: true, bad: fc.oneof(notA("string"), fc.constant(""), fc.constant("c".repeat(201))) },
      next: { required: true, bad: password },
    },
    strict: [""],
  },
  { path: "alerts.listRules", kind: "query", callers: consoleCallers, base: null },
  {
    path: "alerts.history",
    kind: "query",
    callers: consoleCallers,
    base: () => ({}),
    fields: { ruleId: { bad: badUuid }, limit: { bad: badInt(1, 500) } },
    strict: [""],
    nasty: fc.record({ ruleId: fc.uuid(), limit: fc.integer({ min: 1, max: 500 }) }, { requiredKeys: [] }),
  },
  {
    path: "alerts.createRule",
    kind: "mutation",
    callers: consoleCallers,
    base: ruleBase,
    fields: ruleFields,
    strict: [""],
  },
  {
    path: "alerts.updateRule",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid(), ...ruleBase() }),
    fields: { id: { required: true, bad: badUuid }, ...ruleFields },
    strict: [""],
  },
  {
    path: "alerts.deleteRule",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  {
    path: "alerts.testRule",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  { path: "flow.list", kind: "query", callers: consoleCallers, base: null },
  {
    path: "flow.setLimit",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ scope: { host: "api.example.com" }, ratePerSecond: 5, circuit: { threshold: 3 } }),
    fields: {
      scope: { required: true, bad: badScope },
      "scope.host": { bad: badHost },
      concurrency: { bad: badInt(1, 1_000_000) },
      ratePerSecond: { bad: badNumber(Number.MIN_VALUE, 1_000_000) },
      burst: { bad: badInt(1, 1_000_000) },
      "circuit.threshold": { bad: badInt(1, 10_000) },
      "circuit.cooldownSeconds": { bad: badInt(1, 3600) },
      reason: { bad: badReason },
    },
    strict: ["", "scope", "circuit"],
  },
  {
    path: "flow.removeLimit",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ scope: { type: "http" } }),
    fields: {
      scope: { required: true, bad: badScope },
      "scope.type": { bad: badScopeType },
      reason: { bad: badReason },
    },
    strict: ["", "scope"],
  },
  {
    path: "flow.pause",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ scope: { host: "api.example.com" }, reason: "fuzz" }),
    fields: {
      scope: { required: true, bad: badScope },
      "scope.host": { bad: badHost },
      reason: { required: true, bad: fc.oneof(badReason, fc.constantFrom("", "   ")) },
    },
    strict: ["", "scope"],
  },
  {
    path: "flow.resume",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ scope: { type: "http" } }),
    fields: {
      scope: { required: true, bad: badScope },
      "scope.type": { bad: badScopeType },
      reason: { bad: badReason },
    },
    strict: ["", "scope"],
  },
  // Appended last: each spec's samples are seeded by its place in this list.
  { path: "schedules.list", kind: "query", callers: consoleCallers, base: null },
  {
    path: "schedules.create",
    kind: "mutation",
    callers: consoleCallers,
    base: scheduleBase,
    fields: scheduleFields,
    strict: ["", "command", "command.payload", "command.retry"],
  },
  {
    path: "schedules.update",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid(), ...scheduleBase() }),
    fields: { id: { required: true, bad: badUuid }, ...scheduleFields },
    strict: ["", "command", "command.payload", "command.retry"],
  },
  {
    path: "schedules.delete",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  {
    path: "schedules.runNow",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  {
    path: "intake.getBatch",
    kind: "query",
    callers: intakeCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  {
    path: "batches.list",
    kind: "query",
    callers: consoleCallers,
    base: () => ({}),
    fields: {
      limit: { bad: badInt(1, 100) },
      cursor: { bad: fc.oneof(notA("string"), fc.constant("c".repeat(201)), withNul) },
    },
    strict: [""],
    nasty: fc.record({ cursor: str }),
  },
  {
    path: "batches.get",
    kind: "query",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
  {
    path: "commands.editAndRetry",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid(), payload: { url: "https://x.example/" }, reason: "fuzz" }),
    fields: {
      id: { required: true, bad: badUuid },
      reason: { required: true, bad: fc.oneof(badReason, fc.constantFrom("", "   ")) },
    },
    strict: [""],
  },
  {
    path: "alerts.rotateWebhookSecret",
    kind: "mutation",
    callers: consoleCallers,
    base: () => ({ id: uuid() }),
    fields: { id: { required: true, bad: badUuid } },
    strict: [""],
  },
];

// ---------------------------------------------------------------------------
// Cases: a request and what must come back.

type Expect =
  /** A 4xx; for a validation error, an issue at (or under) `field`, or naming `key` there. */
  | { kind: "reject"; field?: (string | number)[]; key?: string; statuses?: number[] }
  /** intake.submitBatch: 200, and every receipt refused, each naming its field. */
  | { kind: "receipts"; items: { field: (string | number)[]; key?: string }[] }
  /** Valid but hostile (queries): anything but a 5xx. */
  | { kind: "no5xx" };
type Req = {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** sent chunked, with no Content-Length */ stream?: boolean;
};
type Case = {
  label: string;
  req?: Req;
  rawHttp?: Buffer;
  expect: Expect;
  /** answered in the REST facade's error shape */ rest?: boolean;
};
type Outcome = { status: number; text: string };

const who: Record<Caller, Record<string, string>> = { none: {}, client: {}, adminToken: {}, adminSession: {} };

/** The request for one procedure call, as a client would send it. */
function callReq(
  spec: Pick<Spec, "path" | "kind">,
  caller: Caller,
  input: unknown,
  opts: { post?: boolean; contentType?: string | null } = {},
): Req {
  const headers = { ...who[caller] };
  const body = input === undefined ? undefined : ser(input);
  if (spec.kind === "query" && !opts.post && (body === undefined || body.length < 4000)) {
    return {
      method: "GET",
      path: `/api/trpc/${spec.path}${body === undefined ? "" : `?input=${encodeURIComponent(body)}`}`,
      headers,
    };
  }
  const ct = opts.contentType === undefined ? "application/json" : opts.contentType;
  return {
    method: "POST",
    path: `/api/trpc/${spec.path}`,
    headers: {
      ...headers,
      ...(ct ? { "content-type": ct } : {}),
      ...(spec.kind === "query" ? { "x-trpc-method-override": "1" } : {}),
    },
    body: body ?? "",
  };
}

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  null,
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "application/xml",
];
const transport = fc.record({ post: fc.boolean(), contentType: fc.constantFrom(...CONTENT_TYPES) });

type Mut = { input: unknown; field: (string | number)[]; key?: string };

/** Inputs made invalid in exactly one known way (plus hostile noise that cannot make them valid). */
function invalidInputs(spec: Spec): fc.Arbitrary<Mut> {
  const base = spec.base!;
  const fields = Object.entries(spec.fields ?? {});
  const known = (parent: string) =>
    new Set([
      ...Object.keys(parent ? ((parent.split(".").reduce((o: any, k) => o?.[k], base()) as object) ?? {}) : base()),
      ...fields
        .map(([f]) => f)
        .filter((f) =>
          parent ? f.startsWith(`${parent}.`) && !f.slice(parent.length + 1).includes(".") : !f.includes("."),
        )
        .map((f) => f.split(".").at(-1)!),
    ]);
  const arbs: fc.Arbitrary<Mut>[] = [];
  if (fields.length) {
    arbs.push(
      fc
        .constantFrom(...fields)
        .chain(([f, s]) => s.bad.map((v) => ({ input: setPath(base(), f.split("."), v), field: f.split(".") }))),
    );
    const required = fields.filter(([, s]) => s.required).map(([f]) => f);
    if (required.length)
      arbs.push(
        fc.constantFrom(...required).map((f) => ({ input: delPath(base(), f.split(".")), field: f.split(".") })),
      );
  }
  for (const parent of spec.strict ?? []) {
    const k = known(parent);
    arbs.push(
      fc
        .tuple(
          extraKey.filter((key) => !k.has(key)),
          json,
        )
        .map(([key, v]) => {
          const input = parent
            ? setPath(
                base(),
                parent.split("."),
                put(structuredClone(parent.split(".").reduce((o: any, p) => o?.[p], base()) ?? {}), key, v),
              )
            : put(base(), key, v);
          return { input, field: parent ? parent.split(".") : [], key };
        }),
    );
  }
  arbs.push(
    fc
      .oneof(byType.string, byType.number, byType.boolean, byType.null, byType.array)
      .map((v) => ({ input: v, field: [] })),
  );
  return fc.oneof(...arbs);
}

function generatedCases(): Case[] {
  const cases: Case[] = [];
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number) =>
    fc.sample(arb, { seed: SEED + salt, numRuns: n });
  SPECS.forEach((spec, i) => {
    const callers = fc.constantFrom(...spec.callers);
    if (spec.base) {
      for (const [m, caller, t] of sample(
        fc.tuple(invalidInputs(spec), callers, transport),
        RUNS * (spec.fields ? Math.min(3, 1 + Math.floor(Object.keys(spec.fields).length / 4)) : 1),
        i,
      )) {
        cases.push({
          label:
            `${spec.path} (${caller}) invalid ${m.key !== undefined ? `extra key ${JSON.stringify(m.key.slice(0, 30))} at` : ""}` +
            ` ${JSON.stringify(m.field)}`,
          req: callReq(spec, caller, m.input, t),
          expect: { kind: "reject", field: m.field, key: m.key },
        });
      }
    } else {
      // No input: whatever is sent is ignored, but must not break anything.
      for (const [v, caller, t] of sample(
        fc.tuple(fc.oneof(json, fc.constant(raw("{")), fc.constant(raw("%ZZ"))), callers, transport),
        20,
        i,
      )) {
        cases.push({
          label: `${spec.path} (${caller}) with ignored input`,
          req: callReq(spec, caller, v, t),
          expect: { kind: "no5xx" },
        });
      }
    }
    if (spec.nasty) {
      for (const [v, caller, t] of sample(fc.tuple(spec.nasty, callers, transport), RUNS, 1000 + i)) {
        cases.push({
          label: `${spec.path} (${caller}) hostile valid-looking input`,
          req: callReq(spec, caller, v, t),
          expect: { kind: "no5xx" },
        });
      }
    }
  });
  // Batches whose every item is invalid: one receipt each, naming the field.
  const submit = SPECS[0]!;
  const items = fc.array(invalidInputs(submit), { minLength: 1, maxLength: 4 });
  for (const [list, caller] of sample(fc.tuple(items, fc.constantFrom(...intakeCallers)), RUNS * 2, 5000)) {
    cases.push({
      label: `intake.submitBatch (${caller}) items invalid at ${list.map((m) => JSON.stringify(m.field)).join(", ")}`,
      req: callReq({ path: "intake.submitBatch", kind: "mutation" }, caller, { commands: list.map((m) => m.input) }),
      expect: { kind: "receipts", items: list.map((m, i) => ({ field: ["commands", i, ...m.field], key: m.key })) },
    });
  }
  return cases;
}

/** The nastiest cases, written out, against every procedure. */
const NUL_OK = new Set(["password", "next", "current"]);
function handWrittenCases(): Case[] {
  const cases: Case[] = [];
  const all = Object.entries(
    appRouter._def.procedures as unknown as Record<string, { _def: { type: "query" | "mutation" } }>,
  ).map(([path, p]) => ({ path, kind: p._def.type }));
  const callerOf = (path: string): Caller =>
    path.startsWith("intake.") ? "client" : path === "auth.me" ? "none" : "adminSession";
  const hugeString = "x".repeat(MB - 200);
  for (const p of all) {
    const spec = SPECS.find((s) => s.path === p.path)!;
    const takesInput = !!spec.base;
    const caller = callerOf(p.path);
    const reject = takesInput ? ({ kind: "reject" } as const) : ({ kind: "no5xx" } as const);
    const firstField = spec.fields ? Object.keys(spec.fields)[0]!.split(".") : [];
    const add = (
      label: string,
      input: unknown,
      expect: Expect = reject,
      opts: { post?: boolean; contentType?: string | null } = {},
    ) => cases.push({ label: `${p.path}: ${label}`, req: callReq(p, caller, input, { post: true, ...opts }), expect });
    const withField = (): Expect => (takesInput ? { kind: "reject", field: firstField } : { kind: "no5xx" });
    const base = spec.base ?? (() => ({}));

    // Size
    add("1 MB string as the input: too large", raw(JSON.stringify("x".repeat(MB))), {
      kind: "reject",
      statuses: [413],
    });
    add(
      "body over 1 MB in a field: too large",
      setPath(base(), firstField.length ? firstField : ["x"], "x".repeat(MB + 1)),
      { kind: "reject", statuses: [413] },
    );
    add(
      "string just under 1 MB in the first field",
      setPath(base(), firstField.length ? firstField : ["x"], hugeString),
      withField(),
    );
    add(
      "key just under 1 MB",
      put(base(), "k".repeat(MB - 500), 1),
      takesInput ? { kind: "reject", field: [] } : { kind: "no5xx" },
    );
    // Depth
    add(
      "arrays nested 10,000 deep as the input",
      deepArrays(10_000),
      takesInput ? { kind: "reject", field: [] } : { kind: "no5xx" },
    );
    add(
      "objects nested 10,000 deep as the input",
      deepObjects(10_000),
      takesInput ? { kind: "reject", field: [] } : { kind: "no5xx" },
    );
    add(
      "arrays nested 100,000 deep as the input",
      deepArrays(100_000),
      takesInput ? { kind: "reject", field: [] } : { kind: "no5xx" },
    );
    if (firstField.length) {
      add(
        "arrays nested 10,000 deep in the first field",
        setPath(base(), firstField, raw(`{"a":${deepArrays(10_000).json}}`)),
        withField(),
      );
      add(
        "objects nested 10,000 deep in the first field",
        setPath(base(), firstField, deepObjects(10_000)),
        withField(),
      );
    }
    // Width
    add(
      "100,000-item array as the input",
      manyItems(100_000),
      takesInput ? { kind: "reject", field: [] } : { kind: "no5xx" },
    );
    for (const f of Object.keys(spec.fields ?? {})) {
      if (/status|ids|commands|recipients|states|failureStatuses/.test(f)) {
        add(`100,000 items in ${f}`, setPath(base(), f.split("."), manyItems(100_000, '"pending"')), {
          kind: "reject",
          field: f.split("."),
        });
        add(
          `100,000 objects in ${f}`,
          setPath(base(), f.split("."), manyItems(100_000, '{"__proto__":{"polluted":1}}')),
          { kind: "reject", field: f.split(".") },
        );
      }
    }
    // Prototype pollution
    add(
      "__proto__ key",
      put(base(), "__proto__", { polluted: true }),
      takesInput ? { kind: "reject", field: [], key: "__proto__" } : { kind: "no5xx" },
    );
    add(
      "constructor.prototype key",
      put(base(), "constructor", { prototype: { polluted: true } }),
      takesInput ? { kind: "reject", field: [], key: "constructor" } : { kind: "no5xx" },
    );
    add(
      "__proto__ as the whole input",
      raw('{"__proto__":{"polluted":true,"isAdmin":true}}'),
      takesInput ? { kind: "reject" } : { kind: "no5xx" },
    );
    // Every field: NUL (refused everywhere but in passwords, which are never stored), then
    // values some fields accept: a mutation gets an unknown key too, so that nothing is stored.
    for (const f of Object.keys(spec.fields ?? {})) {
      const fp = f.split(".");
      for (const v of ["a\u0000b", "\u0000"]) {
        if (NUL_OK.has(f))
          add(`${f} = ${JSON.stringify(v)} (+ unknown key)`, put(setPath(base(), fp, v), "zz-fuzz", 1), {
            kind: "reject",
            field: [],
            key: "zz-fuzz",
          });
        else add(`${f} = ${JSON.stringify(v)}`, setPath(base(), fp, v), { kind: "reject", field: fp });
      }
      for (const v of [
        raw("1e309"),
        raw("-1e309"),
        raw("9223372036854775808"),
        raw("-0"),
        "'; DROP TABLE commands; --",
        "\ud800",
        "\u202e🚀",
        [],
        {},
        null,
        true,
      ]) {
        const label = `${f} = ${v instanceof Raw ? v.json : JSON.stringify(v)}`;
        if (p.kind === "mutation")
          add(`${label} (+ unknown key)`, put(setPath(base(), fp, v), "zz-fuzz", 1), {
            kind: "reject",
            field: [],
            key: "zz-fuzz",
          });
        else add(label, setPath(base(), fp, v), { kind: "no5xx" });
      }
    }
    // Dates zod's ISO format allows but PostgreSQL refuses (year 0, offsets beyond ±15:59), and impossible ones.
    for (const f of Object.keys(spec.fields ?? {}).filter((f) =>
      /runAt|createdAfter|createdBefore|silencedUntil/.test(f),
    )) {
      for (const d of [
        "0000-01-01T00:00:00Z",
        "0000-12-31T23:59:59.999+00:00",
        "2024-01-01T00:00:00+16:00",
        "2024-06-01T12:00:00-23:59",
        "9999-12-31T23:59:59+23:00",
        "2024-02-30T00:00:00Z",
        "2023-02-29T12:00:00Z",
        "2024-04-31T00:00:00Z",
      ]) {
        add(`${f} = ${d}`, setPath(base(), f.split("."), d), { kind: "reject", field: f.split(".") });
      }
    }
    // Whole input of every type
    for (const v of [null, true, 0, raw("-0"), raw("1e309"), "", "'; DROP TABLE commands; --", [], raw("[null]")]) {
      add(
        `input ${v instanceof Raw ? v.json : JSON.stringify(v)}`,
        v,
        takesInput ? { kind: "reject", field: [] } : { kind: "no5xx" },
      );
    }
    if (p.kind === "mutation") add("input {}", {}, { kind: "reject" });
  }
  // Payloads: stored as jsonb, which refuses NUL and lone surrogates, and whose parser (like JSON.stringify) recurses.
  const payloads: [string, unknown, (string | number)[]][] = [
    ["body nested 101 deep", raw(`{"url":"https://x.example/","body":${deepArrays(100).json}}`), ["payload", "body"]],
    [
      "body nested 10,000 deep (arrays)",
      raw(`{"url":"https://x.example/","body":${deepArrays(10_000).json}}`),
      ["payload", "body"],
    ],
    [
      "body nested 10,000 deep (objects)",
      raw(`{"url":"https://x.example/","body":${deepObjects(10_000).json}}`),
      ["payload", "body"],
    ],
    [
      "body nested 100,000 deep",
      raw(`{"url":"https://x.example/","body":${deepArrays(100_000).json}}`),
      ["payload", "body"],
    ],
    [
      "headers nested 10,000 deep",
      raw(`{"url":"https://x.example/","headers":${deepObjects(10_000).json}}`),
      ["payload", "headers"],
    ],
    ["payload nested 10,000 deep", deepObjects(10_000), ["payload"]],
    ["NUL in a body string", { url: "https://x.example/", body: { a: ["ok", "x\u0000"] } }, ["payload", "body"]],
    ["NUL in a body key", { url: "https://x.example/", body: obj([["k\u0000", 1]]) }, ["payload", "body"]],
    ["NUL in a header value", { url: "https://x.example/", headers: { "X-A": "a\u0000" } }, ["payload", "headers"]],
    ["lone high surrogate in the body", { url: "https://x.example/", body: "\ud800" }, ["payload", "body"]],
    [
      "lone low surrogate in the body",
      { url: "https://x.example/", body: ["x", { k: "a\udc00b" }] },
      ["payload", "body"],
    ],
    ["lone surrogate in a body key", { url: "https://x.example/", body: obj([["\udbff", 1]]) }, ["payload", "body"]],
    ["reversed surrogate pair", { url: "https://x.example/", body: "\udc00\ud800" }, ["payload", "body"]],
    ["lone surrogate in a header", { url: "https://x.example/", headers: { "X-A": "\ud83d" } }, ["payload", "headers"]],
    ["lone surrogate in the url", { url: "https://x.example/\ud800" }, ["payload"]],
  ];
  for (const [label, payload, field] of payloads) {
    for (const caller of intakeCallers) {
      cases.push({
        label: `intake.submit (${caller}): payload ${label}`,
        req: callReq({ path: "intake.submit", kind: "mutation" }, caller, { type: "http", payload }),
        expect: { kind: "reject", field },
      });
      cases.push({
        label: `intake.submitBatch (${caller}): payload ${label}, next to a valid-looking item`,
        req: callReq({ path: "intake.submitBatch", kind: "mutation" }, caller, {
          commands: [
            { type: "http", payload },
            { type: "http", payload, priority: "high" },
          ],
        }),
        expect: { kind: "receipts", items: [{ field: ["commands", 0, ...field] }, { field: ["commands", 1] }] },
      });
    }
  }
  return cases;
}

/** Malformed bodies, content types, methods, paths and batches. */
function transportCases(): Case[] {
  const cases: Case[] = [];
  const reject = (statuses?: number[]): Expect => ({ kind: "reject", statuses });
  const post = (
    path: string,
    body: string | Buffer,
    headers: Record<string, string> = {},
    caller: Caller = "client",
  ): Req => ({
    method: "POST",
    path,
    headers: { ...who[caller], "content-type": "application/json", ...headers },
    body,
  });
  const BAD_BODIES: (string | Buffer)[] = [
    "{",
    '{"type":"http",}',
    "{'type':'http'}",
    "NaN",
    "Infinity",
    "undefined",
    '{"a":1}{"b":2}',
    '{"a":1',
    "\ufeff{}",
    Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
    Buffer.from('{"type":"http"}', "utf16le"),
    "[".repeat(10_000),
    '{"a":'.repeat(10_000),
    "\u0000",
    "type=http&payload=x",
    '--x\r\nContent-Disposition: form-data; name="type"\r\n\r\nhttp\r\n--x--\r\n',
    "<command><type>http</type></command>",
    '{"type":"http","payload":{"url":"https://x.example/"},"priority":NaN}',
    '{"type":"http","payload":{"url":"https://x.example/"},"priority":Infinity}',
    '{"type":"http","payload":{"url":"https://x.example/"},"priority":0x10}',
    '{"type":"http","payload":{"url":"https://x.example/","body":"\\ud800"},"priority":"1"}',
    '{"type":"http","payload":{"url":"https://x.example/","body":"\\u0000"}}',
  ];
  for (const path of [
    "intake.submit",
    "intake.submitBatch",
    "commands.cancel",
    "tokens.create",
    "alerts.createRule",
    "users.create",
    "auth.changePassword",
  ]) {
    const caller: Caller = path.startsWith("intake.") ? "client" : "adminSession";
    for (const body of BAD_BODIES)
      for (const ct of [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
      ]) {
        cases.push({
          label: `${path}: malformed body ${JSON.stringify(String(body).slice(0, 30))} as ${ct}`,
          req: post(`/api/trpc/${path}`, body, { "content-type": ct }, caller),
          expect: reject(),
        });
      }
    cases.push({ label: `${path}: empty body`, req: post(`/api/trpc/${path}`, "", {}, caller), expect: reject() });
    cases.push({
      label: `${path}: no body`,
      req: { method: "POST", path: `/api/trpc/${path}`, headers: who[caller] },
      expect: reject(),
    });
    cases.push({
      label: `${path}: by GET`,
      req: { method: "GET", path: `/api/trpc/${path}?input=${encodeURIComponent("{}")}`, headers: who[caller] },
      expect: reject([405]),
    });
    for (const method of ["PUT", "PATCH", "DELETE"]) {
      cases.push({
        label: `${path}: by ${method}, invalid input`,
        req: {
          method,
          path: `/api/trpc/${path}`,
          headers: { ...who[caller], "content-type": "application/json" },
          body: "{}",
        },
        expect: reject([400, 405]),
      });
      cases.push({
        label: `${path}: by ${method}, no body`,
        req: { method, path: `/api/trpc/${path}`, headers: who[caller] },
        expect: reject([400, 405]),
      });
    }
  }
  for (const q of [
    "%ZZ",
    "{",
    "%7B",
    encodeURIComponent("[".repeat(3000)),
    encodeURIComponent('{"id":"x"}') + "&input=2",
    "",
    "null",
    encodeURIComponent('{"__proto__":{"x":1}}'),
  ]) {
    for (const path of [
      "intake.get",
      "intake.getMany",
      "commands.list",
      "commands.get",
      "audit.list",
      "alerts.history",
    ]) {
      const caller: Caller = path.startsWith("intake.") ? "client" : "adminToken";
      cases.push({
        label: `${path}: GET ?input=${q.slice(0, 20)}`,
        req: { method: "GET", path: `/api/trpc/${path}?input=${q}`, headers: who[caller] },
        expect:
          path === "commands.list" || path === "audit.list" || path === "alerts.history" ? { kind: "no5xx" } : reject(),
      });
    }
  }
  // Paths: unknown, prototype names, bad escapes, batches.
  const PATHS = [
    "",
    "intake",
    "intake.",
    ".submit",
    "intake..submit",
    "intake.submit/x",
    "intake.nope",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "intake.__proto__",
    "intake.constructor",
    "__proto__.submit",
    "_def",
    "intake._def",
    "createCaller",
    "%ZZ",
    "%E0%A4%A",
    "intake.submit%00",
    "%00",
    "intake%2Esubmit",
    "a".repeat(5000),
    "..%2F..%2Fetc%2Fpasswd",
  ];
  for (const path of PATHS) {
    cases.push({
      label: `POST /api/trpc/${path.slice(0, 30)}`,
      req: post(`/api/trpc/${path}`, '{"type":"http"}'),
      expect: reject(),
    });
    cases.push({
      label: `GET /api/trpc/${path.slice(0, 30)}`,
      req: { method: "GET", path: `/api/trpc/${path}?input=%7B%7D`, headers: who.client },
      expect: reject(),
    });
    cases.push({
      label: `POST /api/trpc/${path.slice(0, 30)},intake.submit?batch=1`,
      req: post(`/api/trpc/${path},intake.submit?batch=1`, '{"0":{},"1":{}}'),
      expect: reject([...REJECT, 207]),
    });
  }
  const batchOf = (n: number, path: string) => Array(n).fill(path).join(",");
  cases.push({
    label: "batch of 200 intake.submit, all invalid",
    req: post(
      `/api/trpc/${batchOf(200, "intake.submit")}?batch=1`,
      JSON.stringify(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [i, { type: i }]))),
    ),
    expect: reject([400]),
  });
  cases.push({
    label: "batch with a non-object input map",
    req: post(`/api/trpc/intake.submit,intake.submit?batch=1`, "[1,2]"),
    expect: reject(),
  });
  cases.push({
    label: "batch input map with __proto__",
    req: post(
      `/api/trpc/intake.submit,intake.submit?batch=1`,
      '{"__proto__":{"type":"http"},"0":{"type":1},"1":{"type":1}}',
    ),
    expect: reject(),
  });
  cases.push({
    label: "GET batch of intake.get, all invalid",
    req: {
      method: "GET",
      path: `/api/trpc/intake.get,intake.get?batch=1&input=${encodeURIComponent('{"0":{"id":"x"},"1":{"id":"y"}}')}`,
      headers: who.client,
    },
    expect: reject([400]),
  });
  cases.push({
    label: "batch=1 with malformed input",
    req: { method: "GET", path: `/api/trpc/intake.get?batch=1&input=%7B`, headers: who.client },
    expect: reject(),
  });
  cases.push({
    label: "body over 1 MB, chunked (no Content-Length)",
    req: {
      method: "POST",
      path: "/api/trpc/intake.submit",
      headers: { ...who.client, "content-type": "application/json" },
      body: Buffer.alloc(MB + 10, 0x20),
      stream: true,
    },
    expect: reject([413]),
  });
  // Credentials
  const CREDS: Record<string, string>[] = [
    { authorization: "Bearer" },
    { authorization: "Bearer " },
    { authorization: "Basic YWRtaW46YWRtaW4=" },
    { authorization: "Bearer a b" },
    { authorization: `Bearer ${"x".repeat(8000)}` },
    { authorization: "Bearer cvy_'; DROP TABLE api_clients; --" },
    { authorization: "Bearer %00" },
    { cookie: "conveyor_session=%ZZ" },
    { cookie: "conveyor_session=%E0%A4%A" },
    { cookie: "conveyor_session=%00" },
    { cookie: `conveyor_session=${"x".repeat(8000)}` },
    { cookie: "conveyor_session='; DROP TABLE sessions; --" },
    { cookie: "conveyor_session=a; conveyor_session=b; =; ;;" },
    { cookie: "=conveyor_session" },
  ];
  for (const creds of CREDS) {
    for (const [path, kind] of [
      ["intake.submit", "mutation"],
      ["intake.get", "query"],
      ["commands.list", "query"],
      ["tokens.create", "mutation"],
      ["auth.me", "query"],
      ["auth.changePassword", "mutation"],
    ] as const) {
      const req =
        kind === "mutation"
          ? {
              method: "POST",
              path: `/api/trpc/${path}`,
              headers: { "content-type": "application/json", origin: "http://127.0.0.1", ...creds },
              body: "{}",
            }
          : { method: "GET", path: `/api/trpc/${path}?input=%7B%7D`, headers: creds };
      cases.push({
        label: `${path} with ${JSON.stringify(creds).slice(0, 60)}`,
        req,
        expect: path === "auth.me" && creds.cookie ? { kind: "no5xx" } : reject([400, 401]),
      });
    }
  }
  // A signed-in admin's mutation from a hostile Origin (cookie-based CSRF).
  for (const origin of [
    "null",
    "http://evil.example",
    "javascript:alert(1)",
    "http://[::1",
    "",
    "http://127.0.0.1:1@evil.example",
    "%ZZ",
    "\u00e9",
  ]) {
    const headers = { ...who.adminSession, "content-type": "application/json", origin };
    cases.push({
      label: `tokens.create from origin ${JSON.stringify(origin)}`,
      req: {
        method: "POST",
        path: "/api/trpc/tokens.create",
        headers,
        body: JSON.stringify({ name: "csrf", scope: "admin" }),
      },
      expect: reject([403]),
    });
  }
  return cases;
}

/** encodeURIComponent, but lone surrogates (which it refuses) go as the UTF-8 of U+FFFD, as a client's encoder would send them. */
const pct = (s: string) => [...Buffer.from(s, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");

/** The REST facade of the intake API (/api/v1, server/api/rest.ts): the same inputs, its own routes and error shape. */
function restCases(): Case[] {
  const cases: Case[] = [];
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number) =>
    fc.sample(arb, { seed: SEED + salt, numRuns: n });
  const R = (
    label: string,
    method: string,
    path: string,
    caller: Caller,
    body: unknown,
    expect: Expect,
    headers: Record<string, string> = {},
  ): Case => ({
    label: `REST ${method} ${path.slice(0, 60)} (${caller}): ${label}`,
    req: {
      method,
      path,
      headers: { ...who[caller], ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : ser(body),
    },
    expect,
    rest: true,
  });
  const callers = fc.constantFrom(...intakeCallers);
  const [submit, batch, , getMany] = SPECS;
  for (const [m, caller] of sample(fc.tuple(invalidInputs(submit!), callers), RUNS * 2, 7000))
    cases.push(
      R(`invalid at ${JSON.stringify(m.field)}`, "POST", "/api/v1/commands", caller, m.input, {
        kind: "reject",
        field: m.field,
        key: m.key,
      }),
    );
  for (const [m, caller] of sample(fc.tuple(invalidInputs(batch!), callers), RUNS, 7001))
    cases.push(
      R(`invalid at ${JSON.stringify(m.field)}`, "POST", "/api/v1/commands/batch", caller, m.input, {
        kind: "reject",
        field: m.field,
        key: m.key,
      }),
    );
  for (const [list, caller] of sample(
    fc.tuple(fc.array(invalidInputs(submit!), { minLength: 1, maxLength: 3 }), callers),
    RUNS,
    7002,
  )) {
    cases.push(
      R(
        "every item invalid",
        "POST",
        "/api/v1/commands/batch",
        caller,
        { commands: list.map((m) => m.input) },
        { kind: "receipts", items: list.map((m, i) => ({ field: ["commands", i, ...m.field], key: m.key })) },
      ),
    );
  }
  for (const [m, caller] of sample(fc.tuple(invalidInputs(getMany!), callers), RUNS, 7003))
    cases.push(
      R(`invalid at ${JSON.stringify(m.field)}`, "POST", "/api/v1/commands/get-many", caller, m.input, {
        kind: "reject",
        field: m.field,
        key: m.key,
      }),
    );
  for (const [id, caller] of sample(
    fc.tuple(
      badUuid.filter((v): v is string => typeof v === "string" && v !== ""),
      callers,
    ),
    RUNS,
    7004,
  )) {
    cases.push(
      R("malformed id", "GET", `/api/v1/commands/${pct(id)}`, caller, undefined, { kind: "reject", field: ["id"] }),
    );
  }
  for (const [key, caller] of sample(fc.tuple(str, callers), RUNS, 7005)) {
    cases.push(
      R("hostile idempotency key", "GET", `/api/v1/commands?idempotencyKey=${pct(key)}`, caller, undefined, {
        kind: "reject",
        statuses: [400, 404],
      }),
    );
  }
  for (const id of [
    "%ZZ",
    "%E0%A4%A",
    "%00",
    "..",
    "%2E%2E",
    "__proto__",
    "constructor",
    uuid().toUpperCase() + "x",
    "a".repeat(5000),
  ]) {
    cases.push(
      R("odd id", "GET", `/api/v1/commands/${id}`, "client", undefined, { kind: "reject", statuses: [400, 404] }),
    );
  }
  for (const q of [
    "",
    "?",
    "?idempotencyKey",
    "?idempotencyKey=",
    "?idempotencyKey=%00",
    "?idempotencyKey=a&extra=1",
    "?__proto__=x&idempotencyKey=a",
    "?constructor=x&idempotencyKey=a",
    "?idempotencyKey=%ZZ",
    "?idempotencyKey=a&idempotencyKey=b",
    `?idempotencyKey=${"k".repeat(201)}`,
    "?id=00000000-0000-4000-8000-000000000000",
  ]) {
    cases.push(
      R("odd query", "GET", `/api/v1/commands${q}`, "client", undefined, { kind: "reject", statuses: [400, 404] }),
    );
  }
  const BAD: (string | Buffer)[] = [
    "",
    "{",
    "NaN",
    '{"a":1}{}',
    "\ufeff{}",
    Buffer.from([0xff, 0xfe]),
    "[".repeat(10_000),
    '{"type":"http","payload":{"url":"https://x.example/","body":"\\ud800"}}',
    "null",
    "[]",
    "5",
  ];
  for (const path of ["/api/v1/commands", "/api/v1/commands/batch", "/api/v1/commands/get-many"]) {
    for (const body of BAD)
      for (const ct of ["application/json", "text/plain", "application/x-www-form-urlencoded"])
        cases.push(
          R(
            `body ${JSON.stringify(String(body).slice(0, 20))} as ${ct}`,
            "POST",
            path,
            "client",
            typeof body === "string" ? raw(body) : body,
            { kind: "reject" },
            { "content-type": ct },
          ),
        );
    cases.push(R("over 1 MB", "POST", path, "client", "x".repeat(MB), { kind: "reject", statuses: [413] }));
    cases.push(R("1 MB-long key", "POST", path, "client", put({}, "k".repeat(MB - 100), 1), { kind: "reject" }));
    cases.push(
      R(
        "100,000 items",
        "POST",
        path,
        "client",
        { commands: manyItems(100_000, "{}"), ids: manyItems(100_000, "1") },
        { kind: "reject" },
      ),
    );
    cases.push(R("__proto__", "POST", path, "client", raw('{"__proto__":{"polluted":true}}'), { kind: "reject" }));
    for (const method of ["PUT", "PATCH", "DELETE", "GET"])
      cases.push(
        R("wrong method", method, path, "client", method === "GET" ? undefined : {}, {
          kind: "reject",
          statuses: [400, 404, 405],
        }),
      );
    for (const creds of [
      { authorization: "Bearer nope-nope-nope-nope-nope-nope" },
      { authorization: "Basic eDp5" },
      { cookie: "conveyor_session=%ZZ" },
      {},
    ] as Record<string, string>[]) {
      cases.push({
        ...R(
          `credentials ${JSON.stringify(creds).slice(0, 40)}`,
          "POST",
          path,
          "none",
          { commands: [{}], ids: [], type: "http", payload: {} },
          { kind: "reject", statuses: [400, 401] },
          creds,
        ),
      });
    }
  }
  for (const path of [
    "/api/v1/",
    "/api/v1/nope",
    "/api/v1/commands/a/b",
    "/api/v1/commands/batch/x",
    "/api/v1/%ZZ",
    "/api/v1/commands%00",
    "/api/v1/__proto__",
    "/api/v1//commands",
  ]) {
    for (const method of ["GET", "POST"])
      cases.push(
        R("unknown route", method, path, "client", method === "POST" ? {} : undefined, {
          kind: "reject",
          statuses: [400, 404, 405],
        }),
      );
  }
  cases.push(R("OpenAPI by POST", "POST", "/api/openapi.json", "none", {}, { kind: "reject", statuses: [405] }));
  cases.push(
    R("OpenAPI with a query", "GET", "/api/openapi.json?x=%ZZ&__proto__=1", "none", undefined, { kind: "no5xx" }),
  );
  return cases;
}

/** Requests no fetch() would send: written byte by byte on a socket. */
function rawHttpCases(): Case[] {
  const token = who.client.authorization!;
  const lines = (...l: (string | Buffer)[]) =>
    Buffer.concat(l.map((x) => (typeof x === "string" ? Buffer.from(x, "latin1") : x)));
  const R = (label: string, bytes: Buffer): Case => ({
    label: `raw: ${label}`,
    rawHttp: bytes,
    expect: { kind: "reject" },
  });
  return [
    R(
      "latin-1 bytes in the token",
      lines(
        "GET /api/trpc/intake.get?input=%7B%7D HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xe9\r\nConnection: close\r\n\r\n",
      ),
    ),
    R(
      "latin-1 bytes in the cookie",
      lines(
        "GET /api/trpc/commands.counts HTTP/1.1\r\nHost: x\r\nCookie: conveyor_session=\xff\xe9%\r\nConnection: close\r\n\r\n",
      ),
    ),
    R(
      "NUL in a header",
      lines("GET /api/trpc/auth.me HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n"),
    ),
    R(
      "header of 20 kB",
      lines(`GET /api/trpc/auth.me HTTP/1.1\r\nHost: x\r\nX-A: ${"a".repeat(20_000)}\r\nConnection: close\r\n\r\n`),
    ),
    R(
      "URL of 20 kB",
      lines(`GET /api/trpc/intake.get?input=${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    ),
    R(
      "Content-Length shorter than the body",
      lines(
        `POST /api/trpc/intake.submit HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{"type":"http"}`,
      ),
    ),
    R(
      "Content-Length and Transfer-Encoding",
      lines(
        `POST /api/trpc/intake.submit HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\n` +
          `Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
      ),
    ),
    R(
      "bad chunk size",
      lines(
        `POST /api/trpc/intake.submit HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\n` +
          `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      ),
    ),
    R(
      "two Content-Length headers",
      lines(
        `POST /api/trpc/intake.submit HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}`,
      ),
    ),
    R(
      "declared length over 1 MB",
      lines(
        `POST /api/trpc/intake.submit HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n{}`,
      ),
    ),
    R("not HTTP", lines("HELLO\r\n\r\n")),
    R("request line only", lines("POST /api/trpc/intake.submit HTTP/1.1\r\n\r\n")),
    R(
      "no Host",
      lines(
        `POST /api/trpc/intake.submit HTTP/1.1\r\nAuthorization: ${token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      ),
    ),
    R(
      "absolute-form URL",
      lines(
        `GET http://evil.example/api/trpc/intake.get?input=%7B%7D HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nConnection: close\r\n\r\n`,
      ),
    ),
    R(
      "Host with bad characters",
      lines(
        `GET /api/trpc/intake.get?input=%7B%7D HTTP/1.1\r\nHost: a b/c\r\nAuthorization: ${token}\r\nConnection: close\r\n\r\n`,
      ),
    ),
  ];
}

// ---------------------------------------------------------------------------
// Sending, and judging the answers.

let t: TestDb;
let api: ApiServer;
let seededId: string;
const serverErrors: string[] = [];
const TABLES = [
  "commands",
  "attempts",
  "alert_rules",
  "api_clients",
  "users",
  "audit_entries",
  "sessions",
  "callback_deliveries",
  "command_transitions",
  "alert_events",
  "alert_deliveries",
  "flow_scopes",
  "schedules",
  "batches",
  "batch_deliveries",
  "alert_delivery_tries",
];
let before: Record<string, number>;
const stats = { requests: 0, byStatus: {} as Record<number, number> };

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) out[table] = (await t.db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
  return out;
}

async function send(c: Case): Promise<Outcome> {
  if (c.rawHttp) return sendRaw(c.rawHttp);
  const r = c.req!;
  const body = r.stream && r.body ? new Blob([new Uint8Array(Buffer.from(r.body))]).stream() : r.body;
  const res = await fetch(api.url + r.path, {
    method: r.method,
    headers: r.headers,
    body,
    signal: AbortSignal.timeout(20_000),
    ...(r.stream ? { duplex: "half" } : {}),
  } as RequestInit);
  return { status: res.status, text: await res.text() };
}

function sendRaw(bytes: Buffer): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(api.url);
    const s = net.connect(Number(port), "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(new Error("raw request timed out")), 10_000);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text: text.slice(text.indexOf("\r\n\r\n") + 4) });
      s.destroy();
    };
    // The status line is all that is judged; the socket is not half-closed (node:http would drop the request).
    s.on("data", (d) => (chunks.push(d), Buffer.concat(chunks).includes("\r\n\r\n") && finish()));
    s.on("error", (err) =>
      done || (err as NodeJS.ErrnoException).code === "ECONNRESET"
        ? undefined
        : (clearTimeout(timer), (done = true), reject(err)),
    );
    s.on("close", finish);
    s.write(bytes);
  });
}

const startsWith = (path: unknown[], prefix: unknown[]) => prefix.every((p, i) => path[i] === p);
const REJECT = [400, 401, 403, 404, 405, 409, 413, 415, 429, 431];
const CODES: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_SUPPORTED",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  429: "TOO_MANY_REQUESTS",
};

type Issue = { path: (string | number)[]; message: string };
function namesField(issues: Issue[], field: (string | number)[], key?: string): boolean {
  if (key !== undefined)
    return issues.some(
      (i) =>
        startsWith(i.path, field) &&
        (i.message.includes(key) ||
          i.message.includes(JSON.stringify(key).slice(1, -1)) ||
          i.path[field.length] === key),
    );
  return issues.some((i) => startsWith(i.path, field));
}

/** One trpc error object: a clear message, the code that goes with the status, well-formed issues. */
function judgeError(e: any, status: number): string | null {
  if (!e || typeof e.message !== "string" || !e.message.trim()) return "no error message";
  if (/internal server error/i.test(e.message)) return `internal error message: ${e.message}`;
  if (e.data?.stack) return "stack trace sent to the client";
  if (e.data?.httpStatus !== status && status !== 207)
    return `error.data.httpStatus ${e.data?.httpStatus} ≠ HTTP ${status}`;
  const code = e.data?.code;
  if (
    CODES[e.data?.httpStatus] &&
    code !== CODES[e.data.httpStatus] &&
    !(e.data.httpStatus === 400 && code === "PARSE_ERROR")
  )
    return `code ${code} for HTTP ${e.data.httpStatus}`;
  const issues = e.data?.issues;
  if (
    issues !== undefined &&
    (!Array.isArray(issues) ||
      !issues.every((i: Issue) => Array.isArray(i.path) && typeof i.message === "string" && i.message.length > 0))
  )
    return "malformed issues";
  return null;
}

function judge(c: Case, o: Outcome): string | null {
  if (o.status >= 500 || o.status === 0) return `HTTP ${o.status}`;
  const ex = c.expect;
  if (ex.kind === "no5xx") return null;
  if (ex.kind === "receipts") {
    if (o.status !== 200) return `HTTP ${o.status}, expected 200 with refused receipts`;
    const answer = JSON.parse(o.text);
    const receipts = c.rest ? answer.receipts : answer.result?.data?.receipts;
    if (!Array.isArray(receipts) || receipts.length !== ex.items.length) return "receipts missing or miscounted";
    for (const [i, r] of receipts.entries()) {
      if (r.ok !== false) return `receipt ${i} accepted: ${JSON.stringify(r)}`;
      if (r.error?.code !== "BAD_REQUEST" || !r.error.message)
        return `receipt ${i}: ${JSON.stringify(r.error).slice(0, 200)}`;
      if (!namesField(r.error.issues ?? [], ex.items[i]!.field, ex.items[i]!.key))
        return `receipt ${i} does not name ${JSON.stringify(ex.items[i]!.field)}: ${JSON.stringify(r.error.issues).slice(0, 300)}`;
    }
    return null;
  }
  if (!(ex.statuses ?? REJECT).includes(o.status))
    return `HTTP ${o.status}, expected ${ex.statuses?.join("/") ?? "a 4xx"}`;
  if (c.rawHttp || o.status === 431 || (o.status === 400 && !o.text.trim())) return null; // Node's own HTTP parser answered
  let body: any;
  try {
    body = JSON.parse(o.text);
  } catch {
    return `HTTP ${o.status} with a body that is not JSON: ${o.text.slice(0, 100)}`;
  }
  if (c.rest) {
    // { error: { code, message, issues? } }
    const e = body.error;
    if (!e || typeof e.code !== "string" || typeof e.message !== "string" || !e.message.trim())
      return "REST error without code or message";
    if (/internal/i.test(e.code) || /internal server error/i.test(e.message)) return `internal error: ${e.message}`;
    if (CODES[o.status] && e.code !== CODES[o.status]) return `code ${e.code} for HTTP ${o.status}`;
    if (
      e.issues !== undefined &&
      (!Array.isArray(e.issues) ||
        !e.issues.every((i: Issue) => Array.isArray(i.path) && typeof i.message === "string" && i.message.length > 0))
    )
      return "malformed issues";
    if (ex.field && e.code === "BAD_REQUEST" && !namesField(e.issues ?? [], ex.field, ex.key))
      return `issues do not name ${JSON.stringify(ex.field)}: ${String(JSON.stringify(e.issues)).slice(0, 300)}`;
    return null;
  }
  const errors = Array.isArray(body) ? body.map((b) => b.error) : [body.error];
  for (const e of errors) {
    const bad =
      judgeError(e, o.status) ??
      (e.data.httpStatus >= 400 && e.data.httpStatus < 500 ? null : `batch item HTTP ${e.data.httpStatus}`);
    if (bad) return bad;
  }
  const e = errors[0];
  if (ex.field && e.data?.code === "BAD_REQUEST") {
    const issues: Issue[] | undefined = e.data.issues;
    if (!issues?.length) return `validation error without issues: ${e.message.slice(0, 200)}`;
    if (!namesField(issues, ex.field, ex.key))
      return (
        `issues do not name ${JSON.stringify(ex.field)}${ex.key !== undefined ? ` / key ${JSON.stringify(ex.key.slice(0, 30))}` : ""}` +
        `: ${JSON.stringify(issues).slice(0, 300)}`
      );
  }
  return null;
}

/** Sends cases CONCURRENCY at a time, in batches, with a health probe after each batch. */
async function run(cases: Case[]): Promise<string[]> {
  const failures: string[] = [];
  for (let start = 0; start < cases.length; start += BATCH) {
    const batch = cases.slice(start, start + BATCH);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < batch.length) {
          const c = batch[next++]!;
          let problem: string | null;
          try {
            const o = await send(c);
            stats.requests++;
            stats.byStatus[o.status] = (stats.byStatus[o.status] ?? 0) + 1;
            problem = judge(c, o);
            if (problem) problem += ` — ${o.text.slice(0, 300)}`;
          } catch (err) {
            problem = `request failed: ${(err as Error).message}`;
          }
          if (problem) failures.push(`${c.label}: ${problem}`);
        }
      }),
    );
    await healthProbe();
  }
  return failures;
}

async function healthProbe() {
  const me = await fetch(`${api.url}/api/trpc/auth.me`);
  expect(me.status, "auth.me after a batch").toBe(200);
  const got = await fetch(
    `${api.url}/api/trpc/intake.get?input=${encodeURIComponent(JSON.stringify({ id: seededId }))}`,
    { headers: who.client },
  );
  expect(got.status, "intake.get after a batch").toBe(200);
  expect(((await got.json()) as any).result.data.id).toBe(seededId);
  const c = await fetch(`${api.url}/api/trpc/commands.counts`, { headers: who.adminSession });
  expect(c.status, "commands.counts after a batch").toBe(200);
}

function report(name: string, n: number, ms: number, failures: string[]) {
  console.log(`fuzz ${name}: ${n} requests in ${(ms / 1000).toFixed(1)} s, ${failures.length} failed (seed ${SEED})`);
  for (const f of failures.slice(0, 40)) console.log(`  ✗ ${f.slice(0, 600)}`);
}

beforeAll(async () => {
  t = await createTestDb();
  const logger = pino({ level: "error" }, { write: (line: string) => void serverErrors.push(line) });
  api = await startApi(t.db, { log: logger });
  who.client = { authorization: `Bearer ${(await newToken(t.db, "client", "fuzz-client")).token}` };
  who.adminToken = { authorization: `Bearer ${(await newToken(t.db, "admin", "fuzz-admin")).token}` };
  const { cookie } = await userWithSession(t.db, "admin@example.com", "admin");
  who.adminSession = { cookie, origin: api.url };
  const seeded = await fetch(`${api.url}/api/trpc/intake.submit`, {
    method: "POST",
    headers: { ...who.client, "content-type": "application/json" },
    body: JSON.stringify({ ...submitBase(), idempotencyKey: "seed", runAt: "2999-01-01T00:00:00Z" }),
  });
  seededId = ((await seeded.json()) as any).result.data.id;
  before = await counts();
}, 60_000);
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("hostile input", () => {
  it("the generators cover every procedure of the router", () => {
    const procedures = Object.keys(appRouter._def.procedures).sort();
    expect([...new Set(SPECS.map((s) => s.path))].sort()).toEqual(procedures);
  });

  const phases: [string, () => Case[]][] = [
    ["generated (fast-check)", generatedCases],
    ["hand-written, every procedure", handWrittenCases],
    ["bodies, methods, paths, credentials", transportCases],
    ["raw HTTP", rawHttpCases],
    ["REST facade (/api/v1)", restCases],
  ];
  for (const [name, make] of phases) {
    it(`${name}: every answer a 4xx naming the field, never a 5xx`, async () => {
      const cases = make();
      const started = performance.now();
      const failures = await run(cases);
      report(name, cases.length, performance.now() - started, failures);
      expect(failures, failures.slice(0, 10).join("\n")).toEqual([]);
    }, 120_000);
  }

  it("stored nothing, logged no internal error, polluted no prototype", async () => {
    expect(await counts()).toEqual(before);
    expect(serverErrors.map((l) => l.slice(0, 500))).toEqual([]);
    expect(({} as any).polluted).toBeUndefined();
    expect(({} as any).isAdmin).toBeUndefined();
    console.log(`fuzz total: ${stats.requests} requests; by status ${JSON.stringify(stats.byStatus)}`);
  });
});

describe("hostile but valid values", () => {
  it("are stored and read back exactly", async () => {
    const payloads: unknown[] = [
      {
        url: "https://x.example/",
        body: {
          sql: "'; DROP TABLE commands; --",
          rtl: "\u202eevil\u202c",
          emoji: "🚀💥👩‍👩‍👧‍👦",
          zw: "\u200b\u200f",
          big: 1e308,
          neg: -1e-300,
        },
      },
      {
        url: "https://x.example/",
        body: obj([
          ["__proto__", { polluted: true }],
          ["constructor", { prototype: { polluted: true } }],
        ]),
      },
      { url: "https://x.example/", body: JSON.parse("[".repeat(90) + "]".repeat(90)) },
      { url: "https://x.example/", body: Array.from({ length: 10_000 }, (_, i) => i) },
      { url: "https://x.example/", body: "x".repeat(900_000) },
      { url: "https://x.example/%00?q=%ZZ", headers: { "X-Sql": "' OR 1=1 --" } },
    ];
    const keys = [
      "'; DROP TABLE commands; --",
      "\u202ekey",
      "🚀",
      "%_\\",
      "k".repeat(200),
      "__proto__",
      "constructor",
      "$1",
    ];
    const sent: { key: string; payload: unknown }[] = [
      ...payloads.map((payload, i) => ({ key: `valid-${i}`, payload })),
      ...keys.map((key) => ({ key, payload: { url: "https://x.example/" } })),
    ];
    const c0 = await counts();
    for (const s of sent) {
      const r = await fetch(`${api.url}/api/trpc/intake.submit`, {
        method: "POST",
        headers: { ...who.client, "content-type": "application/json" },
        body: ser({ type: "http", payload: s.payload, idempotencyKey: s.key, runAt: "2999-01-01T00:00:00Z" }),
      });
      expect(r.status, s.key).toBe(200);
      const id = ((await r.json()) as any).result.data.id;
      const back = await fetch(`${api.url}/api/trpc/intake.get`, {
        method: "POST",
        headers: { ...who.client, "content-type": "application/json", "x-trpc-method-override": "1" },
        body: JSON.stringify({ idempotencyKey: s.key }),
      });
      const view = ((await back.json()) as any).result.data;
      expect(view.id).toBe(id);
      expect(canon(view.payload)).toBe(canon(JSON.parse(ser(s.payload))));
      // And the console finds it by its key, however it is spelt.
      const found = await fetch(
        `${api.url}/api/trpc/commands.list?input=${encodeURIComponent(JSON.stringify({ q: s.key.slice(0, 500) }))}`,
        { headers: who.adminToken },
      );
      expect(found.status).toBe(200);
      expect(((await found.json()) as any).result.data.items.map((i: { id: string }) => i.id)).toContain(id);
    }
    const c1 = await counts();
    expect(c1.commands! - c0.commands!).toBe(sent.length);
    const others = (c: Record<string, number>) => ({
      alert_rules: c.alert_rules,
      api_clients: c.api_clients,
      users: c.users,
      audit_entries: c.audit_entries,
      attempts: c.attempts,
    });
    expect(others(c1)).toEqual(others(c0));
  }, 60_000);
});
