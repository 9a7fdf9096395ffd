// Every environment variable Conveyor reads, validated once at start. Modules
// receive what they need as options; nothing else reads process.env.
import { z } from "zod";

const intFrom = (name: string, def: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `must be a whole number from ${min} to ${max}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

const urlWith = (protocols: string[]) =>
  optionalText.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => p + "//").join(" or ")}` },
  );

/** The protocols of OTLP over HTTP (the spec's default is http/protobuf); gRPC is not shipped. */
const otlpProtocol = z
  .enum(["http/protobuf", "http/json", ""], {
    error:
      "must be http/protobuf or http/json (OTLP over gRPC is not supported; point it at the collector's HTTP port, 4318)",
  })
  .optional()
  .transform((v) => (v === "" ? undefined : v));
const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

const trueFalse = (def: "true" | "false") =>
  z
    .enum(["true", "false"], { error: "must be true or false" })
    .default(def)
    .transform((v) => v === "true");

/** https, or http to a loopback host only (a provider on this machine, for development and tests). */
const issuerUrl = optionalText.refine(
  (v) => {
    if (v === undefined) return true;
    try {
      const u = new URL(v);
      const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(u.hostname);
      return u.protocol === "https:" || (u.protocol === "http:" && loopback);
    } catch {
      return false;
    }
  },
  { message: "must be an https:// URL (http:// only for localhost or 127.0.0.1), the provider's issuer" },
);

const OIDC_VARS = ["OIDC_ISSUER_URL", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] as const;

