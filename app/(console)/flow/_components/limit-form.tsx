"use client";
// Admins: set a scope's limit (what is left empty is not limited). The server
// checks every field and names the one in error; nothing changes then.
import { useId, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC, useTRPCClient } from "@/app/_components/trpc";
import { btn, ErrorBox, input, label, Panel } from "@/app/_components/ui";
import { scopeKind, scopeName, type LimitInput, type ScopeItem } from "./types";

type Kind = "type" | "host";
const str = (n: number | undefined) => (n === undefined ? "" : String(n));
const numOrUndefined = (s: string) => (s.trim() === "" ? undefined : Number(s));

export function LimitForm({ editing, onDone }: { editing: ScopeItem | null; onDone: () => void }) {
  const id = useId();
  const trpc = useTRPC();
  const client = useTRPCClient();
  const qc = useQueryClient();
  const types = useQuery(trpc.commands.types.queryOptions());
  const l = editing?.limit ?? undefined;
  const [kind, setKind] = useState<Kind>(editing ? scopeKind(editing.scope) : "host");
  const [name, setName] = useState(editing ? scopeName(editing.scope) : "");
  const [f, setF] = useState({
    concurrency: str(l?.concurrency),
    ratePerSecond: str(l?.ratePerSecond),
    burst: str(l?.burst),
    threshold: str(l?.circuit?.threshold),
    cooldownSeconds: str(l?.circuit?.cooldownSeconds),
    reason: "",
  });
  const m = useMutation({
    mutationFn: () => {
      const circuit = { threshold: numOrUndefined(f.threshold), cooldownSeconds: numOrUndefined(f.cooldownSeconds) };
      const body: LimitInput = {
        scope: kind === "host" ? { host: name.trim() } : { type: name },
        concurrency: numOrUndefined(f.concurrency),
        ratePerSecond: numOrUndefined(f.ratePerSecond),
        burst: numOrUndefined(f.burst),
        circuit: circuit.threshold !== undefined || circuit.cooldownSeconds !== undefined ? circuit : undefined,
        reason: f.reason.trim() || undefined,
      };
      return client.flow.setLimit.mutate(body);
    },
    onSuccess: async () => {
      await Promise.all([qc.invalidateQueries(trpc.flow.pathFilter()), qc.invalidateQueries(trpc.audit.pathFilter())]);
      onDone();
    },
  });
  const field = (key: keyof typeof f, text: string, hint: string, step = "1") => (
    <div>
      <label htmlFor={`${id}-${key}`} className={label}>
        {text}
      </label>
      <input
        id={`${id}-${key}`}
        type="number"
        inputMode="decimal"
        min={step === "1" ? 1 : 0}
        step={step}
        value={f[key]}
        onChange={(e) => setF({ ...f, [key]: e.target.value })}
        placeholder={hint}
        className={input}
      />
    </div>
  );

  return (
    <Panel title={editing ? `Limit of ${kind} ${name}` : "Set a limit"}>
      <form
        className="space-y-3"
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
        aria-label="Set limit"
      >
        <div className="grid grid-cols-[7rem_minmax(0,1fr)] gap-2">
          <div>
            <label htmlFor={`${id}-kind`} className={label}>
              Scope
            </label>
            <select
              id={`${id}-kind`}
              value={kind}
              disabled={!!editing}
              onChange={(e) => {
                setKind(e.target.value as Kind);
                setName("");
              }}
              className={input}
            >
              <option value="host">host</option>
              <option value="type">type</option>
            </select>
          </div>
          <div>
            <label htmlFor={`${id}-name`} className={label}>
              {kind === "host" ? "Host name" : "Command type"}
            </label>
            {kind === "type" ? (
              <select
                id={`${id}-name`}
                value={name}
                disabled={!!editing}
                onChange={(e) => setName(e.target.value)}
                className={input}
              >
                <option value="">choose…</option>
                {(types.data ?? []).map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={`${id}-name`}
                value={name}
                disabled={!!editing}
                onChange={(e) => setName(e.target.value)}
                placeholder="api.example.com"
                className={input}
              />
            )}
          </div>
        </div>
        <div className="grid grid-cols-3 gap-2">
          {field("concurrency", "In flight at most", "—")}
          {field("ratePerSecond", "Per second", "—", "any")}
          {field("burst", "Burst", "auto")}
        </div>
        <div className="grid grid-cols-2 gap-2">
          {field("threshold", "Circuit opens after", "5 exceptions")}
          {field("cooldownSeconds", "Cooldown (s)", "10")}
        </div>
        <div>
          <label htmlFor={`${id}-reason`} className={label}>
            Reason (for the audit log)
          </label>
          <input
            id={`${id}-reason`}
            value={f.reason}
            maxLength={1000}
            onChange={(e) => setF({ ...f, reason: e.target.value })}
            className={input}
          />
        </div>
        {m.error ? <ErrorBox error={m.error} title="Limit refused" /> : null}
        <div className="flex justify-end gap-2">
          {editing ? (
            <button type="button" className={btn.secondary} onClick={onDone}>
              Cancel
            </button>
          ) : null}
          <button type="submit" className={btn.primary} disabled={m.isPending || name.trim() === ""}>
            Set limit
          </button>
        </div>
        <p className="text-xs text-slate-500">
          Shared by every worker. An attempt is any request to the counterpart (execute, reconcile, poll, compensate); a
          held-back command keeps its state and uses none of its retries.
        </p>
      </form>
    </Panel>
  );
}
