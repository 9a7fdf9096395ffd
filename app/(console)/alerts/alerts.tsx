"use client";
// Alert rules (DESIGN §4) and their history: everyone reads; admins create,
// edit, enable/disable, silence, delete and send a test email. Both lists
// refetch every few seconds so firing states stay fresh.
import { useRef, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import { TRPCClientError } from "@trpc/client";
import type { AppRouter } from "@/server/api/root";
import { useTRPC } from "@/app/_components/trpc";
import { btn, Empty, ErrorBox, fmtTime, input, label, Loading, PageHeader, Panel, RelTime, STATE_LABEL, STATES, type State } from "@/app/_components/ui";

type Rule = inferRouterOutputs<AppRouter>["alerts"]["listRules"]["items"][number];
type Kind = "count" | "stuck" | "rate" | "backlog";
type DeliveryStatus = inferRouterOutputs<AppRouter>["alerts"]["history"]["items"][number]["deliveries"][number]["status"];
type Delivery = { id: string; recipient: string; subject: string; attempts: number; sentAt: string | null; nextAt: string | null; lastError: string | null; text: string | null; status: DeliveryStatus };
type HistoryItem = { id: string; rule_id: string; rule_name: string; kind: "firing" | "repeat" | "resolved" | "test"; at: string; value: number | null; threshold: number | null; details: unknown; deliveries: Delivery[] };

const REFRESH_MS = 5_000;

const KINDS: { value: Kind; label: string; help: string }[] = [
  { value: "count", label: "Count", help: "Commands that entered some states within a window" },
  { value: "stuck", label: "Stuck", help: "Commands that have stayed in some states too long" },
  { value: "rate", label: "Failure rate", help: "Share of finished commands that failed or hit an exception" },
  { value: "backlog", label: "Backlog", help: "Pending or retrying commands whose time has come" },
];
const KIND_LABEL: Record<Kind, string> = { count: "Count", stuck: "Stuck", rate: "Failure rate", backlog: "Backlog" };

// ---------- formatting ----------

/** 600 → "10 min", 5400 → "1 h 30 min". */
function duration(sec: number | null | undefined): string {
  if (sec === null || sec === undefined) return "—";
  const parts: string[] = [];
  let s = Math.round(sec);
  for (const [n, u] of [
    [86400, "d"],
    [3600, "h"],
    [60, "min"],
  ] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)} ${u}`);
      s %= n;
    }
  }
  if (s || !parts.length) parts.push(`${s} s`);
  return parts.slice(0, 2).join(" ");
}

const num = (n: number) => (Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: 2 }));
const pct = (share: number) => `${Number((share * 100).toFixed(2))}%`;
const fmtValue = (kind: Kind | undefined, v: number | null | undefined) => (v === null || v === undefined ? "—" : kind === "rate" ? pct(v) : num(v));

function orList(xs: string[]): string {
  if (xs.length <= 1) return xs.join("");
  return `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}
const stateNames = (states: string[]) => orList(states.map((s) => (STATE_LABEL[s as State] ?? s).toLowerCase()));

/** A human sentence for a rule's condition, e.g. "≥ 5 commands entered exception in 10 min". */
function describeRule(r: { kind: Kind; states: string[]; type: string | null; windowSeconds: number | null; ageSeconds: number | null; threshold: number }): string {
  const of = r.type ? ` of type ${r.type}` : "";
  const cmds = (n: number) => (n === 1 ? "command" : "commands");
  switch (r.kind) {
    case "count":
      return `≥ ${num(r.threshold)} ${cmds(r.threshold)}${of} entered ${stateNames(r.states)} in ${duration(r.windowSeconds)}`;
    case "stuck":
      return `≥ ${num(r.threshold)} ${cmds(r.threshold)}${of} in ${stateNames(r.states)} for longer than ${duration(r.ageSeconds)}`;
    case "rate":
      return `≥ ${pct(r.threshold)} of commands${of} finished in ${duration(r.windowSeconds)} failed or hit an exception`;
    case "backlog":
      return `≥ ${num(r.threshold)} ${cmds(r.threshold)}${of} pending or retrying and due now`;
  }
}

const future = (iso: string | null) => !!iso && new Date(iso).getTime() > Date.now();