const schema = z
  .object({
    DATABASE_URL: urlWith(["postgres:", "postgresql:"]),
    // LISTEN needs a session: when DATABASE_URL goes through a transaction-mode pooler, point this at PostgreSQL directly.
    DATABASE_LISTEN_URL: urlWith(["postgres:", "postgresql:"]),
    PORT: intFrom("PORT", 3000, 1, 65535),
    PUBLIC_URL: urlWith(["http:", "https:"]),
    SMTP_URL: urlWith(["smtp:", "smtps:"]),
    ALERT_FROM: optionalText.default("Conveyor <conveyor@localhost>"),
    ADMIN_EMAIL: optionalText.refine((v) => v === undefined || z.email().safeParse(v).success, {
      message: "must be an email address",
    }),
    ADMIN_PASSWORD: optionalText.refine((v) => v === undefined || v.length >= 12, {
      message: "must be at least 12 characters",
    }),
    BOOTSTRAP_API_TOKEN: optionalText.refine((v) => v === undefined || v.length >= 24, {
      message: "must be at least 24 characters (use a long random value)",
    }),
    SECRET_KEY: optionalText.refine((v) => v === undefined || /^[0-9a-fA-F]{64}$/.test(v), {
      message: "must be 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32`",
    }),
    WORKER_CONCURRENCY: intFrom("WORKER_CONCURRENCY", 10, 1, 1000),
    WEB_CONCURRENCY: intFrom("WEB_CONCURRENCY", 1, 1, 64),
    WORKER_LEASE_MS: intFrom("WORKER_LEASE_MS", 30_000, 1_000, 3_600_000),
    WORKER_POLL_MS: intFrom("WORKER_POLL_MS", 1_000, 50, 60_000),
    WORKER_GRACE_MS: intFrom("WORKER_GRACE_MS", 20_000, 0, 600_000),
    ALERT_EVAL_MS: intFrom("ALERT_EVAL_MS", 15_000, 500, 3_600_000),
    METRICS_TOKEN: optionalText,
    RETENTION_DAYS: intFrom("RETENTION_DAYS", 30, 1, 3650),
    INTAKE_RATE_LIMIT: intFrom("INTAKE_RATE_LIMIT", 0, 0, 1_000_000),
    HTTP_ALLOWED_HOSTS: optionalText,
    // Behind a reverse proxy that sets X-Forwarded-For: take the client's address from it (sign-in throttle).
    TRUST_PROXY: trueFalse("false"),
    // Single sign-on (DESIGN §9): OpenID Connect, authorization code flow with PKCE. All three, or none.
    OIDC_ISSUER_URL: issuerUrl,
    OIDC_CLIENT_ID: optionalText,
    // Never logged nor shown; sent only to the provider's token endpoint.
    OIDC_CLIENT_SECRET: optionalText,
    // The claim that carries the role (viewer, operator or admin; a list of values gives the highest known one).
    OIDC_ROLE_CLAIM: optionalText.default("conveyor_role"),
    // The role of a user whose claim carries none; "none" refuses them.
    OIDC_DEFAULT_ROLE: z
      .enum(["viewer", "operator", "admin", "none"], { error: "must be viewer, operator, admin or none" })
      .default("viewer"),
    // false: local accounts cannot sign in with a password (the form is not shown; SSO only).
    PASSWORD_LOGIN: trueFalse("true"),
    MAX_BODY_BYTES: intFrom("MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    DB_POOL_SIZE: intFrom("DB_POOL_SIZE", 10, 1, 200),
    // off: never use named prepared statements (PgBouncer in transaction mode before 1.21 cannot carry them).
    DB_PREPARED_STATEMENTS: z
      .enum(["on", "off"], { error: "must be on or off" })
      .default("on")
      .transform((v) => v === "on"),
    DATA_DIR: optionalText.default(".data"),
    EMBEDDED_PG_PORT: intFrom("EMBEDDED_PG_PORT", 54329, 1, 65535),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    // Tracing (DESIGN §10, docs/operations.md): spans are exported over OTLP/HTTP only when an endpoint is set.
    // The OpenTelemetry SDK reads the other OTEL_* variables itself (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
    // OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*); those that would otherwise be misread in silence are checked here.
    OTEL_EXPORTER_OTLP_ENDPOINT: urlWith(["http:", "https:"]),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: urlWith(["http:", "https:"]),
    OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
    OTEL_SDK_DISABLED: z
      .enum(["true", "false", ""], { error: "must be true or false" })
      .optional()
      .transform((v) => v === "true"),
    OTEL_TRACES_EXPORTER: z
      .enum(["otlp", "none", ""], { error: 'must be "otlp" or "none" (spans are exported over OTLP/HTTP only)' })
      .optional()
      .transform((v) => (v === "none" ? "none" : "otlp")),
    OTEL_TRACES_SAMPLER: z.enum([...SAMPLERS, ""], { error: `must be one of ${SAMPLERS.join(", ")}` }).optional(),
    OTEL_TRACES_SAMPLER_ARG: optionalText.refine((v) => v === undefined || (Number(v) >= 0 && Number(v) <= 1), {
      message: "must be a number from 0 to 1 (the ratio of traces sampled)",
    }),
  })
  .refine((e) => (e.ADMIN_EMAIL === undefined) === (e.ADMIN_PASSWORD === undefined), {
    message: "ADMIN_EMAIL and ADMIN_PASSWORD must be set together",
    path: ["ADMIN_PASSWORD"],
  })
  .superRefine((e, ctx) => {
    const set = OIDC_VARS.filter((k) => e[k] !== undefined);
    if (set.length > 0 && set.length < OIDC_VARS.length) {
      for (const k of OIDC_VARS.filter((k) => e[k] === undefined))
        ctx.addIssue({
          code: "custom",
          path: [k],
          message: `must be set too: single sign-on needs ${OIDC_VARS.join(", ")} (${set.join(", ")} set)`,
        });
    }
    if (!e.PASSWORD_LOGIN && set.length < OIDC_VARS.length)
      ctx.addIssue({
        code: "custom",
        path: ["PASSWORD_LOGIN"],
        message: `false needs single sign-on (${OIDC_VARS.join(", ")}), or nobody could sign in`,
      });
  });

/** Where spans go, when tracing is on: OTLP/HTTP to `url` in `protocol`. */
export type TracingSettings = { url: string; protocol: "http/protobuf" | "http/json" };

export type Env = z.infer<typeof schema> & { PUBLIC_URL: string; TRACING: TracingSettings | null };

/**
 * The traces endpoint as the OTLP exporter spec derives it: the signal's own
 * variable as given, else the base endpoint with /v1/traces appended. None
 * (or OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none): tracing is off.
 */
function tracingSettings(e: z.infer<typeof schema>): TracingSettings | null {
  if (e.OTEL_SDK_DISABLED || e.OTEL_TRACES_EXPORTER === "none") return null;
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined);
  if (!url) return null;
  return { url, protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf" };
}

/** Single sign-on's settings, when the three OIDC_* variables are set. */
export type OidcEnv = {
  issuerUrl: string;
  clientId: string;
  clientSecret: string;
  roleClaim: string;
  defaultRole: "viewer" | "operator" | "admin" | "none";
  redirectUri: string;
};

export function oidcEnv(e: Env): OidcEnv | undefined {
  if (!e.OIDC_ISSUER_URL || !e.OIDC_CLIENT_ID || !e.OIDC_CLIENT_SECRET) return undefined;
  return {
    issuerUrl: e.OIDC_ISSUER_URL,
    clientId: e.OIDC_CLIENT_ID,
    clientSecret: e.OIDC_CLIENT_SECRET,
    roleClaim: e.OIDC_ROLE_CLAIM,
    defaultRole: e.OIDC_DEFAULT_ROLE,
    redirectUri: oidcRedirectUri(e.PUBLIC_URL),
  };
}

/** The redirect URI to register at the identity provider: PUBLIC_URL's /api/auth/oidc/callback. */
export const oidcRedirectUri = (publicUrl: string) => `${publicUrl.replace(/\/$/, "")}/api/auth/oidc/callback`;

export class EnvError extends Error {}

/** Parses and validates the environment; throws an EnvError naming each bad variable. */
export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "environment"}: ${i.message}`);
    throw new EnvError(`Invalid environment:\n${lines.join("\n")}`);
  }
  const env = parsed.data;
  return { ...env, PUBLIC_URL: env.PUBLIC_URL ?? `http://localhost:${env.PORT}`, TRACING: tracingSettings(env) };
}

let cached: Env | undefined;
/** The process's environment, validated on first use. */
export function env(): Env {
  cached ??= parseEnv();
  return cached;
}

/** For process entry points: the environment, or the message naming each bad variable and exit 1. */
export function envOrExit(): Env {
  try {
    return env();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
