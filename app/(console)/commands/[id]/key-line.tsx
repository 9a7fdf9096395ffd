"use client";
// A command's ordering key on its page (DESIGN §7): the key, linking to the
// list of its commands, and what the command waits for while an earlier
// command of its key holds the key back.
import Link from "next/link";
import { StatusBadge } from "@/app/_components/ui";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";

type KeyLine = NonNullable<inferRouterOutputs<AppRouter>["commands"]["get"]["ordering"]>;

/** The commands list filtered by this ordering key. */
export const keyListHref = (key: string) => `/commands?orderingKey=${encodeURIComponent(key)}`;

const counted = (n: number, max: number, one: string, many: string) =>
  `${n > max ? `${max.toLocaleString()}+` : n.toLocaleString()} ${n === 1 ? one : many}`;

/** The Facts row: the key, as a link to its commands. */
export function OrderingKeyFact({ line }: { line: KeyLine | null }) {
  if (!line) return <>—</>;
  return (
    <Link
      href={keyListHref(line.key)}
      className="break-all font-mono text-xs text-sky-700 hover:underline"
      title="The commands of this ordering key"
    >
      {line.key}
    </Link>
  );
}

/**
 * Above the panels: when the command waits, the command it waits for (the
 * key's head) and that one's state, and whether an operator must act; when it
 * is the head, how many wait behind it.
 */
export function KeyLineNote({ line }: { line: KeyLine | null }) {
  if (!line || (!line.waiting && !(line.isHead && line.behind > 0))) return null;
  const key = (
    <Link href={keyListHref(line.key)} className="font-mono underline">
      {line.key}
    </Link>
  );
  if (!line.waiting) {
    return (
      <div className="mb-6 rounded-xl border border-slate-200 bg-white px-4 py-3 text-sm text-slate-700" role="note">
        Holds its ordering key {key}:{" "}
        {counted(line.behind, line.countMax, "later command waits", "later commands wait")} for it.
      </div>
    );
  }
  const head = line.head;
  return (
    <div
      className="mb-6 rounded-xl border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900"
      role="note"
      data-testid="key-line"
    >
      <p className="font-medium">
        {head ? (
          <>
            Waits for{" "}
            <Link href={`/commands/${head.id}`} className="font-mono underline">
              {head.id}
            </Link>{" "}
            ({head.status}){head.status === "exception" ? " — an operator must act on it" : ""}
          </>
        ) : (
          "Waits for its turn: the next command of its key is being chosen"
        )}
      </p>
      <p className="mt-1 flex flex-wrap items-center gap-x-2 text-xs text-amber-800">
        {head ? <StatusBadge status={head.status} /> : null}
        <span>
          Commands of the ordering key {key} run one at a time, in the order received
          {line.ahead > 0
            ? `; ${counted(line.ahead, line.countMax, "earlier command waits", "earlier commands wait")} before this one`
            : ""}
          .
        </span>
      </p>
    </div>
  );
}
