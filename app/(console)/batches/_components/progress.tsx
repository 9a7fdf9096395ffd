"use client";
// A batch's progress: one bar with a segment per state (in the states' order),
// and the count of each state beside it.
import { STATES, STATE_LABEL, STATE_STYLE, type State } from "@/app/_components/ui";
import { AT_REST } from "@/server/engine/states";
import { cx } from "@/app/_components/cx";

export function atRest(counts: Record<State, number>) {
  return AT_REST.reduce((n, s) => n + (counts[s] ?? 0), 0);
}

export function ProgressBar({
  counts,
  total,
  className = "h-3",
}: {
  counts: Record<State, number>;
  total: number;
  className?: string;
}) {
  const done = atRest(counts);
  return (
    <div
      role="progressbar"
      aria-label="Commands at rest"
      aria-valuemin={0}
      aria-valuemax={total}
      aria-valuenow={done}
      className={cx("flex w-full overflow-hidden rounded-full bg-slate-100", className)}
    >
      {STATES.filter((s) => counts[s] > 0).map((s) => (
        <span
          key={s}
          className={STATE_STYLE[s].bar}
          style={{ width: `${(100 * counts[s]) / Math.max(1, total)}%` }}
          title={`${STATE_LABEL[s]}: ${counts[s].toLocaleString()}`}
        />
      ))}
    </div>
  );
}

/** Each state the batch has commands in, with its count (a link to those commands when `href` is given). */
export function StateCounts({ counts, href }: { counts: Record<State, number>; href?: (s: State) => string }) {
  const shown = STATES.filter((s) => counts[s] > 0);
  return (
    <ul className="flex flex-wrap gap-x-4 gap-y-1 text-sm" aria-label="Commands per state">
      {shown.map((s) => {
        const body = (
          <>
            <span className={cx("h-2 w-2 rounded-full", STATE_STYLE[s].dot)} aria-hidden />
            {STATE_LABEL[s]}
            <span className="font-semibold tabular-nums text-slate-900" data-testid={`count-${s}`}>
              {counts[s].toLocaleString()}
            </span>
          </>
        );
        return (
          <li key={s}>
            {href ? (
              <a href={href(s)} className="flex items-center gap-1.5 text-slate-600 hover:text-slate-900">
                {body}
              </a>
            ) : (
              <span className="flex items-center gap-1.5 text-slate-600">{body}</span>
            )}
          </li>
        );
      })}
    </ul>
  );
}
