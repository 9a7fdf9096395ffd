"use client";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import {
  Empty,
  ErrorBox,
  Loading,
  PageHeader,
  Panel,
  RelTime,
  ShortId,
  StatusBadge,
  STATE_LABEL,
  STATE_STYLE,
  type State,
} from "@/app/_components/ui";
import {
  AT_REST,
  FINISH_KINDS,
  IN_FLIGHT,
  PRUNABLE,
  UNSUCCESSFUL,
  WAITING_FOR_A_WORKER,
  type Finish,
} from "@/server/engine/states";
import { cx } from "@/app/_components/cx";
import { RecentBatches } from "./batches/_components/recent-batches";

const GROUPS: { title: string; states: readonly State[] }[] = [
  { title: "In flight", states: IN_FLIGHT },
  { title: "Finished", states: AT_REST },
];
const ATTENTION: readonly State[] = UNSUCCESSFUL;

export function Overview() {
  const trpc = useTRPC();
  const q = useQuery(trpc.commands.overview.queryOptions(undefined, { refetchInterval: 5_000 }));
  return (
    <>
      <PageHeader
        title="Overview"
        subtitle="Commands by state, what finished in the last hour, and what has waited longest."
      />
      {q.error && !q.data ? (
        <ErrorBox error={q.error} title="Could not load the overview" onRetry={() => q.refetch()} />
      ) : null}
      {!q.data && !q.error ? <Loading /> : null}
      {q.data ? (
        <div className="space-y-6">
          <Workers workers={q.data.workers} waiting={q.data.due.count} />
          <p className="text-xs text-slate-500">
            History is kept for {q.data.retentionDays} days: finished commands ({PRUNABLE.join(", ")}) older than that
            are pruned with their attempts; exceptions stay until an operator acts.
          </p>
          {GROUPS.map((g) => (
            <section key={g.title} aria-label={g.title}>
              <h2 className="mb-2 text-xs font-semibold uppercase tracking-wide text-slate-500">{g.title}</h2>
              <div className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-5">
                {g.states.map((s) => {
                  const n = q.data.counts[s] ?? 0;
                  const alert = ATTENTION.includes(s) && n > 0;
                  return (
                    <Link
                      key={s}
                      href={`/commands?status=${s}`}
                      className={cx(
                        "group rounded-xl border bg-white p-4 shadow-sm transition hover:border-slate-300 hover:shadow",
                        alert ? (s === "exception" ? "border-red-200" : "border-orange-200") : "border-slate-200",
                      )}
                    >
                      <div className="flex items-center gap-2 text-sm text-slate-600">
                        <span className={`h-2 w-2 rounded-full ${STATE_STYLE[s].dot}`} aria-hidden />
                        {STATE_LABEL[s]}
                      </div>
                      <div
                        className={cx(
                          "mt-2 text-2xl font-semibold tabular-nums",
                          alert ? (s === "exception" ? "text-red-700" : "text-orange-700") : "text-slate-900",
                        )}
                      >
                        {n.toLocaleString()}
                      </div>
                      <div className="mt-1 text-xs text-slate-400 group-hover:text-slate-600">View commands →</div>
                    </Link>
                  );
                })}
              </div>
            </section>
          ))}

          <div className="grid gap-6 xl:grid-cols-5">
            <Panel title="Finished per minute, last hour" className="xl:col-span-3">
              <ThroughputChart rows={q.data.throughput} />
            </Panel>
            <Panel title="Waiting longest" className="xl:col-span-2" bodyClass="">
              <Waiting rows={q.data.waiting} exceptions={q.data.counts.exception ?? 0} due={q.data.due} />
            </Panel>
          </div>
          <RecentBatches />
        </div>
      ) : null}
    </>
  );
}

type WaitingItem = {
  id: string;
  type: string;
  status: string;
  why: "exception" | "due";
  createdAt: string;
  since: string;
  summary: string | null;
};

