"use client";
// Operator actions: Retry, Compensate, Cancel, Resolve. Which one applies to
// which command is the server's rule (server/engine/actions.ts, asked
// through commands.preview): a button that would change nothing is disabled
// and says why; the dialog says how many commands will change and how many
// will be skipped before it asks for confirmation and a reason, then shows
// what was updated and what was skipped (with the server's reason).
import { useEffect, useId, useRef, useState } from "react";
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";
import { ACTION_FROM, RESOLVE_OUTCOMES, type ActionName, type ResolveOutcome } from "@/server/engine/actions";
import { useTRPC, useTRPCClient } from "./trpc";
import { btn, ErrorBox, input, ShortId, type State } from "./ui";
import { cx } from "./cx";

/** The actions on one command or a selection; Edit & retry, on one command with its payload, is ./edit-retry.tsx. */
export type Action = Exclude<ActionName, "editAndRetry">;
export type Filter = {
  status?: State[];
  type?: string;
  q?: string;
  createdAfter?: string;
  createdBefore?: string;
  orderingKey?: string;
  batchId?: string;
};
export type Target = { ids: string[] } | { filter: Filter };
type Result = { updated: string[]; skipped: { id: string; reason: string }[] };
type Preview = inferRouterOutputs<AppRouter>["commands"]["preview"];

const ACTIONS: { action: Action; label: string; help: string }[] = [
  {
    action: "retry",
    label: "Retry",
    help: "Runs the command again from the start (an unknown earlier outcome is reconciled first).",
  },
  { action: "compensate", label: "Compensate", help: "Runs the type's compensation to undo the command's effects." },
  { action: "cancel", label: "Cancel", help: "Stops the command before a worker runs it again." },
  {
    action: "resolve",
    label: "Resolve",
    help: "Records the outcome you established by hand (for example, by checking the backend).",
  },
];

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** "all 37 commands that match this filter", from the server's count (an action takes at most `max` of them). */
export function matchingPhrase(total: number | undefined, max: number): string {
  if (total === undefined) return "all commands that match this filter";
  if (total > max)
    return `the newest ${max.toLocaleString()} of the ${total.toLocaleString()} commands that match this filter`;
  return total === 1
    ? "the 1 command that matches this filter"
    : `all ${total.toLocaleString()} commands that match this filter`;
}

/**
 * The four action buttons; each opens the confirmation dialog for `target`.
 * For a list of ids the server's preview says which actions would change
 * anything: the others are disabled, with the reason as their tooltip.
 * `refreshKey` (e.g. the command's state) asks the preview again when it changes.
 * `children` go into the same group, after the four (the command page's Edit & retry).
 */
export function ActionButtons({
  target,
  what,
  onDone,
  size = "md",
  refreshKey,
  children,
}: {
  target: Target;
  what: string;
  onDone?: (r: Result) => void;
  size?: "sm" | "md";
  refreshKey?: string;
  children?: React.ReactNode;
}) {
  const [open, setOpen] = useState<Action | null>(null);
  const trpc = useTRPC();
  const byIds = "ids" in target;
  // "All that match" is previewed in the dialog only: counting a whole filter every few seconds is not free.
  const preview = useQuery(
    trpc.commands.preview.queryOptions(byIds ? { ids: target.ids } : { ids: [] }, {
      enabled: byIds && target.ids.length > 0,
      refetchInterval: 3_000,
    }),
  );
  const { refetch } = preview;
  useEffect(() => {
    if (refreshKey !== undefined) void refetch();
  }, [refreshKey, refetch]);

  const state = (a: Action): { disabled: boolean; title: string } => {
    const help = ACTIONS.find((x) => x.action === a)!.help;
    if (!byIds) return { disabled: false, title: help };
    if (!preview.data)
      return {
        disabled: true,
        title: preview.error
          ? `Could not check whether this applies: ${preview.error.message}`
          : "Checking whether this applies…",
      };
    const p = preview.data.actions[a];
    if (p.change > 0)
      return {
        disabled: false,
        title: p.skip ? `${help} Changes ${p.change} of ${p.change + p.skip}; skips ${p.skip}.` : help,
      };
    const why = p.skipped.map((s) => (p.skip > 1 ? `${s.count} × ${s.reason}` : s.reason)).join("; ");
    return { disabled: true, title: `Not available: ${why}` };
  };

  return (
    <>
      <div className="flex flex-wrap items-center gap-2" role="group" aria-label="Actions">
        {ACTIONS.map((a) => {
          const st = state(a.action);
          return (
            <button
              key={a.action}
              type="button"
              disabled={st.disabled}
              className={`${btn.secondary} ${size === "sm" ? "px-2.5 py-1 text-xs" : ""}`}
              onClick={() => setOpen(a.action)}
              title={st.title}
            >
              {a.label}
            </button>
          );
        })}
        {children}
      </div>
      {open ? (
        <ActionDialog
          action={open}
          target={target}
          what={what}
          preview={byIds ? preview.data : undefined}
          onClose={(r) => {
            setOpen(null);
            if (r) onDone?.(r);
          }}
        />
      ) : null}
    </>
  );
}

