"use client";
// The overview's recent batches: name, client, progress, and whether done.
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { Empty, ErrorBox, Loading, Panel, RelTime } from "@/app/_components/ui";
import { atRest, ProgressBar } from "./progress";
import { DoneBadge } from "./done-badge";
import { shortId } from "@/server/engine/short-id";

export function RecentBatches() {
  const trpc = useTRPC();
  const q = useQuery(trpc.batches.list.queryOptions({ limit: 8 }, { refetchInterval: 5_000 }));
  return (
    <Panel title="Recent batches" bodyClass="">
      {q.error && !q.data ? (
        <div className="p-4">
          <ErrorBox error={q.error} title="Could not load batches" onRetry={() => q.refetch()} />
        </div>
      ) : !q.data ? (
        <Loading />
      ) : q.data.items.length === 0 ? (
        <Empty title="No batch yet">A submitBatch with `batch` makes one: its progress shows here.</Empty>
      ) : (
        <ul className="divide-y divide-slate-100" aria-label="Recent batches">
          {q.data.items.map((b) => (
            <li key={b.id}>
              <Link href={`/batches/${b.id}`} className="flex items-center gap-4 px-4 py-2.5 hover:bg-slate-50">
                <div className="w-56 min-w-0 shrink-0">
                  <div className="truncate text-sm font-medium text-slate-800">
                    {b.name ?? `Batch ${shortId(b.id)}`}
                  </div>
                  <div className="truncate text-xs text-slate-500">
                    {b.client} · <RelTime iso={b.createdAt} />
                  </div>
                </div>
                <ProgressBar counts={b.counts} total={b.total} className="h-2" />
                <div className="w-28 shrink-0 text-right text-xs tabular-nums text-slate-600">
                  {atRest(b.counts).toLocaleString()} / {b.total.toLocaleString()}
                </div>
                <DoneBadge done={b.done} />
              </Link>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