/** Exceptions first (an operator must decide), then queued commands whose time has come; nothing scheduled for later. */
function Waiting({
  rows,
  exceptions,
  due,
}: {
  rows: WaitingItem[];
  exceptions: number;
  due: { count: number; max: number };
}) {
  const groups = [
    {
      why: "exception" as const,
      title: "In exception: an operator decides",
      total: exceptions,
      href: "/commands?status=exception",
    },
    {
      why: "due" as const,
      title: "Queued and due, no worker has taken them yet",
      total: due.count,
      href: `/commands?status=${WAITING_FOR_A_WORKER.join(",")}`,
    },
  ];
  if (rows.length === 0)
    return (
      <Empty title="Nothing is waiting">
        No command is in exception, and no queued command is due (commands scheduled for later are not waiting yet).
      </Empty>
    );
  return (
    <div>
      {groups.map((g) => {
        const items = rows.filter((r) => r.why === g.why);
        if (!items.length) return null;
        const more = g.total - items.length;
        return (
          <section key={g.why} aria-label={g.title}>
            <h3 className="flex items-baseline justify-between border-b border-slate-100 bg-slate-50 px-4 py-1.5 text-xs font-medium text-slate-600">
              <span>{g.title}</span>
              <Link href={g.href} className="text-sky-700 hover:underline">
                {g.why === "due" && g.total >= due.max ? `${due.max.toLocaleString()}+` : g.total.toLocaleString()} ·
                view
              </Link>
            </h3>
            <ul className="divide-y divide-slate-100">
              {items.map((o) => (
                <li key={o.id}>
                  <Link href={`/commands/${o.id}`} className="flex items-center gap-3 px-4 py-2.5 hover:bg-slate-50">
                    <StatusBadge status={o.status} />
                    <div className="min-w-0 flex-1">
                      <div className="flex items-center gap-2 text-sm text-slate-800">
                        <span className="font-medium">{o.type}</span>
                        <span className="text-slate-400">
                          <ShortId id={o.id} />
                        </span>
                      </div>
                      {o.summary ? (
                        <p className="truncate text-xs text-red-700" title={o.summary}>
                          {o.summary}
                        </p>
                      ) : null}
                    </div>
                    <div className="shrink-0 text-right text-xs text-slate-500">
                      {o.why === "exception" ? "in exception since" : "due since"} <RelTime iso={o.since} />
                    </div>
                  </Link>
                </li>
              ))}
            </ul>
            {more > 0 ? (
              <p className="px-4 py-1.5 text-xs text-slate-500">
                and {g.why === "due" && g.total >= due.max ? "more" : more.toLocaleString()} more
              </p>
            ) : null}
          </section>
        );
      })}
    </div>
  );
}

type Row = { minute: string } & Record<Finish, number>;
const LOOK: Record<Finish, { label: string; fill: string }> = {
  succeeded: { label: "Succeeded", fill: "#10b981" },
  failed: { label: "Failed", fill: "#f97316" },
  exception: { label: "Exception", fill: "#dc2626" },
};
const SERIES = FINISH_KINDS.map((key) => ({ key, ...LOOK[key] }));
const finishedIn = (b: Record<Finish, number>) => FINISH_KINDS.reduce((a, k) => a + b[k], 0);