function Pill({ tone, children, title }: { tone: "ok" | "firing" | "muted" | "warn" | "info"; children: React.ReactNode; title?: string }) {
  const cls = {
    ok: "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
    firing: "bg-red-50 text-red-700 ring-red-600/25",
    muted: "bg-slate-100 text-slate-600 ring-slate-500/20",
    warn: "bg-amber-50 text-amber-800 ring-amber-600/25",
    info: "bg-sky-50 text-sky-700 ring-sky-600/20",
  }[tone];
  const dot = { ok: "bg-emerald-500", firing: "bg-red-600", muted: "bg-slate-400", warn: "bg-amber-500", info: "bg-sky-500" }[tone];
  return (
    <span title={title} className={`inline-flex items-center gap-1.5 rounded-full px-2 py-0.5 text-xs font-medium whitespace-nowrap ring-1 ring-inset ${cls}`}>
      <span className={`h-1.5 w-1.5 rounded-full ${dot} ${tone === "firing" ? "animate-pulse" : ""}`} aria-hidden />
      <span>{children}</span>
    </span>
  );
}

function RuleState({ r }: { r: Rule }) {
  if (!r.enabled) return <Pill tone="muted">disabled</Pill>;
  return (
    <div className="flex flex-col items-start gap-1" data-testid="rule-state">
      {r.state === "firing" ? (
        <Pill tone="firing">
          firing{r.firingSince ? <> since <RelTime iso={r.firingSince} /></> : null}
        </Pill>
      ) : r.lastEvaluatedAt ? (
        <Pill tone="ok">ok</Pill>
      ) : (
        <Pill tone="muted">not evaluated yet</Pill>
      )}
      {future(r.silencedUntil) ? (
        <Pill tone="warn" title={fmtTime(r.silencedUntil!)}>
          silenced until {new Date(r.silencedUntil!).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })}
        </Pill>
      ) : null}
    </div>
  );
}

function EmailBanner() {
  return (
    <section aria-label="Email not configured" className="mb-6 flex items-start gap-3 rounded-xl border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900 shadow-sm">
      <svg viewBox="0 0 20 20" className="mt-0.5 h-5 w-5 shrink-0 text-amber-500" fill="currentColor" aria-hidden>
        <path d="M8.26 2.9a2 2 0 0 1 3.48 0l6.03 10.7A2 2 0 0 1 16.03 16.6H3.97a2 2 0 0 1-1.74-2.99L8.26 2.9ZM10 7a1 1 0 0 0-1 1v3a1 1 0 1 0 2 0V8a1 1 0 0 0-1-1Zm0 8a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z" />
      </svg>
      <div>
        <p className="font-semibold">Email is not configured (SMTP_URL is unset)</p>
        <p className="mt-0.5 text-amber-800">
          Rules are still evaluated and every alert is recorded, but no email leaves. The messages are kept and will be sent once SMTP_URL is set; until then, the history below shows what would have been sent.
        </p>
      </div>
    </section>
  );
}

// ---------- page ----------

export function Alerts({ isAdmin }: { isAdmin: boolean }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const rules = useQuery(trpc.alerts.listRules.queryOptions(undefined, { refetchInterval: REFRESH_MS }));
  const [editing, setEditing] = useState<Rule | null>(null);
  const [created, setCreated] = useState<string | null>(null);
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
            {rules.data ? <span className="rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600">{items.length}</span> : null}
            {firing ? <Pill tone="firing">{firing} firing</Pill> : null}
          </span>
        }
        actions={rules.isFetching && rules.data ? <span className="text-xs text-slate-400">refreshing…</span> : <span className="text-xs text-slate-400">refreshes every 5 s</span>}
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
            {isAdmin ? "Create one with the form: for example, a backlog rule that emails on-call when too many commands wait." : "An admin can create rules; they will show here with their state."}
          </Empty>
        ) : (
          <RulesTable
            rules={items}
            isAdmin={isAdmin}
            emailConfigured={emailConfigured}
            editingId={editing?.id ?? null}
            onEdit={(r) => {
              setCreated(null);
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
            <ErrorBox error={rules.error} title="Could not refresh the rules (showing the last known state)" onRetry={() => rules.refetch()} />
          </div>
        ) : null}
      </Panel>
      <History rules={items} />
    </div>
  );

  return (
    <>
      <PageHeader title="Alerts" subtitle="Email alerts from rules on counts, stuck commands, failure rates and backlog, with their history." />
      {rules.data && !emailConfigured ? <EmailBanner /> : null}
      {isAdmin ? (
        <div className="grid items-start gap-6 xl:grid-cols-[minmax(0,23rem)_minmax(0,1fr)]">
          <div ref={formRef} className="scroll-mt-20 space-y-4">
            <RuleForm
              key={editing?.id ?? `new-${formKey}`}
              rule={editing}
              onDone={(id, wasNew) => {
                refresh();
                setEditing(null);
                setCreated(wasNew ? id : null);
                setFormKey((k) => k + 1);
              }}
              onCancel={() => setEditing(null)}
            />
            {created && !editing ? (
              <p role="status" className="rounded-lg border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">
                Rule created. It is evaluated by the workers from now on.
              </p>
            ) : null}
          </div>
          {main}
        </div>
      ) : (
        main
      )}
    </>
  );
}

