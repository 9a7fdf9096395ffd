"use client";
// The form that creates or edits a schedule, on react-hook-form, checked
// before sending with the schema the server checks with (schedule-values.ts);
// what only the server can check (the command type's payload schema, the host
// allow-list) comes back as issues and goes on the field they name. Below the
// cron field: the next ticks it makes, in the schedule's time zone.
import { useMemo } from "react";
import { useForm, useWatch } from "react-hook-form";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { btn, ErrorBox, input, label, Panel } from "@/app/_components/ui";
import { setServerIssues } from "@/app/(console)/alerts/_components/server-issues";
import { cronProblem, nextTick, timezoneProblem } from "@/server/schedules/cron";
import type { ScheduleInput } from "@/server/schedules/input";
import { defaults, FIELDS, messagesUnder, resolver, type FormValues } from "./schedule-values";
import type { Schedule } from "./types";

function FieldError({ id, messages }: { id: string; messages: string[] }) {
  if (!messages.length) return null;
  return (
    <p id={id} className="mt-1 text-xs font-medium text-red-700">
      {messages.join("; ")}
    </p>
  );
}

const ZONES: string[] = (() => {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf("timeZone");
  } catch {
    return [];
  }
})();

/** The next `n` ticks of the expression in the zone, as that zone's wall clock; none while either is wrong. */
function NextTicks({ cron, timezone }: { cron: string; timezone: string }) {
  const tz = timezone.trim() || "UTC";
  const ticks = useMemo(() => {
    if (cronProblem(cron) || timezoneProblem(tz)) return [];
    const out: Date[] = [];
    let t: Date | null = new Date();
    for (let i = 0; i < 3 && (t = nextTick({ cron, timezone: tz }, t)); i++) out.push(t);
    return out;
  }, [cron, tz]);
  if (!ticks.length) return null;
  const fmt = new Intl.DateTimeFormat(undefined, {
    timeZone: tz,
    weekday: "short",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  });
  return (
    <p className="mt-1 text-xs text-slate-500" data-testid="next-ticks">
      Next: {ticks.map((d) => fmt.format(d)).join(" · ")}
    </p>
  );
}

