"use client";
// Every scope worth showing: its limit (set here, or in the type's code),
// what is in flight, attempts per second, what waits, its circuit breaker,
// and whether it is paused. Operators get Pause / Resume; admins also edit
// and remove limits. A viewer sees no button it could not use.
import { useState } from "react";
import { btn, fmtTime, RelTime } from "@/app/_components/ui";
import { Pill } from "../../alerts/_components/pill";
import { ScopeDialog, type ScopeAction } from "./scope-dialog";
import { limitParts, scopeId, scopeKind, scopeName, type Role, type Scope, type ScopeItem } from "./types";

function ScopeCell({ s }: { s: ScopeItem }) {
  return (
    <div className="min-w-0">
      <div className="flex flex-wrap items-center gap-2">
        <span className="rounded bg-slate-100 px-1.5 py-0.5 text-[11px] font-medium uppercase tracking-wide text-slate-500">
          {scopeKind(s.scope)}
        </span>
        <span className="font-mono text-sm font-medium text-slate-900">{scopeName(s.scope)}</span>
        {s.paused ? <Pill tone="warn">paused</Pill> : null}
      </div>
      {s.paused ? (
        <p className="mt-1 max-w-md text-xs text-amber-800" data-testid="paused-reason">
          “{s.pausedReason}”{s.pausedBy ? <span className="text-slate-500"> — {s.pausedBy}</span> : null}
          {s.pausedAt ? (
            <span className="text-slate-500">
              , <RelTime iso={s.pausedAt} />
            </span>
          ) : null}
        </p>
      ) : null}
    </div>
  );
}

function LimitCell({ s }: { s: ScopeItem }) {
  if (!s.limit && !s.codeLimit) return <span className="text-slate-400">none</span>;
  return (
    <div className="space-y-0.5 text-sm">
      {s.limit ? (
        limitParts(s.limit).map((p) => (
          <span key={p} className="block whitespace-nowrap text-slate-800">
            {p}
          </span>
        ))
      ) : (
        <span className="block text-xs text-slate-500">in the type&apos;s code:</span>
      )}
      {!s.limit && s.codeLimit
        ? limitParts(s.codeLimit).map((p) => (
            <span key={p} className="block whitespace-nowrap text-slate-600">
              {p}
            </span>
          ))
        : null}
      {s.limit && s.codeLimit ? (
        <span className="block text-xs text-slate-400" title={limitParts(s.codeLimit).join(" · ")}>
          overrides the type&apos;s own
        </span>
      ) : null}
    </div>
  );
}

function CircuitCell({ c }: { c: ScopeItem["circuit"] }) {
  if (c.state === "closed")
    return (
      <div className="flex flex-col items-start gap-1" data-testid="circuit">
        <Pill tone="ok">closed</Pill>
        {c.consecutiveExceptions > 0 ? (
          <span className="text-xs text-amber-800">
            {c.consecutiveExceptions} exception{c.consecutiveExceptions === 1 ? "" : "s"} in a row
          </span>
        ) : null}
      </div>
    );
  return (
    <div className="flex flex-col items-start gap-1" data-testid="circuit">
      <Pill tone={c.state === "open" ? "firing" : "warn"}>{c.state === "open" ? "open" : "half open"}</Pill>
      <span className="text-xs whitespace-nowrap text-slate-600">
        since <RelTime iso={c.since} />
      </span>
      {c.state === "open" && c.nextProbeAt ? (
        <span className="text-xs whitespace-nowrap text-slate-600" title={fmtTime(c.nextProbeAt)}>
          next probe <RelTime iso={c.nextProbeAt} />
        </span>
      ) : c.state === "half_open" ? (
        <span className="text-xs text-slate-600">a probe is out</span>
      ) : null}
    </div>
  );
}

const num = "px-3 py-3 text-right tabular-nums whitespace-nowrap";

export function ScopesTable({
  scopes,
  role,
  onEditLimit,
}: {
  scopes: ScopeItem[];
  role: Role;
  onEditLimit: (s: ScopeItem) => void;
}) {
  const [open, setOpen] = useState<{ action: ScopeAction; scope: Scope } | null>(null);
  const canPause = role === "operator" || role === "admin";
  const isAdmin = role === "admin";
  const th = "px-3 py-2.5";
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm" aria-label="Scopes">
        <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium whitespace-nowrap uppercase tracking-wide text-slate-500">
          <tr>
            <th className="px-4 py-2.5">Scope</th>
            <th className={th}>Limit</th>
            <th className={`${th} text-right`}>In flight</th>
            <th className={`${th} text-right`}>Attempts/s</th>
            <th className={`${th} text-right`}>Waiting</th>
            <th className={th}>Circuit</th>
            {canPause ? <th className={`${th} text-right`}>Actions</th> : null}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {scopes.map((s) => (
            <tr key={scopeId(s.scope)} data-scope={scopeId(s.scope)} className={s.paused ? "bg-amber-50/40" : ""}>
              <td className="px-4 py-3 align-top">
                <ScopeCell s={s} />
              </td>
              <td className="px-3 py-3 align-top">
                <LimitCell s={s} />
              </td>
              <td className={`${num} align-top`}>{s.inFlight.toLocaleString()}</td>
              <td
                className={`${num} align-top`}
                title={`last hour: ${s.lastHour.attempts} attempts, ${s.lastHour.exceptions} exceptions, ${s.lastHour.held} held back`}
              >
                {s.attemptsPerSecond.toLocaleString(undefined, { maximumFractionDigits: 2 })}
              </td>
              <td className={`${num} align-top ${s.waiting > 0 ? "font-medium text-slate-900" : "text-slate-500"}`}>
                {s.waiting.toLocaleString()}
              </td>
              <td className="px-3 py-3 align-top">
                <CircuitCell c={s.circuit} />
              </td>
              {canPause ? (
                <td className="px-3 py-3 align-top">
                  <div className="flex flex-wrap justify-end gap-2" role="group" aria-label="Actions">
                    {s.paused ? (
                      <button
                        type="button"
                        className={`${btn.secondary} px-2.5 py-1 text-xs`}
                        onClick={() => setOpen({ action: "resume", scope: s.scope })}
                      >
                        Resume
                      </button>
                    ) : (
                      <button
                        type="button"
                        className={`${btn.secondary} px-2.5 py-1 text-xs`}
                        onClick={() => setOpen({ action: "pause", scope: s.scope })}
                      >
                        Pause
                      </button>
                    )}
                    {isAdmin ? (
                      <button
                        type="button"
                        className={`${btn.secondary} px-2.5 py-1 text-xs`}
                        onClick={() => onEditLimit(s)}
                      >
                        {s.limit ? "Edit limit" : "Set limit"}
                      </button>
                    ) : null}
                    {isAdmin && s.limit ? (
                      <button
                        type="button"
                        className={`${btn.secondary} px-2.5 py-1 text-xs`}
                        onClick={() => setOpen({ action: "removeLimit", scope: s.scope })}
                      >
                        Remove limit
                      </button>
                    ) : null}
                  </div>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      {open ? <ScopeDialog action={open.action} scope={open.scope} onClose={() => setOpen(null)} /> : null}
    </div>
  );
}