// ---------- rules table ----------

const emails = (n: number) => (n === 1 ? "1 email" : `${n} emails`);

/** What became of the rule's emails, from their deliveries: sent (when), queued (retrying: next try, last error), or not sent and why. */
function EmailState({ email }: { email: Rule["email"] }) {
  const l = email.latest;
  if (!l) {
    return (
      <span className="block" data-testid="rule-email">
        no email yet
      </span>
    );
  }
  const unsentHere = l.notSent + l.queued;
  const earlier = email.unsent.notSent + email.unsent.queued - unsentHere;
  const partly = l.sent > 0 && unsentHere > 0 ? `sent to ${l.sent} of ${l.sent + unsentHere}; ` : "";
  return (
    <div className="mt-0.5 max-w-72 whitespace-normal" data-testid="rule-email">
      <span className="block">
        last alert ({l.kind}) <RelTime iso={l.at} />
      </span>
      {l.notSent ? (
        <span className="block font-medium text-amber-800">
          {partly}email not sent: SMTP_URL is unset; kept until it is set
        </span>
      ) : l.queued ? (
        <span className="block font-medium text-amber-800">
          {partly}email queued:{" "}
          {l.attempts > 0 ? (
            <>
              retrying, attempt {l.attempts} failed{l.lastError ? <span className="font-normal text-red-700"> ({l.lastError})</span> : null}; next try <RelTime iso={l.nextAt} />
            </>
          ) : (
            "not tried yet"
          )}
        </span>
      ) : (
        <span className="block font-medium text-emerald-700">
          email sent <RelTime iso={l.sentAt} />
        </span>
      )}
      {unsentHere && email.lastSentAt ? (
        <span className="block">
          last email sent <RelTime iso={email.lastSentAt} />
        </span>
      ) : null}
      {unsentHere && !email.lastSentAt ? <span className="block">no email of this rule was ever sent</span> : null}
      {earlier > 0 ? <span className="block text-amber-800">{emails(earlier)} of earlier alerts not sent yet</span> : null}
    </div>
  );
}

function RulesTable({
  rules,
  isAdmin,
  emailConfigured,
  editingId,
  onEdit,
  onChanged,
  onDeleted,
}: {
  rules: Rule[];
  isAdmin: boolean;
  emailConfigured: boolean;
  editingId: string | null;
  onEdit: (r: Rule) => void;
  onChanged: () => void;
  onDeleted: (id: string) => void;
}) {
  const th = "px-3 py-2.5";
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
          <tr>
            <th className="px-4 py-2.5">Rule</th>
            <th className={th}>State</th>
            <th className={`${th} text-right`}>Last value</th>
            <th className={th}>Recipients</th>
            <th className="px-4 py-2.5 whitespace-nowrap">Evaluated / email</th>
          </tr>
        </thead>
        {rules.map((r) => (
          <RuleRows key={r.id} r={r} isAdmin={isAdmin} emailConfigured={emailConfigured} editing={editingId === r.id} onEdit={onEdit} onChanged={onChanged} onDeleted={onDeleted} />
        ))}
      </table>
    </div>
  );
}

/** The full replacement input of a rule, from what listRules returned, with some fields changed. */
function asInput(r: Rule, patch: { enabled?: boolean; silencedUntil?: string | null }) {
  const kind = r.kind as Kind;
  return {
    id: r.id,
    name: r.name,
    kind,
    states: kind === "count" || kind === "stuck" ? (r.states as State[]) : undefined,
    type: r.type ?? undefined,
    windowSeconds: r.windowSeconds ?? undefined,
    ageSeconds: r.ageSeconds ?? undefined,
    threshold: r.threshold,
    recipients: r.recipients,
    cooldownSeconds: r.cooldownSeconds,
    notifyOnResolve: r.notifyOnResolve,
    enabled: patch.enabled ?? r.enabled,
    silencedUntil: patch.silencedUntil !== undefined ? patch.silencedUntil : r.silencedUntil,
  };
}

