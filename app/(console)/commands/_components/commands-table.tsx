"use client";
import Link from "next/link";
import { RelTime, StatusBadge } from "@/app/_components/ui";
import type { CommandRow } from "./types";
import { shortId } from "@/server/engine/short-id";

/** One page of commands; with `canAct`, a checkbox per row and one for the page. */
export function CommandsTable(props: {
  items: CommandRow[];
  canAct: boolean;
  selected: Set<string>;
  allMatching: boolean;
  allOnPage: boolean;
  onToggle: (id: string) => void;
  onTogglePage: () => void;
}) {
  const { items, canAct, selected, allMatching, allOnPage, onToggle, onTogglePage } = props;
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
          <tr>
            {canAct ? (
              <th className="w-10 py-2.5 pl-4">
                <input
                  type="checkbox"
                  aria-label="Select all on this page"
                  checked={allOnPage}
                  onChange={onTogglePage}
                  className="h-4 w-4 rounded border-slate-300"
                />
              </th>
            ) : null}
            <th className="px-3 py-2.5">Command</th>
            <th className="px-3 py-2.5">Type</th>
            <th className="px-3 py-2.5">State</th>
            <th
              className="px-3 py-2.5 text-right"
              title="Requests made to the backend (execute, reconcile, poll, compensate); upstream callbacks are not counted"
            >
              Attempts
            </th>
            <th className="px-3 py-2.5">Idempotency key</th>
            <th className="px-3 py-2.5">Created</th>
            <th className="px-3 py-2.5">Updated</th>
            <th className="px-3 py-2.5">Failure / last error</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {items.map((c) => (
            <tr key={c.id} className={`hover:bg-slate-50 ${selected.has(c.id) || allMatching ? "bg-sky-50/60" : ""}`}>
              {canAct ? (
                <td className="py-2 pl-4">
                  <input
                    type="checkbox"
                    aria-label={`Select ${c.id}`}
                    checked={allMatching || selected.has(c.id)}
                    onChange={() => onToggle(c.id)}
                    className="h-4 w-4 rounded border-slate-300"
                  />
                </td>
              ) : null}
              <td className="px-3 py-2">
                <Link
                  href={`/commands/${c.id}`}
                  className="font-mono text-xs text-sky-700 hover:text-sky-900 hover:underline"
                  title={c.id}
                >
                  {shortId(c.id)}
                </Link>
              </td>
              <td className="px-3 py-2 text-slate-700">{c.type}</td>
              <td className="px-3 py-2">
                <StatusBadge status={c.status} />
              </td>
              <td className="whitespace-nowrap px-3 py-2 text-right tabular-nums text-slate-600">
                {c.attemptCount}
                {c.worker ? " " : null}
                {c.worker ? (
                  <span className="text-xs text-blue-700" title={`An attempt is in progress on ${c.worker}`}>
                    + 1 in progress
                  </span>
                ) : null}
              </td>
              <td
                className="max-w-[14rem] truncate px-3 py-2 font-mono text-xs text-slate-500"
                title={c.idempotencyKey ?? undefined}
              >
                {c.idempotencyKey ?? <span className="text-slate-300">—</span>}
              </td>
              <td className="whitespace-nowrap px-3 py-2 text-slate-500">
                <RelTime iso={c.createdAt} />
              </td>
              <td className="whitespace-nowrap px-3 py-2 text-slate-500">
                <RelTime iso={c.updatedAt} />
              </td>
              <td
                className="max-w-[22rem] truncate px-3 py-2 text-xs text-red-700"
                title={c.failureSummary ?? undefined}
              >
                {c.failureSummary ?? ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
