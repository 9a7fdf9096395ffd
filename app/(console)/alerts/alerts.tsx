"use client";
// Alert rules (DESIGN §4) and their history: everyone reads; admins create,
// edit, enable/disable, silence, delete and send a test email. The pieces are
// in _components/: the rules table, the rule form and the history.
import { useRef, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { Empty, ErrorBox, Loading, PageHeader, Panel } from "@/app/_components/ui";
import { History } from "./_components/history";
import { Pill } from "./_components/pill";
import { RuleForm } from "./_components/rule-form";
import { RulesTable } from "./_components/rule-list";
import { SecretOnce } from "./_components/secret-once";
import { REFRESH_MS, type Rule } from "./_components/types";

/** A warning triangle (20 × 20). */
const WARNING_ICON =
  "M8.26 2.9a2 2 0 0 1 3.48 0l6.03 10.7A2 2 0 0 1 16.03 16.6H3.97a2 2 0 0 1-1.74-2.99L8.26 2.9Z" +
  "M10 7a1 1 0 0 0-1 1v3a1 1 0 1 0 2 0V8a1 1 0 0 0-1-1Zm0 8a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z";

function EmailBanner() {
  return (
    <section
      aria-label="Email not configured"
      className="mb-6 flex items-start gap-3 rounded-xl border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900 shadow-sm"
    >
      <svg viewBox="0 0 20 20" className="mt-0.5 h-5 w-5 shrink-0 text-amber-500" fill="currentColor" aria-hidden>
        <path d={WARNING_ICON} />
      </svg>
      <div>
        <p className="font-semibold">Email is not configured (SMTP_URL is unset)</p>
        <p className="mt-0.5 text-amber-800">
          Rules are still evaluated and every alert is recorded, but no email leaves. The messages are kept and will be
          sent once SMTP_URL is set; until then, the history below shows what would have been sent.
        </p>
      </div>
    </section>
  );
}

/** `initialRule`: the rule whose history to show first (?rule=, the link in webhook alerts). */
export function Alerts({ isAdmin, initialRule }: { isAdmin: boolean; initialRule?: string }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const rules = useQuery(trpc.alerts.listRules.queryOptions(undefined, { refetchInterval: REFRESH_MS }));
  const [editing, setEditing] = useState<Rule | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  // The webhook secret the server answered for the rule just created (or first saved): shown until dismissed.
  const [secret, setSecret] = useState<string | null>(null);
  const [formKey, setFormKey] = useState(0); // a new key empties the form after a create
  const formRef = useRef<HTMLDivElement>(null);
  const refresh = () => {
    void qc.invalidateQueries(trpc.alerts.listRules.pathFilter());
    void qc.invalidateQueries(trpc.alerts.history.pathFilter());
  };
  const emailConfigured = rules.data?.emailConfigured ?? true;
  const items = rules.data?.items ?? [];
  const firing = items.filter((r) => r.enabled && r.state === "firing").length;

  const main = (
    <div className="min-w-0 space-y-6">
      <Panel
        title={
          <span className="flex items-center gap-2">
            Rules
            {rules.data ? (
              <span className="rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600">
                {items.length}
              </span>
            ) : null}
            {firing ? <Pill tone="firing">{firing} firing</Pill> : null}
          </span>
        }
        actions={
          rules.isFetching && rules.data ? (
            <span className="text-xs text-slate-400">refreshing…</span>
          ) : (
            <span className="text-xs text-slate-400">refreshes every 5 s</span>
          )
        }
        bodyClass=""
      >
        {rules.error && !rules.data ? (
          <div className="p-4">
            <ErrorBox error={rules.error} title="Could not load the alert rules" onRetry={() => rules.refetch()} />
          </div>
        ) : !rules.data ? (
          <Loading label="Loading rules…" />
        ) : items.length === 0 ? (
          <Empty title="No alert rule yet">
            {isAdmin
              ? "Create one with the form: for example, a backlog rule that emails on-call when too many commands wait."
              : "An admin can create rules; they will show here with their state."}
          </Empty>
        ) : (
          <RulesTable
            rules={items}
            isAdmin={isAdmin}
            editingId={editing?.id ?? null}
            onEdit={(r) => {
              setCreated(null);
              setSecret(null);
              setEditing(r);
              formRef.current?.scrollIntoView({ behavior: "smooth", block: "start" });
            }}
            onChanged={refresh}
            onDeleted={(id) => {
              if (editing?.id === id) setEditing(null);
              refresh();
            }}
          />
        )}
        {rules.error && rules.data ? (
          <div className="border-t border-slate-100 p-4">
            <ErrorBox
              error={rules.error}
              title="Could not refresh the rules (showing the last known state)"
              onRetry={() => rules.refetch()}
            />
          </div>
        ) : null}
      </Panel>
      <History rules={items} initialRule={initialRule} />
    </div>
  );

  return (
    <>
      <PageHeader
        title="Alerts"
        subtitle="Alerts by email and webhook from rules on counts, stuck commands, failure rates, backlog, latency and circuit breakers, with their history."
      />
      {rules.data && !emailConfigured && items.some((r) => r.recipients.length) ? <EmailBanner /> : null}
      {isAdmin ? (
        <div className="grid items-start gap-6 xl:grid-cols-[minmax(0,23rem)_minmax(0,1fr)]">
          <div ref={formRef} className="scroll-mt-20 space-y-4">
            {created && !editing ? (
              <p
                role="status"
                className="rounded-lg border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800"
              >
                Rule created. It is evaluated by the workers from now on.
              </p>
            ) : null}
            {secret && !editing ? (
              <SecretOnce secret={secret} title="Webhook secret" onDismiss={() => setSecret(null)} />
            ) : null}
            <RuleForm
              key={editing?.id ?? `new-${formKey}`}
              rule={editing}
              onDone={(id, wasNew, webhookSecret) => {
                refresh();
                setEditing(null);
                setCreated(wasNew ? id : null);
                setSecret(webhookSecret ?? null);
                setFormKey((k) => k + 1);
                // the secret shows above the form, shown only this once: bring it into view
                if (webhookSecret) formRef.current?.scrollIntoView({ behavior: "smooth", block: "start" });
              }}
              onCancel={() => setEditing(null)}
            />
          </div>
          {main}
        </div>
      ) : (
        main
      )}
    </>
  );
}
