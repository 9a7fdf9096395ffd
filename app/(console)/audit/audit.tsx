"use client";
import { useState } from "react";
import Link from "next/link";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { btn, Empty, ErrorBox, fmtTime, Loading, PageHeader, RelTime, ShortId } from "@/app/_components/ui";

const ACTION_STYLE: Record<string, string> = {
  retry: "bg-sky-50 text-sky-700",
  compensate: "bg-violet-50 text-violet-700",
  cancel: "bg-slate-100 text-slate-700",
  resolve: "bg-emerald-50 text-emerald-700",
  editAndRetry: "bg-amber-50 text-amber-800",
};

export function AuditLog() {
  const trpc = useTRPC();
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors.at(-1);
  const q = useQuery(
    trpc.audit.list.queryOptions(
      { cursor, limit: 50 },
      { refetchInterval: cursor ? false : 10_000, placeholderData: keepPreviousData },
    ),
  );
  return (
    <>
      <PageHeader
        title="Audit log"
        subtitle="Every operator action and access change: who, what, when, on which commands, and why."
      />
      <div className="overflow-hidden rounded-xl border border-slate-200 bg-white shadow-sm">
        {q.error && !q.data ? (
          <div className="p-4">
            <ErrorBox error={q.error} title="Could not load the audit log" onRetry={() => q.refetch()} />
          </div>
        ) : !q.data ? (
          <Loading />
        ) : q.data.items.length === 0 ? (
          <Empty title="Nothing recorded yet">
            Sign-ins, actions on commands and changes to users and tokens appear here.
          </Empty>
        ) : (
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm">
              <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
                <tr>
                  <th className="px-4 py-2.5">When</th>
                  <th className="px-3 py-2.5">Who</th>
                  <th className="px-3 py-2.5">Action</th>
                  <th className="px-3 py-2.5">Commands</th>
                  <th className="px-3 py-2.5">Reason</th>
                  <th className="px-4 py-2.5">Details</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {q.data.items.map((a) => (
                  <tr key={a.id} className="align-top">
                    <td className="whitespace-nowrap px-4 py-2.5 text-slate-600">
                      <RelTime iso={a.at} />
                      <div className="text-xs text-slate-400">{fmtTime(a.at)}</div>
                    </td>
                    <td className="px-3 py-2.5 text-slate-800">{a.actor}</td>
                    <td className="px-3 py-2.5">
                      <span
                        className={`rounded px-1.5 py-0.5 text-xs font-medium ${ACTION_STYLE[a.action.split(":")[0]!] ?? "bg-slate-100 text-slate-700"}`}
                      >
                        {a.action}
                      </span>
                    </td>
                    <td className="px-3 py-2.5">
                      {a.commandIds.length === 0 ? (
                        <span className="text-slate-300">—</span>
                      ) : (
                        <div className="flex max-w-[16rem] flex-wrap gap-1">
                          {a.commandIds.slice(0, 5).map((id) => (
                            <Link key={id} href={`/commands/${id}`} className="text-sky-700 hover:underline">
                              <ShortId id={id} />
                            </Link>
                          ))}
                          {a.commandIds.length > 5 ? (
                            <span className="text-xs text-slate-500">+{a.commandIds.length - 5} more</span>
                          ) : null}
                        </div>
                      )}
                    </td>
                    <td className="max-w-[24rem] px-3 py-2.5 text-slate-700">
                      {a.reason ?? <span className="text-slate-300">—</span>}
                    </td>
                    <td className="max-w-[22rem] px-4 py-2.5">
                      {a.details && typeof a.details === "object" && Object.keys(a.details).length ? (
                        <code
                          className="block truncate font-mono text-xs text-slate-500"
                          title={JSON.stringify(a.details)}
                        >
                          {Object.entries(a.details as Record<string, unknown>)
                            .filter(([, v]) => v !== undefined && v !== null)
                            .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
                            .join("  ")}
                        </code>
                      ) : (
                        <span className="text-slate-300">—</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {q.data && (cursors.length > 1 || q.data.nextCursor) ? (
          <div className="flex items-center justify-between border-t border-slate-200 bg-slate-50 px-4 py-2.5 text-sm text-slate-600">
            <span>Page {cursors.length}</span>
            <div className="flex gap-2">
              <button
                type="button"
                className={btn.secondary}
                disabled={cursors.length <= 1}
                onClick={() => setCursors((c) => c.slice(0, -1))}
              >
                Newer
              </button>
              <button
                type="button"
                className={btn.secondary}
                disabled={!q.data.nextCursor}
                onClick={() => q.data?.nextCursor && setCursors((c) => [...c, q.data!.nextCursor!])}
              >
                Older
              </button>
            </div>
          </div>
        ) : null}
      </div>
    </>
  );
}
