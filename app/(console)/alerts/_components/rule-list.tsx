"use client";
// The rules table: each rule's condition, state, last value, its channels
// (recipients and webhooks) with each one's last delivery, when it was
// evaluated and what became of its emails; admins get its actions (edit,
// enable/disable, silence, send a test, rotate the webhook secret, delete).
import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { btn, ErrorBox, fmtTime, RelTime } from "@/app/_components/ui";
import { describeRule, duration, formatValue } from "@/server/alerts/format";
import { Pill } from "./pill";
import { SecretOnce } from "./secret-once";
import type { Rule, RuleChannel, RuleEmail, RuleKind, RuleUpdate } from "./types";

const KIND_LABEL: Record<RuleKind, string> = {
  count: "Count",
  stuck: "Stuck",
  rate: "Failure rate",
  backlog: "Backlog",
  latency: "Latency",
  circuit: "Circuit",
};

const future = (iso: string | null) => !!iso && new Date(iso).getTime() > Date.now();

function RuleState({ r }: { r: Rule }) {
  if (!r.enabled) return <Pill tone="muted">disabled</Pill>;
  return (
    <div className="flex flex-col items-start gap-1" data-testid="rule-state">
      {r.state === "firing" ? (
        <Pill tone="firing">
          firing
          {r.firingSince ? (
            <>
              {" "}
              since <RelTime iso={r.firingSince} />
            </>
          ) : null}
        </Pill>
      ) : r.lastEvaluatedAt ? (
        <Pill tone="ok">ok</Pill>
      ) : (
        <Pill tone="muted">not evaluated yet</Pill>
      )}
      {r.silencedUntil && future(r.silencedUntil) ? (
        <Pill tone="warn" title={fmtTime(r.silencedUntil)}>
          silenced until{" "}
          {new Date(r.silencedUntil).toLocaleString(undefined, {
            month: "short",
            day: "numeric",
            hour: "2-digit",
            minute: "2-digit",
          })}
        </Pill>
      ) : null}
    </div>
  );
}

const emails = (n: number) => (n === 1 ? "1 email" : `${n} emails`);

/** What became of the rule's emails, from their deliveries: sent (when), queued (retrying: next try, last error), or not sent and why. */
function EmailState({ email }: { email: RuleEmail }) {
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
              retrying, attempt {l.attempts} failed
              {l.lastError ? <span className="font-normal text-red-700"> ({l.lastError})</span> : null}; next try{" "}
              <RelTime iso={l.nextAt} />
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
      {earlier > 0 ? (
        <span className="block text-amber-800">{emails(earlier)} of earlier alerts not sent yet</span>
      ) : null}
    </div>
  );
}

/** A channel's last delivery, in a few words: sent (when), retrying (tries, last status or error, next try), not tried yet. */
function LastDelivery({ last }: { last: RuleChannel["last"] }) {
  if (!last) return <span className="text-slate-400">no delivery yet</span>;
  const st = last.status;
  const what = `${last.kind}, `;
  if (st.state === "sent")
    return (
      <span className="text-emerald-700">
        {what}sent <RelTime iso={st.sentAt} />
      </span>
    );
  if (st.state === "not_sent") return <span className="text-amber-800">{what}not sent: SMTP_URL is unset</span>;
  if (st.attempts === 0) return <span className="text-amber-800">{what}queued, not tried yet</span>;
  return (
    <span className="text-amber-800">
      {what}try {st.attempts} failed
      {st.lastError ? <span className="text-red-700"> ({st.lastError})</span> : null}; next try{" "}
      <RelTime iso={st.nextAt} />
    </span>
  );
}

function Channels({ r }: { r: Rule }) {
  return (
    <ul className="space-y-1" aria-label={`Channels of ${r.name}`}>
      {r.channels.map((c) => (
        <li key={`${c.channel} ${c.to}`} className="min-w-0" data-testid="rule-channel" data-channel={c.channel}>
          <span className="flex items-center gap-1.5">
            <span className="rounded bg-slate-100 px-1 py-px text-[10px] font-medium uppercase tracking-wide text-slate-500">
              {c.channel === "webhook" ? "Webhook" : "Email"}
            </span>
            <span className="truncate text-slate-700" title={c.to}>
              {c.to}
            </span>
          </span>
          <span className="block text-xs">
            <LastDelivery last={c.last} />
          </span>
        </li>
      ))}
    </ul>
  );
}