function RuleRows({ r, isAdmin, emailConfigured, editing, onEdit, onChanged, onDeleted }: { r: Rule; isAdmin: boolean; emailConfigured: boolean; editing: boolean; onEdit: (r: Rule) => void; onChanged: () => void; onDeleted: (id: string) => void }) {
  const trpc = useTRPC();
  const kind = r.kind as Kind;
  const update = useMutation(trpc.alerts.updateRule.mutationOptions({ onSuccess: onChanged }));
  const del = useMutation(trpc.alerts.deleteRule.mutationOptions({ onSuccess: () => onDeleted(r.id) }));
  const test = useMutation(trpc.alerts.testRule.mutationOptions({ onSuccess: onChanged }));
  const silenced = future(r.silencedUntil);
  const busy = update.isPending || del.isPending;
  const small = `${btn.secondary} px-2.5 py-1 text-xs`;
  const td = "px-3 py-3 align-top";
  const err = update.error ?? del.error ?? test.error;
  return (
    <tbody aria-label={r.name} className={`border-b border-slate-200 last:border-b-0 ${editing ? "bg-sky-50/50" : ""} ${!r.enabled ? "text-slate-500" : ""}`}>
      <tr>
        <td className="px-4 py-3 align-top">
          <div className="flex items-center gap-2">
            <span className="font-medium text-slate-900">{r.name}</span>
            <span className="rounded bg-slate-100 px-1.5 py-0.5 text-[11px] font-medium uppercase tracking-wide text-slate-600">{KIND_LABEL[kind] ?? r.kind}</span>
          </div>
          <p className="mt-1 text-slate-600">{describeRule({ ...r, kind })}</p>
          <p className="mt-0.5 text-xs text-slate-400">
            repeats every {duration(r.cooldownSeconds)} while firing{r.notifyOnResolve ? " · emails when resolved" : ""}
          </p>
        </td>
        <td className={td}>
          <RuleState r={r} />
        </td>
        <td className={`${td} text-right whitespace-nowrap tabular-nums`}>
          <span className={r.enabled && r.state === "firing" ? "font-semibold text-red-700" : "text-slate-900"}>{fmtValue(kind, r.lastValue)}</span>
          <span className="block text-xs text-slate-500">threshold ≥ {fmtValue(kind, r.threshold)}</span>
        </td>
        <td className={`${td} max-w-56`}>
          <ul className="space-y-0.5">
            {r.recipients.map((x) => (
              <li key={x} className="truncate text-slate-700" title={x}>
                {x}
              </li>
            ))}
          </ul>
        </td>
        <td className="px-4 py-3 align-top text-xs whitespace-nowrap text-slate-500">
          <span className="block">{r.lastEvaluatedAt ? <>evaluated <RelTime iso={r.lastEvaluatedAt} /></> : "not evaluated yet"}</span>
          <EmailState email={r.email} />
        </td>
      </tr>
      {isAdmin ? (
        <tr>
          <td colSpan={5} className="px-4 pb-3">
            <div className="flex flex-wrap items-center gap-2" role="group" aria-label={`Actions for ${r.name}`}>
              <button type="button" className={small} onClick={() => onEdit(r)} disabled={busy}>
                Edit
              </button>
              <button type="button" className={small} disabled={busy} onClick={() => update.mutate(asInput(r, { enabled: !r.enabled }))}>
                {r.enabled ? "Disable" : "Enable"}
              </button>
              {silenced ? (
                <button type="button" className={small} disabled={busy} onClick={() => update.mutate(asInput(r, { silencedUntil: null }))}>
                  Unsilence
                </button>
              ) : (
                <>
                  <button type="button" className={small} disabled={busy} onClick={() => update.mutate(asInput(r, { silencedUntil: new Date(Date.now() + 3600_000).toISOString() }))}>
                    Silence 1 h
                  </button>
                  <button type="button" className={small} disabled={busy} onClick={() => update.mutate(asInput(r, { silencedUntil: new Date(Date.now() + 86400_000).toISOString() }))}>
                    Silence 24 h
                  </button>
                </>
              )}
              <button type="button" className={`${small} text-sky-800`} disabled={test.isPending} onClick={() => test.mutate({ id: r.id })}>
                {test.isPending ? "Queuing…" : "Send test email"}
              </button>
              <button
                type="button"
                className="ml-auto rounded-md px-2 py-1 text-xs font-medium text-red-700 hover:bg-red-50 disabled:opacity-50"
                disabled={busy}
                onClick={() => {
                  if (window.confirm(`Delete the rule "${r.name}"? Its history goes with it.`)) del.mutate({ id: r.id });
                }}
              >
                Delete
              </button>
            </div>
            {test.data ? (
              <div role="status" className="mt-2 flex items-start justify-between gap-3 rounded-lg border border-sky-200 bg-sky-50 px-3 py-2 text-xs text-sky-900">
                <div>
                  <p className="font-medium">Test email queued for {test.data.recipients.join(", ")}</p>
                  {test.data.emailConfigured ? (
                    <p className="mt-0.5 text-sky-800">A worker sends it within seconds; its delivery shows in the history below.</p>
                  ) : (
                    <p className="mt-0.5 text-amber-800">Email is not configured (SMTP_URL is unset): nothing is sent. The console shows what would have been sent in the history below.</p>
                  )}
                </div>
                <button type="button" className="shrink-0 text-sky-700 hover:underline" onClick={() => test.reset()}>
                  Dismiss
                </button>
              </div>
            ) : null}
            {err ? (
              <div className="mt-2">
                <ErrorBox error={err} title={test.error ? "Could not queue the test email" : del.error ? "Could not delete the rule" : "Could not update the rule"} />
              </div>
            ) : null}
          </td>
        </tr>
      ) : null}
    </tbody>
  );
}

