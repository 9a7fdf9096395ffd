// The schedule form's values: the schedule input's fields, in the shape of
// the input (so that the server's issues, at command.payload.url and the
// like, land where the form's own do) but as typed: the payload as JSON text,
// numbers as text. The resolver turns them into the input and checks it with
// the schema the server checks with (server/schedules/input.ts).
import type { FieldError, Resolver } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import type { z } from "zod";
import { scheduleInput, type ScheduleInput } from "@/server/schedules/input";
import type { Schedule } from "./types";

export type FormValues = {
  name: string;
  cron: string;
  timezone: string;
  command: {
    type: string;
    /** JSON text */
    payload: string;
    callbackUrl: string;
    priority: string;
    retry: { maxAttempts: string };
  };
  enabled: boolean;
};

const EXAMPLE_PAYLOAD = { url: "https://backend.example.com/jobs/nightly-export", method: "POST" };

export function defaults(s: Schedule | null): FormValues {
  return {
    name: s?.name ?? "",
    cron: s?.cron ?? "0 2 * * *",
    timezone: s?.timezone ?? "UTC",
    command: {
      type: s?.command.type ?? "http",
      payload: JSON.stringify(s ? s.command.payload : EXAMPLE_PAYLOAD, null, 2),
      callbackUrl: s?.command.callbackUrl ?? "",
      priority: s?.command.priority === undefined ? "" : String(s.command.priority),
      retry: { maxAttempts: s?.command.retry?.maxAttempts === undefined ? "" : String(s.command.retry.maxAttempts) },
    },
    enabled: s?.enabled ?? true,
  };
}

/** The form's top-level fields (the input's), where server issues are placed. */
export const FIELDS = Object.keys(defaults(null));

type Parsed = { ok: true; value: unknown } | { ok: false; message: string };
function parseJson(text: string): Parsed {
  if (text.trim() === "") return { ok: false, message: "enter the payload as JSON, e.g. {}" };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: `not valid JSON: ${(err as Error).message}` };
  }
}

const num = (s: string) => (s.trim() === "" ? undefined : Number(s));

function toInput(v: FormValues, payload: unknown): z.input<typeof scheduleInput> {
  const maxAttempts = num(v.command.retry.maxAttempts);
  return {
    name: v.name,
    cron: v.cron,
    timezone: v.timezone.trim() || undefined,
    command: {
      type: v.command.type,
      payload,
      callbackUrl: v.command.callbackUrl.trim() || undefined,
      priority: num(v.command.priority),
      retry: maxAttempts === undefined ? undefined : { maxAttempts },
    },
    enabled: v.enabled,
  };
}

// A number left as text that is not one says so, rather than zod's "expected number, received NaN".
const check = zodResolver(scheduleInput, {
  error: (i) => (i.code === "invalid_type" && i.expected === "number" ? "enter a number" : undefined),
});

export const resolver: Resolver<FormValues, unknown, ScheduleInput> = async (values, context, options) => {
  const payload = parseJson(values.command.payload);
  const r = (await check(
    toInput(values, payload.ok ? payload.value : {}),
    context,
    options as unknown as Parameters<typeof check>[2],
  )) as unknown as Awaited<ReturnType<Resolver<FormValues, unknown, ScheduleInput>>>;
  if (payload.ok) return r;
  const errors = r.errors as Record<string, unknown>;
  const command = { ...((errors.command as object) ?? {}), payload: { type: "json", message: payload.message } };
  return { values: {}, errors: { ...errors, command } } as unknown as typeof r;
};

/** Every message under a field's error, with the path below it ("url: must be a URL"). */
export function messagesUnder(err: unknown, prefix = ""): string[] {
  if (!err || typeof err !== "object") return [];
  const e = err as Partial<FieldError> & Record<string, unknown>;
  const out: string[] = [];
  if (typeof e.message === "string" && e.message) out.push(prefix ? `${prefix}: ${e.message}` : e.message);
  for (const [k, v] of Object.entries(e)) {
    if (["message", "type", "ref", "types", "root"].includes(k)) continue;
    out.push(...messagesUnder(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}
