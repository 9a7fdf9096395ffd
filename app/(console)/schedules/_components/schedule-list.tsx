"use client";
// The schedules table: each schedule's cron and time zone, whether it is
// enabled, its next run and its last (with a link to the command it made),
// and its actions: edit, enable/disable, run now, delete.
import Link from "next/link";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { btn, ErrorBox, fmtTime, RelTime, ShortId, StatusBadge } from "@/app/_components/ui";
import { Pill } from "@/app/(console)/alerts/_components/pill";
import type { Schedule } from "./types";

type RowProps = { onEdit: (s: Schedule) => void; onChanged: () => void; onDeleted: (id: string) => void };

export function SchedulesTable({
  schedules,
  editingId,
  ...row
}: RowProps & { schedules: Schedule[]; editingId: string | null }) {
  const th = "px-3 py-2.5";
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
          <tr>
            <th className="px-4 py-2.5">Schedule</th>
            <th className={th}>Cron · time zone</th>
            <th className={th}>State</th>
            <th className={th}>Next run</th>
            <th className="px-4 py-2.5">Last run</th>
          </tr>
        </thead>
        {schedules.map((s) => (
          <ScheduleRows key={s.id} s={s} editing={editingId === s.id} {...row} />
        ))}
      </table>
    </div>
  );
}

/** When, relative, and as the schedule's time zone's wall clock (the cron's fields are read there). */
function When({ iso, timezone }: { iso: string | null; timezone: string }) {
  if (!iso) return <span className="text-slate-400">—</span>;
  let wall: string;
  try {
    wall = new Intl.DateTimeFormat(undefined, {
      timeZone: timezone,
      weekday: "short",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "short",
    }).format(new Date(iso));
  } catch {
    wall = fmtTime(iso);
  }
  return (
    <span className="block whitespace-nowrap" title={fmtTime(iso)}>
      <RelTime iso={iso} />
      <span className="block text-xs text-slate-500">{wall}</span>
    </span>
  );
}

function ScheduleRows({ s, editing, onEdit, onChanged, onDeleted }: RowProps & { s: Schedule; editing: boolean }) {
  const trpc = useTRPC();
  const update = useMutation(trpc.schedules.update.mutationOptions({ onSuccess: onChanged }));
  const del = useMutation(trpc.schedules.delete.mutationOptions({ onSuccess: () => onDeleted(s.id) }));
  const run = useMutation(trpc.schedules.runNow.mutationOptions({ onSuccess: onChanged }));
  const busy = update.isPending || del.isPending || run.isPending;
  const small = `${btn.secondary} px-2.5 py-1 text-xs`;
  const td = "px-3 py-3 align-top";
  const err = update.error ?? del.error ?? run.error;
  return (
    <tbody
      aria-label={s.name}
      className={`border-b border-slate-200 last:border-b-0 ${editing ? "bg-sky-50/50" : ""} ${!s.enabled ? "text-slate-500" : ""}`}
    >
      <tr>
        <td className="px-4 py-3 align-top">
          <span className="font-medium text-slate-900">{s.name}</span>
          <span className="mt-0.5 block max-w-64 truncate text-xs text-slate-500">
            {s.command.type}
            {typeof (s.command.payload as { url?: unknown })?.url === "string"
              ? ` → ${(s.command.payload as { url: string }).url}`
              : ""}
          </span>
        </td>
        <td className={td}>
          <code className="rounded bg-slate-100 px-1.5 py-0.5 font-mono text-xs whitespace-nowrap text-slate-800">
            {s.cron}
          </code>
          <span className="mt-1 block text-xs whitespace-nowrap text-slate-600">{s.timezone}</span>
        </td>
        <td className={td}>{s.enabled ? <Pill tone="ok">enabled</Pill> : <Pill tone="muted">disabled</Pill>}</td>
        <td className={td} data-testid="next-run">
          <When iso={s.nextRunAt} timezone={s.timezone} />
        </td>
        <td className="px-4 py-3 align-top" data-testid="last-run">
          <When iso={s.lastRunAt} timezone={s.timezone} />
          {s.lastCommandId ? (
            <span className="mt-1 flex items-center gap-2">
              <Link
                href={`/commands/${s.lastCommandId}`}
                className="text-sky-700 hover:underline"
                aria-label={`Last command of ${s.name}`}
              >
                <ShortId id={s.lastCommandId} />
              </Link>
              {s.lastCommandStatus ? <StatusBadge status={s.lastCommandStatus} /> : null}
            </span>
          ) : null}
        </td>
      </tr>
      <tr>
        <td colSpan={5} className="px-4 pb-3">
          <div className="flex flex-wrap items-center gap-2" role="group" aria-label={`Actions for ${s.name}`}>
            <button type="button" className={small} onClick={() => onEdit(s)} disabled={busy}>
              Edit
            </button>
            <button
              type="button"
              className={small}
              disabled={busy}
              onClick={() => update.mutate({ id: s.id, enabled: !s.enabled })}
            >
              {s.enabled ? "Disable" : "Enable"}
            </button>
            <button
              type="button"
              className={`${small} text-sky-800`}
              disabled={busy}
              onClick={() => run.mutate({ id: s.id })}
              title="Submits the schedule's command once now, whether or not it is enabled"
            >
              {run.isPending ? "Submitting…" : "Run now"}
            </button>
            <button
              type="button"
              className="ml-auto rounded-md px-2 py-1 text-xs font-medium text-red-700 hover:bg-red-50 disabled:opacity-50"
              disabled={busy}
              onClick={() => {
                if (window.confirm(`Delete the schedule "${s.name}"? The commands it made stay.`))
                  del.mutate({ id: s.id });
              }}
            >
              Delete
            </button>
          </div>
          {run.data ? (
            <div
              role="status"
              className="mt-2 flex items-start justify-between gap-3 rounded-lg border border-sky-200 bg-sky-50 px-3 py-2 text-xs text-sky-900"
            >
              <p>
                Command submitted:{" "}
                <Link href={`/commands/${run.data.commandId}`} className="font-medium text-sky-800 hover:underline">
                  {run.data.commandId}
                </Link>
              </p>
              <button type="button" className="shrink-0 text-sky-700 hover:underline" onClick={() => run.reset()}>
                Dismiss
              </button>
            </div>
          ) : null}
          {err ? (
            <div className="mt-2">
              <ErrorBox
                error={err}
                title={
                  run.error
                    ? "Could not submit the command"
                    : del.error
                      ? "Could not delete the schedule"
                      : "Could not update the schedule"
                }
              />
            </div>
          ) : null}
        </td>
      </tr>
    </tbody>
  );
}
