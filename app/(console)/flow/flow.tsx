"use client";
// Flow control (DESIGN §7): every scope (a command type, or an http target
// host) with its limit, traffic, waiting commands and circuit breaker, and
// the ordering keys an exception blocks. Everyone reads; operators pause and
// resume; admins set and remove limits. The pieces are in _components/.
import { useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { Empty, ErrorBox, Loading, PageHeader, Panel } from "@/app/_components/ui";
import { Pill } from "../alerts/_components/pill";
import { BlockedKeys } from "./_components/blocked-keys";
import { LimitForm } from "./_components/limit-form";
import { ScopesTable } from "./_components/scopes-table";
import { REFRESH_MS, scopeId, type Role, type ScopeItem } from "./_components/types";

const count = (n: number) => (
  <span className="rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600">{n}</span>
);

export function Flow({ role }: { role: Role }) {
  const trpc = useTRPC();
  const q = useQuery(trpc.flow.list.queryOptions(undefined, { refetchInterval: REFRESH_MS }));
  const [editing, setEditing] = useState<ScopeItem | null>(null);
  const [formKey, setFormKey] = useState(0);
  const formRef = useRef<HTMLDivElement>(null);
  const isAdmin = role === "admin";
  const scopes = q.data?.scopes ?? [];
  const paused = scopes.filter((s) => s.paused).length;
  const open = scopes.filter((s) => s.circuit.state !== "closed").length;
  const blocked = q.data?.blockedKeys ?? [];

  const tables = (
    <div className="min-w-0 space-y-6">
      <Panel
        title={
          <span className="flex items-center gap-2">
            Scopes
            {q.data ? count(scopes.length) : null}
            {paused ? <Pill tone="warn">{paused} paused</Pill> : null}
            {open ? (
              <Pill tone="firing">
                {open} circuit{open === 1 ? "" : "s"} not closed
              </Pill>
            ) : null}
          </span>
        }
        actions={<span className="text-xs text-slate-400">refreshes every 5 s</span>}
        bodyClass=""
      >
        {q.error && !q.data ? (
          <div className="p-4">
            <ErrorBox error={q.error} title="Could not load the flow scopes" onRetry={() => q.refetch()} />
          </div>
        ) : !q.data ? (
          <Loading label="Loading scopes…" />
        ) : scopes.length === 0 ? (
          <Empty title="No scope to show yet">
            A command type or an http host shows here once it has traffic, a limit, a pause or a circuit breaker that
            counts exceptions.
          </Empty>
        ) : (
          <ScopesTable
            scopes={scopes}
            role={role}
            onEditLimit={(s) => {
              setEditing(s);
              setFormKey((k) => k + 1);
              formRef.current?.scrollIntoView({ behavior: "smooth", block: "start" });
            }}
          />
        )}
        {q.error && q.data ? (
          <div className="border-t border-slate-100 p-4">
            <ErrorBox error={q.error} title="Could not refresh (showing the last known state)" />
          </div>
        ) : null}
      </Panel>
      <Panel
        title={
          <span className="flex items-center gap-2">
            Blocked ordering keys
            {q.data ? count(blocked.length) : null}
          </span>
        }
        bodyClass=""
      >
        {!q.data ? <Loading /> : <BlockedKeys keys={blocked} more={q.data.moreBlockedKeys} />}
      </Panel>
    </div>
  );

  return (
    <>
      <PageHeader
        title="Flow"
        subtitle="Limits, pauses and circuit breakers per command type and http host, shared by every worker; and the ordering keys an exception holds up."
      />
      {isAdmin ? (
        <div className="grid items-start gap-6 xl:grid-cols-[minmax(0,1fr)_minmax(0,22rem)]">
          {tables}
          <div ref={formRef} className="scroll-mt-20">
            <LimitForm
              key={editing ? `${scopeId(editing.scope)}-${formKey}` : `new-${formKey}`}
              editing={editing}
              onDone={() => {
                setEditing(null);
                setFormKey((k) => k + 1);
              }}
            />
          </div>
        </div>
      ) : (
        tables
      )}
    </>
  );
}
