"use client";
// One batch (DESIGN §8): its progress and counts, its callback deliveries, and
// its commands with the commands page's filters, selection and bulk actions.
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";
import { useTRPC } from "@/app/_components/trpc";
import { ActionButtons } from "@/app/_components/actions";
import { CopyButton, ErrorBox, Loading, Panel, RelTime, fmtTime } from "@/app/_components/ui";
import { UNSUCCESSFUL } from "@/server/engine/states";
import { CommandsList } from "../../commands/list";
import { atRest, ProgressBar, StateCounts } from "../_components/progress";
import { DoneBadge } from "../_components/done-badge";

export function BatchPage({ id, canAct }: { id: string; canAct: boolean }) {
  const trpc = useTRPC();
  const q = useQuery(trpc.batches.get.queryOptions({ id }, { refetchInterval: 2_000 }));
  if (q.error && !q.data)
    return (
      <>
        <BackLink />
        <ErrorBox error={q.error} title="Could not load this batch" onRetry={() => q.refetch()} />
      </>
    );
  if (!q.data) return <Loading label="Loading the batch…" />;
  const { batch: b, deliveries } = q.data;
  const rest = atRest(b.counts);
  const unsuccessful = UNSUCCESSFUL.reduce((n, s) => n + b.counts[s], 0);
  const pct = Math.floor((100 * rest) / b.total);

  return (
    <>
      <BackLink />
      <div className="mb-6 flex flex-wrap items-start justify-between gap-4">
        <div className="min-w-0">
          <div className="flex flex-wrap items-center gap-3">
            <h1 className="text-xl font-semibold tracking-tight text-slate-900">{b.name ?? "Batch"}</h1>
            <DoneBadge done={b.done} />
          </div>
          <div className="mt-1 flex items-center gap-2 text-sm text-slate-500">
            <span className="font-mono">{b.id}</span>
            <CopyButton text={b.id} label="Copy id" small />
          </div>
        </div>
      </div>

      <div className="mb-6 grid gap-6 lg:grid-cols-3">
        <Panel title="Progress" className="lg:col-span-2">
          <div className="mb-2 flex items-baseline justify-between text-sm">
            <span className="text-slate-600">
              <span className="font-semibold tabular-nums text-slate-900" data-testid="batch-at-rest">
                {rest.toLocaleString()}
              </span>{" "}
              of {b.total.toLocaleString()} commands at rest
            </span>
            <span className="tabular-nums text-slate-500">{pct}%</span>
          </div>
          <ProgressBar counts={b.counts} total={b.total} />
          <div className="mt-3">
            <StateCounts counts={b.counts} />
          </div>
          {canAct && unsuccessful > 0 ? (
            <div className="mt-4 flex flex-wrap items-center gap-3 border-t border-slate-100 pt-4">
              <span className="text-sm text-slate-600">{unsuccessful.toLocaleString()} failed or in exception:</span>
              <ActionButtons
                size="sm"
                target={{ filter: { batchId: b.id, status: [...UNSUCCESSFUL] } }}
                what={`the batch's ${unsuccessful.toLocaleString()} failed and exception commands`}
                onDone={() => void q.refetch()}
              />
            </div>
          ) : null}
        </Panel>
        <Panel title="Batch">
          <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 text-sm">
            <dt className="text-slate-500">Client</dt>
            <dd className="text-slate-900">{b.client}</dd>
            <dt className="text-slate-500">Commands</dt>
            <dd className="tabular-nums text-slate-900">{b.total.toLocaleString()}</dd>
            <dt className="text-slate-500">Created</dt>
            <dd>
              <RelTime iso={b.createdAt} />
            </dd>
            <dt className="text-slate-500">Done</dt>
            <dd>{b.doneAt ? <RelTime iso={b.doneAt} /> : "not yet"}</dd>
            <dt className="text-slate-500">Callback</dt>
            <dd className="break-all font-mono text-xs text-slate-700">{b.callbackUrl ?? "—"}</dd>
          </dl>
        </Panel>
      </div>

      {b.callbackUrl ? <Deliveries deliveries={deliveries} /> : null}

      <h2 className="mb-3 mt-8 text-sm font-semibold text-slate-800">Commands of this batch</h2>
      <CommandsList canAct={canAct} batch={{ id: b.id, counts: b.counts }} />
    </>
  );
}

type Delivery = inferRouterOutputs<AppRouter>["batches"]["get"]["deliveries"][number];

/** One row each time the batch became done; each try of it. */
function Deliveries({ deliveries }: { deliveries: Delivery[] }) {
  return (
    <Panel title={`Callbacks (${deliveries.length})`} bodyClass="">
      {deliveries.length === 0 ? (
        <p className="px-4 py-3 text-sm text-slate-500">Sent each time the batch becomes done; not yet.</p>
      ) : (
        <ul className="divide-y divide-slate-100" aria-label="Callback deliveries">
          {deliveries.map((d) => (
            <li key={d.id} className="px-4 py-3 text-sm">
              <div className="flex flex-wrap items-center gap-3">
                <span
                  className={
                    d.deliveredAt
                      ? "rounded bg-emerald-50 px-1.5 py-0.5 text-xs font-medium text-emerald-700"
                      : "rounded bg-amber-50 px-1.5 py-0.5 text-xs font-medium text-amber-800"
                  }
                >
                  {d.deliveredAt ? "delivered" : "pending"}
                </span>
                <span className="text-slate-600">
                  done <RelTime iso={d.createdAt} />
                </span>
                <span className="text-xs text-slate-500">
                  {d.attempts} {d.attempts === 1 ? "try" : "tries"}
                  {d.deliveredAt ? null : d.nextAt ? <> · next {fmtTime(d.nextAt)}</> : null}
                </span>
              </div>
              {d.tries.length ? (
                <ol className="mt-2 space-y-0.5 text-xs text-slate-600">
                  {d.tries.map((t) => (
                    <li key={t.number} className="font-mono">
                      #{t.number} {fmtTime(t.startedAt)} → {t.status ?? "no answer"}
                      {t.error ? ` (${t.error})` : ""}
                    </li>
                  ))}
                </ol>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}

function BackLink() {
  return (
    <Link href="/" className="mb-3 inline-block text-sm text-slate-500 hover:text-slate-800">
      ← Overview
    </Link>
  );
}