/** Stacked bars, one per minute over the last 60 minutes (minutes without finishes are zero). */
function ThroughputChart({ rows }: { rows: Row[] }) {
  const byMinute = new Map(rows.map((r) => [Math.floor(new Date(r.minute).getTime() / 60_000), r]));
  const nowMin = Math.floor(Date.now() / 60_000);
  const buckets = Array.from({ length: 60 }, (_, i) => {
    const m = nowMin - 59 + i;
    const r = byMinute.get(m);
    const counts = Object.fromEntries(FINISH_KINDS.map((k) => [k, r?.[k] ?? 0])) as Record<Finish, number>;
    return { at: new Date(m * 60_000), ...counts };
  });
  const total = buckets.reduce((a, b) => a + finishedIn(b), 0);
  const sums = Object.fromEntries(SERIES.map((s) => [s.key, buckets.reduce((a, b) => a + b[s.key], 0)])) as Record<
    Finish,
    number
  >;
  const max = Math.max(1, ...buckets.map(finishedIn));
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const W = 720,
    H = 220,
    L = 36,
    B = 22,
    T = 8;
  const bw = (W - L) / 60;
  const y = (v: number) => T + (H - T - B) * (1 - v / top);
  const time = (d: Date) => d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return (
    <div>
      <div className="mb-3 flex flex-wrap items-center gap-4 text-xs text-slate-600">
        {SERIES.map((s) => (
          <span key={s.key} className="flex items-center gap-1.5">
            <span className="h-2.5 w-2.5 rounded-sm" style={{ background: s.fill }} aria-hidden />
            {s.label} <span className="font-semibold tabular-nums text-slate-900">{sums[s.key].toLocaleString()}</span>
          </span>
        ))}
        <span className="ml-auto text-slate-400">{total.toLocaleString()} finished in 60 min</span>
      </div>
      <p className="-mt-1 mb-2 text-xs text-slate-400">
        Each command counts in the minute it reached its state; a later retry or resolve adds to a later minute and
        changes nothing here.
      </p>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        className="h-56 w-full"
        role="img"
        aria-label={`Finished commands per minute: ${sums.succeeded} succeeded, ${sums.failed} failed, ${sums.exception} exceptions in the last hour`}
      >
        {Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step).map((v) => (
          <g key={v}>
            <line x1={L} x2={W} y1={y(v)} y2={y(v)} stroke="#e2e8f0" strokeDasharray={v === 0 ? undefined : "3 3"} />
            <text x={L - 6} y={y(v) + 3} textAnchor="end" fontSize="10" fill="#94a3b8">
              {v}
            </text>
          </g>
        ))}
        {buckets.map((b, i) => {
          let acc = 0;
          return (
            <g key={i}>
              <title>{`${time(b.at)}: ${b.succeeded} succeeded, ${b.failed} failed, ${b.exception} exception`}</title>
              <rect x={L + i * bw} y={T} width={bw} height={H - T - B} fill="transparent" />
              {SERIES.map((s) => {
                const v = b[s.key];
                if (!v) return null;
                const y0 = y(acc);
                acc += v;
                return (
                  <rect
                    key={s.key}
                    x={L + i * bw + 1}
                    width={Math.max(1, bw - 2)}
                    y={y(acc)}
                    height={y0 - y(acc)}
                    fill={s.fill}
                    rx={1}
                  />
                );
              })}
            </g>
          );
        })}
        {[0, 15, 30, 45, 59].map((i) => (
          <text key={i} x={L + i * bw + bw / 2} y={H - 6} textAnchor="middle" fontSize="10" fill="#94a3b8">
            {time(buckets[i]!.at)}
          </text>
        ))}
      </svg>
      {total === 0 ? (
        <p className="-mt-28 mb-20 text-center text-sm text-slate-400">No command finished in the last hour.</p>
      ) : null}
      {total > 0 ? (
        <details className="mt-2 text-xs text-slate-600">
          <summary className="cursor-pointer select-none text-slate-500 hover:text-slate-800">
            Per-minute figures
          </summary>
          <table className="mt-2 w-full max-w-md text-left tabular-nums" aria-label="Finished per minute">
            <thead className="text-slate-500">
              <tr>
                <th className="py-1 pr-3 font-medium">Minute</th>
                {SERIES.map((s) => (
                  <th key={s.key} className="py-1 pr-3 text-right font-medium">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {buckets
                .filter((b) => finishedIn(b) > 0)
                .reverse()
                .map((b) => (
                  <tr key={b.at.getTime()}>
                    <th scope="row" className="py-1 pr-3 font-normal">
                      <time dateTime={b.at.toISOString()}>{time(b.at)}</time>
                    </th>
                    {SERIES.map((s) => (
                      <td key={s.key} className="py-1 pr-3 text-right">
                        {b[s.key]}
                      </td>
                    ))}
                  </tr>
                ))}
            </tbody>
          </table>
        </details>
      ) : null}
    </div>
  );
}

function niceStep(max: number) {
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return Math.max(1, m * p);
  return Math.max(1, 10 * p);
}

/** Which worker processes are alive (each reports every 5 s); none while commands wait is the first thing to know. */
function Workers({
  workers,
  waiting,
}: {
  workers: { id: string; startedAt: string; seenAt: string }[];
  waiting: number;
}) {
  if (workers.length === 0) {
    return (
      <div
        role="status"
        className={`rounded-xl border p-4 text-sm ${waiting > 0 ? "border-amber-300 bg-amber-50 text-amber-900" : "border-slate-200 bg-white text-slate-600"}`}
      >
        <span className="font-medium">No worker is running</span> (none has reported in the last 30 s)
        {waiting > 0 ? (
          <>
            : {waiting.toLocaleString()} command{waiting === 1 ? "" : "s"} waiting will not move until one starts (
            <code className="font-mono">npm run worker</code>).
          </>
        ) : (
          "."
        )}
      </div>
    );
  }
  return (
    <section aria-label="Workers" className="rounded-xl border border-slate-200 bg-white p-4 text-sm shadow-sm">
      <div className="flex flex-wrap items-center gap-x-4 gap-y-1">
        <span className="flex items-center gap-2 font-medium text-slate-800">
          <span className="h-2 w-2 rounded-full bg-emerald-500" aria-hidden />
          {workers.length} worker{workers.length === 1 ? "" : "s"} running
        </span>
        {workers.map((w) => (
          <span
            key={w.id}
            className="font-mono text-xs text-slate-500"
            title={`started ${new Date(w.startedAt).toLocaleString()}`}
          >
            {w.id} · started <RelTime iso={w.startedAt} />
          </span>
        ))}
      </div>
    </section>
  );
}
