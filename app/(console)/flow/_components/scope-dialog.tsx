"use client";
// Pause, Resume and Remove limit on one scope: a confirmation dialog like the
// command actions' (role="dialog", a text box labelled Reason, a confirming
// button named after the action). A pause needs a reason; it goes into the
// audit log with the others'.
import { useEffect, useId, useRef, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC, useTRPCClient } from "@/app/_components/trpc";
import { btn, ErrorBox, input } from "@/app/_components/ui";
import { scopeLabel, type Scope } from "./types";

export type ScopeAction = "pause" | "resume" | "removeLimit";

const META: Record<ScopeAction, { label: string; help: string; required: boolean }> = {
  pause: {
    label: "Pause",
    help: "No attempt of this scope starts until it is resumed; attempts in flight finish. Its commands keep their state and use none of their retries.",
    required: true,
  },
  resume: {
    label: "Resume",
    help: "Workers take up the scope's waiting commands at once.",
    required: false,
  },
  removeLimit: {
    label: "Remove limit",
    help: "Clears the limit set here (concurrency, rate, circuit settings); a limit in the type's code applies again. Pause and circuit are kept.",
    required: false,
  },
};

export function ScopeDialog({
  action,
  scope,
  onClose,
}: {
  action: ScopeAction;
  scope: Scope;
  onClose: (done: boolean) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const meta = META[action];
  const [reason, setReason] = useState("");
  const [missing, setMissing] = useState(false);
  const client = useTRPCClient();
  const trpc = useTRPC();
  const qc = useQueryClient();

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  const m = useMutation({
    mutationFn: async () => {
      const r = reason.trim();
      if (action === "pause") return client.flow.pause.mutate({ scope, reason: r });
      if (action === "resume") return client.flow.resume.mutate({ scope, reason: r || undefined });
      return client.flow.removeLimit.mutate({ scope, reason: r || undefined });
    },
    onSuccess: async () => {
      await Promise.all([qc.invalidateQueries(trpc.flow.pathFilter()), qc.invalidateQueries(trpc.audit.pathFilter())]);
      ref.current?.close();
    },
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (meta.required && !reason.trim()) {
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
      onClose={() => onClose(m.isSuccess)}
      className="m-auto w-[min(34rem,calc(100vw-2rem))] rounded-xl border border-slate-200 bg-white p-0 text-slate-900 shadow-xl backdrop:bg-slate-900/40 backdrop:backdrop-blur-[1px]"
    >
      <form onSubmit={submit} className="flex flex-col">
        <div className="border-b border-slate-100 px-5 py-4">
          <h2 id={`${id}-title`} className="text-base font-semibold">
            {meta.label} {action === "removeLimit" ? "of " : ""}
            {scopeLabel(scope)}?
          </h2>
          <p id={`${id}-desc`} className="mt-1 text-sm text-slate-500">
            {meta.help}
          </p>
        </div>
        <div className="space-y-4 px-5 py-4">
          <div>
            <label htmlFor={`${id}-reason`} className="mb-1 block text-xs font-medium text-slate-600">
              Reason{meta.required ? " (required)" : ""}
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
            {missing ? <p className="mt-1 text-xs text-red-700">Say why you pause it.</p> : null}
          </div>
          {m.error ? <ErrorBox error={m.error} title={`${meta.label} refused`} /> : null}
        </div>
        <div className="flex items-center justify-end gap-2 border-t border-slate-100 bg-slate-50 px-5 py-3">
          <button type="button" className={btn.secondary} onClick={() => ref.current?.close()}>
            Close
          </button>
          <button
            type="submit"
            className={action === "pause" || action === "removeLimit" ? btn.danger : btn.primary}
            disabled={m.isPending}
          >
            {meta.label}
          </button>
        </div>
      </form>
    </dialog>
  );
}