/** How many will change and how many will be skipped, before the operator confirms. */
function PreviewView({ action, preview }: { action: Action; preview: Preview | undefined }) {
  if (!preview) return <p className="text-sm text-slate-500">Counting the commands this applies to…</p>;
  const p = preview.actions[action];
  return (
    <div className="rounded-lg border border-slate-200 bg-slate-50 px-3 py-2 text-sm" data-testid="action-preview">
      <p>
        <span className="font-semibold text-slate-900">{plural(p.change, "command")} will change</span>
        {", "}
        <span className={`font-semibold ${p.skip ? "text-amber-700" : "text-slate-500"}`}>
          {p.skip.toLocaleString()} will be skipped
        </span>
      </p>
      {p.skipped.length ? (
        <ul className="mt-1 max-h-28 space-y-0.5 overflow-auto text-xs text-slate-600">
          {p.skipped.map((s) => (
            <li key={s.reason}>
              {s.count.toLocaleString()} × {s.reason}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** The confirmation dialog; onClose gets the result when the action ran (it stays open to show it until closed). */
function ActionDialog({
  action,
  target,
  what,
  preview: given,
  onClose,
}: {
  action: Action;
  target: Target;
  what: string;
  preview?: Preview;
  onClose: (result?: Result) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const meta = ACTIONS.find((a) => a.action === action)!;
  const [reason, setReason] = useState("");
  // No default: an operator who resolves by hand must say which outcome they established.
  const [outcome, setOutcome] = useState<ResolveOutcome | null>(null);
  const [missing, setMissing] = useState(false);
  const client = useTRPCClient();
  const trpc = useTRPC();
  const qc = useQueryClient();
  // A filter is counted when the dialog opens (the buttons' preview covers lists of ids).
  const byFilter = "filter" in target;
  const asked = useQuery(
    trpc.commands.preview.queryOptions(byFilter ? { filter: target.filter } : { ids: [] }, {
      enabled: byFilter,
      staleTime: 0,
    }),
  );
  const preview = byFilter ? asked.data : given;
  const title = byFilter && preview ? matchingPhrase(preview.total, preview.max) : what;

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  const m = useMutation({
    mutationFn: async (): Promise<Result> => {
      const r = reason.trim() || undefined;
      switch (action) {
        case "retry":
          return client.commands.retry.mutate({ ...target, reason: r });
        case "compensate":
          return client.commands.compensate.mutate({ ...target, reason: r });
        case "cancel":
          return client.commands.cancel.mutate({ ...target, reason: r });
        case "resolve":
          return client.commands.resolve.mutate({ ...target, outcome: outcome!, reason: reason.trim() });
      }
    },
    onSuccess: async () => {
      await Promise.all([
        qc.invalidateQueries(trpc.commands.pathFilter()),
        qc.invalidateQueries(trpc.audit.pathFilter()),
      ]);
    },
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (action === "resolve" && !outcome) return;
    if (action === "resolve" && !reason.trim()) {
      setMissing(true);
      return;
    }
    m.mutate();
  };

  return (
    <dialog
      ref={ref}
      role="dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-desc`}
      onClose={() => onClose(m.data)}
      className={cx(
        "m-auto w-[min(34rem,calc(100vw-2rem))] rounded-xl border border-slate-200 bg-white p-0 text-slate-900 shadow-xl",
        "backdrop:bg-slate-900/40 backdrop:backdrop-blur-[1px]",
      )}
    >
      <form onSubmit={submit} className="flex flex-col">
        <div className="border-b border-slate-100 px-5 py-4">
          <h2 id={`${id}-title`} className="text-base font-semibold">
            {meta.label} {title}?
          </h2>
          <p id={`${id}-desc`} className="mt-1 text-sm text-slate-500">
            {meta.help} Applies to {ACTION_FROM[action].join(", ")} commands; others are skipped.
          </p>
        </div>

        {m.data ? (
          <ResultView result={m.data} />
        ) : (
          <div className="space-y-4 px-5 py-4">
            {asked.error ? (
              <ErrorBox error={asked.error} title="Could not count the commands this applies to" />
            ) : (
              <PreviewView action={action} preview={preview} />
            )}
            {action === "resolve" ? (
              <fieldset>
                <legend className="mb-1.5 text-xs font-medium text-slate-600">
                  Outcome (required: what did you establish?)
                </legend>
                <div className="flex gap-2">
                  {RESOLVE_OUTCOMES.map((o) => (
                    <label
                      key={o}
                      className={cx(
                        "flex flex-1 cursor-pointer items-center gap-2 rounded-lg border px-3 py-2 text-sm",
                        outcome === o ? "border-slate-900 bg-slate-50" : "border-slate-300",
                      )}
                    >
                      <input
                        type="radio"
                        name="outcome"
                        value={o}
                        checked={outcome === o}
                        onChange={() => setOutcome(o)}
                      />
                      {o === "succeeded" ? "Succeeded (the backend did it)" : "Failed (it did not happen)"}
                    </label>
                  ))}
                </div>
              </fieldset>
            ) : null}
            <div>
              <label htmlFor={`${id}-reason`} className="mb-1 block text-xs font-medium text-slate-600">
                Reason{action === "resolve" ? " (required)" : ""}
              </label>
              <textarea
                id={`${id}-reason`}
                aria-label="Reason"
                rows={3}
                value={reason}
                maxLength={1000}
                onChange={(e) => {
                  setReason(e.target.value);
                  setMissing(false);
                }}
                aria-invalid={missing || undefined}
                placeholder="Why? It goes into the audit log."
                className={input}
                autoFocus
              />
              {missing ? <p className="mt-1 text-xs text-red-700">Say why you resolve it by hand.</p> : null}
            </div>
            {m.error ? <ErrorBox error={m.error} title={`${meta.label} refused`} /> : null}
          </div>
        )}

        <div className="flex items-center justify-end gap-2 border-t border-slate-100 bg-slate-50 px-5 py-3">
          {!m.data && action === "resolve" && !outcome ? (
            <span className="mr-auto text-xs text-slate-500">Choose the outcome first.</span>
          ) : null}
          <button type="button" className={btn.secondary} onClick={() => ref.current?.close()}>
            {m.data ? "Done" : "Close"}
          </button>
          {m.data ? null : (
            <button
              type="submit"
              className={action === "cancel" ? btn.danger : btn.primary}
              disabled={m.isPending || (action === "resolve" && !outcome)}
            >
              {meta.label}
            </button>
          )}
        </div>
      </form>
    </dialog>
  );
}

/** What an action did: the commands updated, and those skipped with the reason (Edit & retry shows it too). */
export function ResultView({ result }: { result: Result }) {
  return (
    <div className="space-y-3 px-5 py-4 text-sm" role="status">
      <p>
        <span className="font-semibold text-emerald-700">{result.updated.length} updated</span>
        {", "}
        <span className={`font-semibold ${result.skipped.length ? "text-amber-700" : "text-slate-500"}`}>
          {result.skipped.length} skipped
        </span>
      </p>
      {result.updated.length ? (
        <div>
          <p className="mb-1 text-xs font-medium text-slate-500">Updated</p>
          <ul className="flex max-h-28 flex-wrap gap-1.5 overflow-auto">
            {result.updated.slice(0, 200).map((id) => (
              <li key={id}>
                <Link
                  href={`/commands/${id}`}
                  className="rounded bg-emerald-50 px-1.5 py-0.5 text-emerald-800 hover:underline"
                >
                  <ShortId id={id} />
                </Link>
              </li>
            ))}
            {result.updated.length > 200 ? (
              <li className="text-xs text-slate-500">and {result.updated.length - 200} more</li>
            ) : null}
          </ul>
        </div>
      ) : null}
      {result.skipped.length ? (
        <div>
          <p className="mb-1 text-xs font-medium text-slate-500">Skipped</p>
          <ul className="max-h-40 divide-y divide-slate-100 overflow-auto rounded-lg border border-slate-200">
            {result.skipped.slice(0, 200).map((s) => (
              <li key={s.id} className="flex gap-3 px-3 py-1.5">
                <Link href={`/commands/${s.id}`} className="shrink-0 text-sky-700 hover:underline">
                  <ShortId id={s.id} />
                </Link>
                <span className="text-slate-600">{s.reason}</span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </div>
  );
}