// ---------- form ----------

const UNITS = [
  { value: 1, label: "seconds" },
  { value: 60, label: "minutes" },
  { value: 3600, label: "hours" },
  { value: 86400, label: "days" },
] as const;

/** Seconds → the largest unit that divides them. */
function split(sec: number | null | undefined, fallbackUnit = 60): { amount: string; unit: number } {
  if (sec === null || sec === undefined) return { amount: "", unit: fallbackUnit };
  const u = [...UNITS].reverse().find((x) => sec % x.value === 0) ?? UNITS[0];
  return { amount: String(sec / u.value), unit: u.value };
}

type Dur = { amount: string; unit: number };
const toSeconds = (d: Dur): number | undefined => (d.amount.trim() === "" ? undefined : Math.round(Number(d.amount) * d.unit));

function FieldError({ id, messages }: { id: string; messages?: string[] }) {
  if (!messages?.length) return null;
  return (
    <p id={id} className="mt-1 text-xs font-medium text-red-700">
      {messages.join("; ")}
    </p>
  );
}

function DurationField({ id, name, value, onChange, help, errors }: { id: string; name: string; value: Dur; onChange: (d: Dur) => void; help?: string; errors?: string[] }) {
  return (
    <div>
      <label htmlFor={id} className={label}>
        {name}
      </label>
      <div className="flex gap-2">
        <input id={id} type="number" min={0} step="any" inputMode="decimal" value={value.amount} onChange={(e) => onChange({ ...value, amount: e.target.value })} className={input} aria-invalid={!!errors?.length} aria-describedby={errors?.length ? `${id}-error` : undefined} />
        <select aria-label={`${name} unit`} value={value.unit} onChange={(e) => onChange({ ...value, unit: Number(e.target.value) })} className={`${input} w-32`}>
          {UNITS.map((u) => (
            <option key={u.value} value={u.value}>
              {u.label}
            </option>
          ))}
        </select>
      </div>
      {help ? <p className="mt-1 text-xs text-slate-500">{help}</p> : null}
      <FieldError id={`${id}-error`} messages={errors} />
    </div>
  );
}

const FIELDS = ["name", "kind", "states", "type", "windowSeconds", "ageSeconds", "threshold", "recipients", "cooldownSeconds", "notifyOnResolve", "enabled", "silencedUntil"] as const;