export function ScheduleForm({
  schedule,
  onDone,
  onCancel,
}: {
  schedule: Schedule | null;
  onDone: (id: string, wasNew: boolean) => void;
  onCancel: () => void;
}) {
  const trpc = useTRPC();
  const types = useQuery(trpc.commands.types.queryOptions(undefined, { staleTime: 60_000 }));
  const { register, handleSubmit, control, setError, formState } = useForm<FormValues, unknown, ScheduleInput>({
    defaultValues: defaults(schedule),
    resolver,
  });
  const onError = (err: unknown) => setServerIssues(err, FIELDS, (name, e) => setError(name as keyof FormValues, e));
  const create = useMutation(trpc.schedules.create.mutationOptions({ onSuccess: (r) => onDone(r.id, true), onError }));
  const update = useMutation(trpc.schedules.update.mutationOptions({ onSuccess: (r) => onDone(r.id, false), onError }));
  const m = schedule ? update : create;
  const cron = useWatch({ control, name: "cron" });
  const timezone = useWatch({ control, name: "timezone" });
  const type = useWatch({ control, name: "command.type" });

  const { errors } = formState;
  const c = errors.command;
  const msgs: Record<string, string[]> = {
    name: messagesUnder(errors.name),
    cron: messagesUnder(errors.cron),
    timezone: messagesUnder(errors.timezone),
    type: messagesUnder(c?.type),
    payload: messagesUnder(c?.payload),
    callbackUrl: messagesUnder(c?.callbackUrl),
    priority: messagesUnder(c?.priority),
    maxAttempts: messagesUnder(c?.retry),
    enabled: messagesUnder(errors.enabled),
  };
  const props = (f: string) => ({
    "aria-invalid": msgs[f]!.length > 0,
    "aria-describedby": msgs[f]!.length ? `schedule-${f}-error` : undefined,
  });
  const elsewhere = [...(errors.root?.server?.message?.split("\n") ?? []), ...(c?.message ? [c.message] : [])];
  const onFields = Object.keys(errors).some((k) => k !== "root");
  const submit = handleSubmit((v) => (schedule ? update.mutate({ id: schedule.id, ...v }) : create.mutate(v)));

  return (
    <Panel title={schedule ? `Edit schedule: ${schedule.name}` : "New schedule"}>
      <form noValidate className="space-y-4" aria-label={schedule ? "Edit schedule" : "New schedule"} onSubmit={submit}>
        <div>
          <label htmlFor="schedule-name" className={label}>
            Name
          </label>
          <input
            id="schedule-name"
            {...register("name")}
            maxLength={200}
            placeholder="e.g. Nightly export"
            className={input}
            {...props("name")}
          />
          <FieldError id="schedule-name-error" messages={msgs.name!} />
        </div>

        <div className="grid grid-cols-[minmax(0,1fr)_minmax(0,11rem)] gap-2">
          <div>
            <label htmlFor="schedule-cron" className={label}>
              Cron
            </label>
            <input
              id="schedule-cron"
              {...register("cron")}
              spellCheck={false}
              placeholder="0 2 * * *"
              className={`${input} font-mono`}
              {...props("cron")}
            />
          </div>
          <div>
            <label htmlFor="schedule-timezone" className={label}>
              Time zone
            </label>
            <input
              id="schedule-timezone"
              list="schedule-zones"
              {...register("timezone")}
              spellCheck={false}
              placeholder="UTC"
              className={input}
              {...props("timezone")}
            />
            <datalist id="schedule-zones">
              {ZONES.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
          </div>
        </div>
        <div className="-mt-3">
          <FieldError id="schedule-cron-error" messages={msgs.cron!} />
          <FieldError id="schedule-timezone-error" messages={msgs.timezone!} />
          <p className="mt-1 text-xs text-slate-500">
            minute hour day-of-month month day-of-week, or 6 fields with seconds first; read in the time zone.
          </p>
          <NextTicks cron={cron} timezone={timezone} />
        </div>

        <fieldset className="space-y-3 rounded-lg border border-slate-200 p-3">
          <legend className="px-1 text-xs font-semibold text-slate-700">Command submitted at each tick</legend>
          <div>
            <label htmlFor="schedule-type" className={label}>
              Type
            </label>
            <select id="schedule-type" {...register("command.type")} className={input} {...props("type")}>
              {[...new Set([...(types.data ?? []), ...(type ? [type] : [])])].map((x) => (
                <option key={x} value={x}>
                  {x}
                </option>
              ))}
            </select>
            <FieldError id="schedule-type-error" messages={msgs.type!} />
          </div>
          <div>
            <label htmlFor="schedule-payload" className={label}>
              Payload (JSON)
            </label>
            <textarea
              id="schedule-payload"
              rows={6}
              spellCheck={false}
              {...register("command.payload")}
              className={`${input} font-mono text-xs`}
              {...props("payload")}
            />
            <FieldError id="schedule-payload-error" messages={msgs.payload!} />
            {schedule ? (
              <p className="mt-1 text-xs text-slate-500">
                Secrets show masked (••••); left as they are, they are kept.
              </p>
            ) : null}
          </div>
          <div>
            <label htmlFor="schedule-callbackUrl" className={label}>
              Callback URL <span className="font-normal text-slate-400">(optional)</span>
            </label>
            <input
              id="schedule-callbackUrl"
              {...register("command.callbackUrl")}
              placeholder="https://…"
              className={input}
              {...props("callbackUrl")}
            />
            <FieldError id="schedule-callbackUrl-error" messages={msgs.callbackUrl!} />
          </div>
          <div className="grid grid-cols-2 gap-2">
            <div>
              <label htmlFor="schedule-priority" className={label}>
                Priority <span className="font-normal text-slate-400">(optional)</span>
              </label>
              <input
                id="schedule-priority"
                inputMode="numeric"
                {...register("command.priority")}
                placeholder="0"
                className={input}
                {...props("priority")}
              />
              <FieldError id="schedule-priority-error" messages={msgs.priority!} />
            </div>
            <div>
              <label htmlFor="schedule-maxAttempts" className={label}>
                Max attempts <span className="font-normal text-slate-400">(optional)</span>
              </label>
              <input
                id="schedule-maxAttempts"
                inputMode="numeric"
                {...register("command.retry.maxAttempts")}
                placeholder="type's default"
                className={input}
                {...props("maxAttempts")}
              />
              <FieldError id="schedule-maxAttempts-error" messages={msgs.maxAttempts!} />
            </div>
          </div>
        </fieldset>

        <label className="flex items-center gap-2 text-sm text-slate-700">
          <input type="checkbox" {...register("enabled")} />
          Enabled
        </label>
        <FieldError id="schedule-enabled-error" messages={msgs.enabled!} />

        {elsewhere.length ? (
          <div role="alert" className="rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800">
            <ul className="list-disc pl-5">
              {elsewhere.map((e) => (
                <li key={e}>{e}</li>
              ))}
            </ul>
          </div>
        ) : onFields ? (
          <p role="alert" className="text-sm font-medium text-red-700">
            Check the fields marked above.
          </p>
        ) : m.error ? (
          <ErrorBox
            error={m.error}
            title={schedule ? "Could not save the schedule" : "Could not create the schedule"}
          />
        ) : null}

        <div className="flex items-center gap-2">
          <button type="submit" className={btn.primary} disabled={m.isPending}>
            {schedule ? "Save changes" : "Create schedule"}
          </button>
          {schedule ? (
            <button type="button" className={btn.secondary} onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </form>
    </Panel>
  );
}