type RowProps = { isAdmin: boolean; onEdit: (r: Rule) => void; onChanged: () => void; onDeleted: (id: string) => void };

export function RulesTable({ rules, editingId, ...row }: RowProps & { rules: Rule[]; editingId: string | null }) {
  const th = "px-3 py-2.5";
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
          <tr>
            <th className="px-4 py-2.5">Rule</th>
            <th className={th}>State</th>
            <th className={`${th} text-right`}>Last value</th>
            <th className={th}>Channels</th>
            <th className="px-4 py-2.5 whitespace-nowrap">Evaluated / email</th>
          </tr>
        </thead>
        {rules.map((r) => (
          <RuleRows key={r.id} r={r} editing={editingId === r.id} {...row} />
        ))}
      </table>
    </div>
  );
}

/** The full replacement input of a rule, from what listRules returned, with some fields changed. */
function asInput(r: Rule, patch: { enabled?: boolean; silencedUntil?: string | null }): RuleUpdate {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    states: r.kind === "count" || r.kind === "stuck" ? r.states : undefined,
    type: r.type ?? undefined,
    windowSeconds: r.windowSeconds ?? undefined,
    ageSeconds: r.ageSeconds ?? undefined,
    percentile: r.kind === "latency" ? (r.percentile ?? undefined) : undefined,
    threshold: r.threshold,
    recipients: r.recipients,
    webhooks: r.webhooks,
    cooldownSeconds: r.cooldownSeconds,
    notifyOnResolve: r.notifyOnResolve,
    enabled: patch.enabled ?? r.enabled,
    silencedUntil: patch.silencedUntil !== undefined ? patch.silencedUntil : r.silencedUntil,
  };
}