function RuleForm({ rule, onDone, onCancel }: { rule: Rule | null; onDone: (id: string, wasNew: boolean) => void; onCancel: () => void }) {
  const trpc = useTRPC();
  const types = useQuery(trpc.commands.types.queryOptions(undefined, { staleTime: 60_000 }));
  const initialKind = (rule?.kind as Kind | undefined) ?? "count";
  const [name, setName] = useState(rule?.name ?? "");
  const [kind, setKind] = useState<Kind>(initialKind);
  const [states, setStates] = useState<State[]>(rule ? (rule.states as State[]) : ["exception"]);
  const [type, setType] = useState(rule?.type ?? "");
  const [win, setWin] = useState<Dur>(rule ? split(rule.windowSeconds) : { amount: "10", unit: 60 });
  const [age, setAge] = useState<Dur>(rule ? split(rule.ageSeconds) : { amount: "15", unit: 60 });
  const [threshold, setThreshold] = useState(rule ? String(initialKind === "rate" ? Number((rule.threshold * 100).toFixed(4)) : rule.threshold) : "5");
  const [recipients, setRecipients] = useState(rule?.recipients.join("\n") ?? "");
  const [cooldown, setCooldown] = useState<Dur>(split(rule?.cooldownSeconds ?? 3600));
  const [notifyOnResolve, setNotifyOnResolve] = useState(rule?.notifyOnResolve ?? true);
  const [enabled, setEnabled] = useState(rule?.enabled ?? true);
  const [localErrors, setLocalErrors] = useState<Record<string, string[]>>({});

  const create = useMutation(trpc.alerts.createRule.mutationOptions({ onSuccess: (r) => onDone(r.id, true) }));
  const update = useMutation(trpc.alerts.updateRule.mutationOptions({ onSuccess: (r) => onDone(r.id, false) }));
  const m = rule ? update : create;

  const list = recipients
    .split(/[\s,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);

  // Server issues ({path, message}) go next to their field; anything else in a box below.
  const serverErrors: Record<string, string[]> = {};
  const otherErrors: string[] = [];
  if (m.error instanceof TRPCClientError) {
    const issues = ((m.error.data as { issues?: { path: (string | number)[]; message: string }[] } | undefined)?.issues ?? []) as { path: (string | number)[]; message: string }[];
    for (const i of issues) {
      const f = String(i.path[0] ?? "");
      if ((FIELDS as readonly string[]).includes(f)) {
        const msg = f === "recipients" && typeof i.path[1] === "number" && list[i.path[1]] ? `${list[i.path[1]]}: ${i.message}` : i.message;
        (serverErrors[f] ??= []).push(msg);
      } else otherErrors.push(i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message);
    }
  }
  const errors = { ...serverErrors, ...localErrors };
  const hasIssues = Object.keys(serverErrors).length > 0 || otherErrors.length > 0;

  const submit = () => {
    const local: Record<string, string[]> = {};
    const t = Number(threshold);
    if (threshold.trim() === "" || !Number.isFinite(t)) local.threshold = ["enter a number"];
    if (!list.length) local.recipients = ["at least one recipient"];
    setLocalErrors(local);
    if (Object.keys(local).length) return;
    const body = {
      name: name.trim(),
      kind,
      states: kind === "count" || kind === "stuck" ? states : undefined,
      type: type || undefined,
      windowSeconds: kind === "count" || kind === "rate" ? toSeconds(win) : undefined,
      ageSeconds: kind === "stuck" ? toSeconds(age) : undefined,
      threshold: kind === "rate" ? t / 100 : t,
      recipients: list,
      cooldownSeconds: toSeconds(cooldown),
      notifyOnResolve,
      enabled,
      silencedUntil: rule?.silencedUntil ?? null,
    };
    if (rule) update.mutate({ id: rule.id, ...body });
    else create.mutate(body);
  };

  const described = (f: string) => (errors[f]?.length ? `rule-${f}-error` : undefined);

  return (
    <Panel title={rule ? `Edit rule: ${rule.name}` : "New rule"}>
      <form
        noValidate
        className="space-y-4"
        aria-label={rule ? "Edit rule" : "New rule"}
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <div>
          <label htmlFor="rule-name" className={label}>
            Name
          </label>
          <input id="rule-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={200} placeholder="e.g. Ledger exceptions" className={input} aria-invalid={!!errors.name} aria-describedby={described("name")} />
          <FieldError id="rule-name-error" messages={errors.name} />
        </div>

        <fieldset>
          <legend className={label}>Kind</legend>
          <div className="grid grid-cols-2 gap-2">
            {KINDS.map((k) => (
              <label key={k.value} title={k.help} className={`flex cursor-pointer items-center gap-2 rounded-lg border px-3 py-2 text-sm ${kind === k.value ? "border-slate-900 bg-slate-50 font-medium" : "border-slate-300"}`}>
                <input type="radio" name="rule-kind" value={k.value} checked={kind === k.value} onChange={() => {
                    setKind(k.value);
                    setLocalErrors({});
                  }} />
                {k.label}
              </label>
            ))}
          </div>
          <p className="mt-1 text-xs text-slate-500">{KINDS.find((k) => k.value === kind)?.help}.</p>
          <FieldError id="rule-kind-error" messages={errors.kind} />
        </fieldset>

        {kind === "count" || kind === "stuck" ? (
          <fieldset aria-describedby={described("states")}>
            <legend className={label}>{kind === "count" ? "States entered" : "States stuck in"}</legend>
            <div className="grid grid-cols-2 gap-x-3 gap-y-1">
              {STATES.map((s) => (
                <label key={s} className="flex items-center gap-2 text-sm text-slate-700">
                  <input type="checkbox" checked={states.includes(s)} onChange={(e) => setStates((cur) => (e.target.checked ? [...cur, s] : cur.filter((x) => x !== s)))} />
                  {STATE_LABEL[s]}
                </label>
              ))}
            </div>
            <FieldError id="rule-states-error" messages={errors.states} />
          </fieldset>
        ) : null}

        <div>
          <label htmlFor="rule-type" className={label}>
            Command type <span className="font-normal text-slate-400">(optional)</span>
          </label>
          <select id="rule-type" value={type} onChange={(e) => setType(e.target.value)} className={input} aria-describedby={described("type")}>
            <option value="">Any type</option>
            {[...new Set([...(types.data ?? []), ...(type ? [type] : [])])].map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
          <FieldError id="rule-type-error" messages={errors.type} />
        </div>

        {kind === "count" || kind === "rate" ? (
          <DurationField id="rule-windowSeconds" name="Window" value={win} onChange={setWin} help={kind === "count" ? "Counts the commands that entered the states within this window." : "Looks at the commands finished within this window."} errors={errors.windowSeconds} />
        ) : null}
        {kind === "stuck" ? <DurationField id="rule-ageSeconds" name="Age" value={age} onChange={setAge} help="Fires for commands in the states for longer than this." errors={errors.ageSeconds} /> : null}

        <div>
          <label htmlFor="rule-threshold" className={label}>
            Threshold
          </label>
          <div className="relative">
            <input
              id="rule-threshold"
              type="number"
              min={0}
              max={kind === "rate" ? 100 : undefined}
              step="any"
              inputMode="decimal"
              value={threshold}
              onChange={(e) => setThreshold(e.target.value)}
              className={`${input} ${kind === "rate" ? "pr-8" : ""}`}
              aria-invalid={!!errors.threshold}
              aria-describedby={described("threshold")}
            />
            {kind === "rate" ? <span className="pointer-events-none absolute inset-y-0 right-3 flex items-center text-sm text-slate-500">%</span> : null}
          </div>
          <p className="mt-1 text-xs text-slate-500">{kind === "rate" ? "Fires when at least this percentage of finished commands failed or hit an exception." : "Fires when the number of commands reaches this value."}</p>
          <FieldError id="rule-threshold-error" messages={errors.threshold} />
        </div>

        <div>
          <label htmlFor="rule-recipients" className={label}>
            Recipients
          </label>
          <textarea id="rule-recipients" rows={3} value={recipients} onChange={(e) => setRecipients(e.target.value)} placeholder={"oncall@example.com\nops@example.com"} className={`${input} font-mono text-xs`} aria-invalid={!!errors.recipients} aria-describedby={described("recipients")} />
          <p className="mt-1 text-xs text-slate-500">Email addresses, separated by commas or new lines.</p>
          <FieldError id="rule-recipients-error" messages={errors.recipients} />
        </div>

        <DurationField id="rule-cooldownSeconds" name="Repeat every" value={cooldown} onChange={setCooldown} help="While it keeps firing, the alert is sent again no sooner than this (1 minute to 7 days)." errors={errors.cooldownSeconds} />

        <div className="space-y-1.5">
          <label className="flex items-center gap-2 text-sm text-slate-700">
            <input type="checkbox" checked={notifyOnResolve} onChange={(e) => setNotifyOnResolve(e.target.checked)} />
            Email when resolved
          </label>
          <label className="flex items-center gap-2 text-sm text-slate-700">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
            Enabled
          </label>
          <FieldError id="rule-enabled-error" messages={[...(errors.enabled ?? []), ...(errors.notifyOnResolve ?? []), ...(errors.silencedUntil ?? [])]} />
        </div>

        {m.error && (!hasIssues || otherErrors.length) ? (
          hasIssues ? (
            <div role="alert" className="rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800">
              <ul className="list-disc pl-5">
                {otherErrors.map((e) => (
                  <li key={e}>{e}</li>
                ))}
              </ul>
            </div>
          ) : (
            <ErrorBox error={m.error} title={rule ? "Could not save the rule" : "Could not create the rule"} />
          )
        ) : hasIssues ? (
          <p role="alert" className="text-sm font-medium text-red-700">
            Check the fields marked above.
          </p>
        ) : null}

        <div className="flex items-center gap-2">
          <button type="submit" className={btn.primary} disabled={m.isPending}>
            {rule ? "Save changes" : "Create rule"}
          </button>
          {rule ? (
            <button type="button" className={btn.secondary} onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </form>
    </Panel>
  );
}

// ---------- history ----------

const EVENT_STYLE: Record<HistoryItem["kind"], { label: string; tone: "firing" | "warn" | "ok" | "info" }> = {
  firing: { label: "Firing", tone: "firing" },
  repeat: { label: "Repeat", tone: "warn" },
  resolved: { label: "Resolved", tone: "ok" },
  test: { label: "Test", tone: "info" },
};

function History({ rules }: { rules: Rule[] }) {
  const trpc = useTRPC();
  const [ruleId, setRuleId] = useState("");
  const history = useQuery(trpc.alerts.history.queryOptions({ ruleId: ruleId || undefined, limit: 100 }, { refetchInterval: REFRESH_MS }));
  const items = (history.data?.items ?? []) as HistoryItem[];
  const kindOf = new Map(rules.map((r) => [r.id, r.kind as Kind]));
  return (
    <Panel
      title="Alert history"
      bodyClass=""
      actions={
        <div className="flex items-center gap-2">
          <label htmlFor="history-rule" className="text-xs font-medium text-slate-500">
            Rule
          </label>
          <select id="history-rule" value={ruleId} onChange={(e) => setRuleId(e.target.value)} className={`${input} w-56 py-1`}>
            <option value="">All rules</option>
            {rules.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name}
              </option>
            ))}
          </select>
        </div>
      }
    >
      {history.error && !history.data ? (
        <div className="p-4">
          <ErrorBox error={history.error} title="Could not load the alert history" onRetry={() => history.refetch()} />
        </div>
      ) : !history.data ? (
        <Loading label="Loading history…" />
      ) : items.length === 0 ? (
        <Empty title={ruleId ? "Nothing for this rule yet" : "No alert yet"}>Every firing, repeat, resolution and test email shows here with its deliveries.</Empty>
      ) : (
        <ol className="divide-y divide-slate-100" aria-label="Alert history">
          {items.map((e) => (
            <HistoryEntry key={e.id} e={e} kind={kindOf.get(e.rule_id)} />
          ))}
        </ol>
      )}
    </Panel>
  );
}

function DeliveryLine({ status: st }: { status: DeliveryStatus }) {
  switch (st.state) {
    case "sent":
      return (
        <span className="text-xs font-medium text-emerald-700">
          sent <time dateTime={st.sentAt} title={fmtTime(st.sentAt)}>{fmtTime(st.sentAt)}</time>
        </span>
      );
    case "not_sent":
      return <span className="text-xs font-medium text-amber-800">not sent: {st.message}</span>;
    case "queued":
      return (
        <span className="text-xs text-amber-800">
          {st.attempts > 0 ? `queued: retrying, attempt ${st.attempts} failed` : "queued: not tried yet"}
          {st.attempts > 0 && st.nextAt ? (
            <>
              , next try <time dateTime={st.nextAt} title={fmtTime(st.nextAt)}>{fmtTime(st.nextAt)}</time>
            </>
          ) : null}
          {st.lastError ? <span className="text-red-700">, last error: {st.lastError}</span> : null}
        </span>
      );
  }
}

function HistoryEntry({ e, kind }: { e: HistoryItem; kind: Kind | undefined }) {
  const st = EVENT_STYLE[e.kind] ?? { label: e.kind, tone: "info" as const };
  const first = e.deliveries[0];
  return (
    <li className="px-4 py-3" data-testid="history-entry" data-kind={e.kind}>
      <div className="flex flex-wrap items-baseline gap-x-3 gap-y-1">
        <Pill tone={st.tone}>{st.label}</Pill>
        <span className="font-medium text-slate-900">{e.rule_name}</span>
        <span className="text-sm tabular-nums text-slate-600">
          value <span className="font-medium text-slate-900">{fmtValue(kind, e.value)}</span> · threshold ≥ {fmtValue(kind, e.threshold)}
        </span>
        <span className="ml-auto text-xs text-slate-500">
          <time dateTime={e.at}>{fmtTime(e.at)}</time> · <RelTime iso={e.at} />
        </span>
      </div>
      {e.deliveries.length ? (
        <ul className="mt-2 space-y-1" aria-label="Deliveries">
          {e.deliveries.map((d) => (
            <li key={d.id} className="flex flex-wrap items-baseline gap-x-2 text-sm" data-testid="delivery">
              <span className="font-mono text-xs text-slate-700">{d.recipient}</span>
              <DeliveryLine status={d.status} />
            </li>
          ))}
        </ul>
      ) : (
        <p className="mt-2 text-xs text-slate-400">No delivery (the rule was silenced or had no recipient).</p>
      )}
      {first?.text ? (
        <details className="group mt-2">
          <summary className="cursor-pointer text-xs font-medium text-sky-700 hover:text-sky-900">{e.deliveries.some((d) => d.status.state === "sent") ? "Show the message" : "Show the message (not sent yet)"}</summary>
          <div className="mt-2 rounded-lg border border-slate-200 bg-slate-50 p-3">
            <p className="mb-2 text-xs text-slate-500">
              Subject: <span className="font-medium text-slate-800">{first.subject}</span>
            </p>
            <pre className="max-h-80 overflow-auto font-mono text-xs leading-relaxed whitespace-pre-wrap text-slate-800">{first.text}</pre>
          </div>
        </details>
      ) : null}
    </li>
  );
}
