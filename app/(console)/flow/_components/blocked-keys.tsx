"use client";
// Ordering keys an exception holds up (DESIGN §7): the key's earliest
// unfinished command is in exception, so nothing after it starts until an
// operator retries, resolves or compensates it (on its page).
import Link from "next/link";
import { Empty, RelTime, ShortId } from "@/app/_components/ui";
import type { BlockedKey } from "./types";

export function BlockedKeys({ keys, more }: { keys: BlockedKey[]; more: boolean }) {
  if (keys.length === 0)
    return (
      <Empty title="No ordering key is blocked">
        A key is blocked when its earliest unfinished command is in exception: the commands behind it wait until an
        operator acts on it.
      </Empty>
    );
  const th = "px-3 py-2.5";
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm" aria-label="Blocked ordering keys">
        <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
          <tr>
            <th className="px-4 py-2.5">Client</th>
            <th className={th}>Ordering key</th>
            <th className={th}>Blocked by</th>
            <th className={th}>Since</th>
            <th className={`${th} text-right`}>Waiting behind it</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {keys.map((k) => (
            <tr key={`${k.clientName}\0${k.orderingKey}`}>
              <td className="px-4 py-3 text-slate-700">{k.clientName}</td>
              <td className="px-3 py-3 font-mono text-sm text-slate-900">{k.orderingKey}</td>
              <td className="px-3 py-3">
                <Link
                  href={`/commands/${k.blockedBy}`}
                  className="inline-flex items-center gap-1.5 text-sky-700 hover:underline"
                  aria-label={`command ${k.blockedBy}`}
                >
                  <ShortId id={k.blockedBy} />
                  <span className="text-xs text-slate-500">{k.type}</span>
                </Link>
              </td>
              <td className="px-3 py-3 text-slate-600">
                <RelTime iso={k.blockedSince} />
              </td>
              <td className="px-3 py-3 text-right tabular-nums">{k.waiting.toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {more ? (
        <p className="border-t border-slate-100 px-4 py-2 text-xs text-slate-500">
          Showing the {keys.length} keys blocked longest; more are blocked.
        </p>
      ) : null}
    </div>
  );
}