function RuleRows({ r, isAdmin, editing, onEdit, onChanged, onDeleted }: RowProps & { r: Rule; editing: boolean }) {
  const trpc = useTRPC();
  const update = useMutation(trpc.alerts.updateRule.mutationOptions({ onSuccess: onChanged }));
  const del = useMutation(trpc.alerts.deleteRule.mutationOptions({ onSuccess: () => onDeleted(r.id) }));
  const test = useMutation(trpc.alerts.testRule.mutationOptions({ onSuccess: onChanged }));
  const rotate = useMutation(trpc.alerts.rotateWebhookSecret.mutationOptions());
  const [secret, setSecret] = useState<string | null>(null);
  const silenced = future(r.silencedUntil);
  const busy = update.isPending || del.isPending;
  const small = `${btn.secondary} px-2.5 py-1 text-xs`;
  const td = "px-3 py-3 align-top";
  const err = update.error ?? del.error ?? test.error ?? rotate.error;
  const silence = (ms: number) => update.mutate(asInput(r, { silencedUntil: new Date(Date.now() + ms).toISOString() }));
  return (
    <tbody
      aria-label={r.name}
      className={`border-b border-slate-200 last:border-b-0 ${editing ? "bg-sky-50/50" : ""} ${!r.enabled ? "text-slate-500" : ""}`}
    >
      <tr>
        <td className="px-4 py-3 align-top">
          <div className="flex items-center gap-2">
            <span className="font-medium text-slate-900">{r.name}</span>
            <span className="rounded bg-slate-100 px-1.5 py-0.5 text-[11px] font-medium uppercase tracking-wide text-slate-600">
              {KIND_LABEL[r.kind] ?? r.kind}
            </span>
          </div>
          <p className="mt-1 text-slate-600">{describeRule(r)}</p>
          <p className="mt-0.5 text-xs text-slate-400">
            repeats every {duration(r.cooldownSeconds)} while firing
            {r.notifyOnResolve ? " · notifies when resolved" : ""}
          </p>
        </td>
        <td className={td}>
          <RuleState r={r} />
        </td>
        <td className={`${td} text-right whitespace-nowrap tabular-nums`}>
          <span className={r.enabled && r.state === "firing" ? "font-semibold text-red-700" : "text-slate-900"}>
            {formatValue(r.kind, r.lastValue)}
          </span>
          <span className="block text-xs text-slate-500">threshold ≥ {formatValue(r.kind, r.threshold)}</span>
        </td>
        <td className={`${td} max-w-72`}>
          <Channels r={r} />
        </td>
        <td className="px-4 py-3 align-top text-xs whitespace-nowrap text-slate-500">
          <span className="block">
            {r.lastEvaluatedAt ? (
              <>
                evaluated <RelTime iso={r.lastEvaluatedAt} />
              </>
            ) : (
              "not evaluated yet"
            )}
          </span>
          {r.recipients.length ? <EmailState email={r.email} /> : null}
        </td>
      </tr>
      {isAdmin ? (
        <tr>
          <td colSpan={5} className="px-4 pb-3">
            <div className="flex flex-wrap items-center gap-2" role="group" aria-label={`Actions for ${r.name}`}>
              <button type="button" className={small} onClick={() => onEdit(r)} disabled={busy}>
                Edit
              </button>
              <button
                type="button"
                className={small}
                disabled={busy}
                onClick={() => update.mutate(asInput(r, { enabled: !r.enabled }))}
              >
                {r.enabled ? "Disable" : "Enable"}
              </button>
              {silenced ? (
                <button
                  type="button"
                  className={small}
                  disabled={busy}
                  onClick={() => update.mutate(asInput(r, { silencedUntil: null }))}
                >
                  Unsilence
                </button>
              ) : (
                <>
                  <button type="button" className={small} disabled={busy} onClick={() => silence(3600_000)}>
                    Silence 1 h
                  </button>
                  <button type="button" className={small} disabled={busy} onClick={() => silence(86400_000)}>
                    Silence 24 h
                  </button>
                </>
              )}
              <button
                type="button"
                className={`${small} text-sky-800`}
                disabled={test.isPending}
                onClick={() => test.mutate({ id: r.id })}
              >
                {test.isPending ? "Queuing…" : "Send test"}
              </button>
              {r.webhooks.length ? (
                <button
                  type="button"
                  className={small}
                  disabled={rotate.isPending}
                  onClick={() => {
                    if (
                      window.confirm(
                        `Rotate the webhook secret of "${r.name}"? Receivers must be given the new one: the old one stops verifying at once.`,
                      )
                    )
                      rotate.mutate({ id: r.id }, { onSuccess: (x) => setSecret(x.webhookSecret) });
                  }}
                >
                  Rotate webhook secret
                </button>
              ) : null}
              <button
                type="button"
                className="ml-auto rounded-md px-2 py-1 text-xs font-medium text-red-700 hover:bg-red-50 disabled:opacity-50"
                disabled={busy}
                onClick={() => {
                  if (window.confirm(`Delete the rule "${r.name}"? Its history goes with it.`))
                    del.mutate({ id: r.id });
                }}
              >
                Delete
              </button>
            </div>
            {test.data ? (
              <div
                role="status"
                className="mt-2 flex items-start justify-between gap-3 rounded-lg border border-sky-200 bg-sky-50 px-3 py-2 text-xs text-sky-900"
              >
                <div>
                  <p className="font-medium">
                    Test queued for{" "}
                    {[
                      ...(test.data.recipients.length ? [`email to ${test.data.recipients.join(", ")}`] : []),
                      ...(test.data.webhooks
                        ? [`${test.data.webhooks} ${test.data.webhooks === 1 ? "webhook" : "webhooks"}`]
                        : []),
                    ].join(" and ")}
                  </p>
                  {test.data.emailConfigured || !test.data.recipients.length ? (
                    <p className="mt-0.5 text-sky-800">
                      A worker sends it within seconds; its deliveries show in the history below.
                    </p>
                  ) : (
                    <p className="mt-0.5 text-amber-800">
                      Email is not configured (SMTP_URL is unset): no email is sent
                      {test.data.webhooks ? " (the webhooks are)" : ""}. The console shows what would have been sent in
                      the history below.
                    </p>
                  )}
                </div>
                <button type="button" className="shrink-0 text-sky-700 hover:underline" onClick={() => test.reset()}>
                  Dismiss
                </button>
              </div>
            ) : null}
            {secret ? (
              <div className="mt-2">
                <SecretOnce secret={secret} title="New webhook secret" onDismiss={() => setSecret(null)} />
              </div>
            ) : null}
            {err ? (
              <div className="mt-2">
                <ErrorBox
                  error={err}
                  title={
                    test.error
                      ? "Could not queue the test"
                      : rotate.error
                        ? "Could not rotate the webhook secret"
                        : del.error
                          ? "Could not delete the rule"
                          : "Could not update the rule"
                  }
                />
              </div>
            ) : null}
          </td>
        </tr>
      ) : null}
    </tbody>
  );
}
