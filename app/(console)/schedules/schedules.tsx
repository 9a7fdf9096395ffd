"use client";
// Schedules (DESIGN §8, admins): a command submitted at each tick of a cron
// expression, in a time zone. The form creates and edits; the table lists them
// with their next and last runs and the actions. The pieces are in _components/.
import { useRef, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { Empty, ErrorBox, Loading, PageHeader, Panel } from "@/app/_components/ui";
import { ScheduleForm } from "./_components/schedule-form";
import { SchedulesTable } from "./_components/schedule-list";
import { REFRESH_MS, type Schedule } from "./_components/types";

export function Schedules() {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const list = useQuery(trpc.schedules.list.queryOptions(undefined, { refetchInterval: REFRESH_MS }));
  const [editing, setEditing] = useState<Schedule | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [formKey, setFormKey] = useState(0); // a new key empties the form after a create
  const formRef = useRef<HTMLDivElement>(null);
  const refresh = () => void qc.invalidateQueries(trpc.schedules.list.pathFilter());
  const items = list.data?.items ?? [];

  return (
    <>
      <PageHeader
        title="Schedules"
        subtitle="Commands submitted on a cron schedule, one per tick whatever the number of workers, owned by the client “schedules”."
      />
      <div className="grid items-start gap-6 xl:grid-cols-[minmax(0,25rem)_minmax(0,1fr)]">
        <div ref={formRef} className="scroll-mt-20 space-y-4">
          <ScheduleForm
            key={editing?.id ?? `new-${formKey}`}
            schedule={editing}
            onDone={(id, wasNew) => {
              refresh();
              setEditing(null);
              setCreated(wasNew ? id : null);
              setFormKey((k) => k + 1);
            }}
            onCancel={() => setEditing(null)}
          />
          {created && !editing ? (
            <p
              role="status"
              className="rounded-lg border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800"
            >
              Schedule created. The workers submit its command at each tick from now on.
            </p>
          ) : null}
        </div>
        <Panel
          title={
            <span className="flex items-center gap-2">
              Schedules
              {list.data ? (
                <span className="rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600">
                  {items.length}
                </span>
              ) : null}
            </span>
          }
          actions={<span className="text-xs text-slate-400">refreshes every 5 s</span>}
          bodyClass=""
        >
          {list.error && !list.data ? (
            <div className="p-4">
              <ErrorBox error={list.error} title="Could not load the schedules" onRetry={() => list.refetch()} />
            </div>
          ) : !list.data ? (
            <Loading label="Loading schedules…" />
          ) : items.length === 0 ? (
            <Empty title="No schedule yet">
              Create one with the form: for example, an http command every night at 02:00 in your time zone.
            </Empty>
          ) : (
            <SchedulesTable
              schedules={items}
              editingId={editing?.id ?? null}
              onEdit={(s) => {
                setCreated(null);
                setEditing(s);
                formRef.current?.scrollIntoView({ behavior: "smooth", block: "start" });
              }}
              onChanged={refresh}
              onDeleted={(id) => {
                if (editing?.id === id) setEditing(null);
                refresh();
              }}
            />
          )}
        </Panel>
      </div>
    </>
  );
}
