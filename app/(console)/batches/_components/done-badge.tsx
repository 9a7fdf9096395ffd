import { cx } from "@/app/_components/cx";

export function DoneBadge({ done }: { done: boolean }) {
  return (
    <span
      data-testid="batch-done"
      className={cx(
        "inline-flex shrink-0 items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset",
        done ? "bg-emerald-50 text-emerald-700 ring-emerald-600/20" : "bg-sky-50 text-sky-700 ring-sky-600/20",
      )}
    >
      {done ? "Done" : "Open"}
    </span>
  );
}
