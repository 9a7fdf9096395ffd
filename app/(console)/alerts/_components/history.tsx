"use client";
// The alert history: every firing, repeat, resolution and test, newest first,
// each with its deliveries (emails and webhooks), what became of them and
// every try, and the message sent.
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { Empty, ErrorBox, fmtTime, input, Loading, Panel, RelTime } from "@/app/_components/ui";
import { formatValue } from "@/server/alerts/format";
import { Pill, type Tone } from "./pill";
import { REFRESH_MS, type DeliveryStatus, type HistoryItem, type Rule, type RuleKind } from "./types";

const EVENT_STYLE: Record<HistoryItem["kind"], { label: string; tone: Tone }> = {
  firing: { label: "Firing", tone: "firing" },
  repeat: { label: "Repeat", tone: "warn" },
  resolved: { label: "Resolved", tone: "ok" },
  test: { label: "Test", tone: "info" },
};

export function History({ rules, initialRule }: { rules: Rule[]; initialRule?: string }) {
  const trpc = useTRPC();
  const [ruleId, setRuleId] = useState(initialRule ?? "");
  const history = useQuery(
    trpc.alerts.history.queryOptions({ ruleId: ruleId || undefined, limit: 100 }, { refetchInterval: REFRESH_MS }),
  );
  const items = history.data?.items ?? [];
  const kindOf = new Map(rules.map((r) => [r.id, r.kind]));
  return (
    <Panel
      title="Alert history"
      bodyClass=""
      actions={
        <div className="flex items-center gap-2">
          <label htmlFor="history-rule" className="text-xs font-medium text-slate-500">
            Rule
          </label>
          <select
            id="history-rule"
            value={ruleId}
            onChange={(e) => setRuleId(e.target.value)}
            className={`${input} w-56 py-1`}
          >
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
        <Empty title={ruleId ? "Nothing for this rule yet" : "No alert yet"}>
          Every firing, repeat, resolution and test shows here with its deliveries.
        </Empty>
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
          sent{" "}
          <time dateTime={st.sentAt} title={fmtTime(st.sentAt)}>
            {fmtTime(st.sentAt)}
          </time>
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
              , next try{" "}
              <time dateTime={st.nextAt} title={fmtTime(st.nextAt)}>
                {fmtTime(st.nextAt)}
              </time>
            </>
          ) : null}
          {st.lastError ? <span className="text-red-700">, last error: {st.lastError}</span> : null}
        </span>
      );
  }
}

type Delivery = HistoryItem["deliveries"][number];

/** Every try of a delivery: when it ended, the HTTP status a webhook answered, the error. */
function Tries({ d }: { d: Delivery }) {
  if (!d.tries.length) return null;
  return (
    <details className="w-full pl-4" data-testid="delivery-tries">
      <summary className="cursor-pointer text-xs text-slate-500 hover:text-slate-800">
        {d.tries.length === 1 ? "1 try" : `${d.tries.length} tries`}
      </summary>
      <ol className="mt-1 space-y-0.5 text-xs text-slate-600" aria-label="Tries">
        {d.tries.map((t) => (
          <li key={t.number} className="flex flex-wrap gap-x-2" data-testid="delivery-try">
            <span className="tabular-nums text-slate-400">#{t.number}</span>
            <time dateTime={t.at} title={fmtTime(t.at)}>
              {fmtTime(t.at)}
            </time>
            {t.status !== null ? <span className="font-mono">HTTP {t.status}</span> : null}
            {t.error && t.error !== `HTTP ${t.status}` ? (
              <span className="text-red-700">{t.error}</span>
            ) : t.error ? (
              <span className="text-red-700">failed</span>
            ) : (
              <span className="text-emerald-700">{d.channel === "webhook" ? "delivered" : "sent"}</span>
            )}
          </li>
        ))}
      </ol>
    </details>
  );
}

function HistoryEntry({ e, kind }: { e: HistoryItem; kind: RuleKind | undefined }) {
  const st = EVENT_STYLE[e.kind] ?? { label: e.kind, tone: "info" as const };
  const first = e.deliveries.find((d) => d.channel === "email" && d.text);
  const hook = e.deliveries.find((d) => d.channel === "webhook");
  return (
    <li className="px-4 py-3" data-testid="history-entry" data-kind={e.kind}>
      <div className="flex flex-wrap items-baseline gap-x-3 gap-y-1">
        <Pill tone={st.tone}>{st.label}</Pill>
        <span className="font-medium text-slate-900">{e.rule_name}</span>
        <span className="text-sm tabular-nums text-slate-600">
          value <span className="font-medium text-slate-900">{formatValue(kind, e.value)}</span> · threshold ≥{" "}
          {formatValue(kind, e.threshold)}
        </span>
        <span className="ml-auto text-xs text-slate-500">
          <time dateTime={e.at}>{fmtTime(e.at)}</time> · <RelTime iso={e.at} />
        </span>
      </div>
      {e.deliveries.length ? (
        <ul className="mt-2 space-y-1" aria-label="Deliveries">
          {e.deliveries.map((d) => (
            <li
              key={d.id}
              className="flex flex-wrap items-baseline gap-x-2 text-sm"
              data-testid="delivery"
              data-channel={d.channel}
            >
              <span className="rounded bg-slate-100 px-1 py-px text-[10px] font-medium uppercase tracking-wide text-slate-500">
                {d.channel === "webhook" ? "Webhook" : "Email"}
              </span>
              <span className="font-mono text-xs break-all text-slate-700">{d.recipient}</span>
              <DeliveryLine status={d.status} />
              <Tries d={d} />
            </li>
          ))}
        </ul>
      ) : (
        <p className="mt-2 text-xs text-slate-400">No delivery (the rule was silenced or had no channel).</p>
      )}
      {first?.text ? (
        <details className="group mt-2">
          <summary className="cursor-pointer text-xs font-medium text-sky-700 hover:text-sky-900">
            {e.deliveries.some((d) => d.status.state === "sent")
              ? "Show the message"
              : "Show the message (not sent yet)"}
          </summary>
          <div className="mt-2 rounded-lg border border-slate-200 bg-slate-50 p-3">
            <p className="mb-2 text-xs text-slate-500">
              Subject: <span className="font-medium text-slate-800">{first.subject}</span>
            </p>
            <pre className="max-h-80 overflow-auto font-mono text-xs leading-relaxed whitespace-pre-wrap text-slate-800">
              {first.text}
            </pre>
          </div>
        </details>
      ) : null}
      {hook?.body ? (
        <details className="group mt-2">
          <summary className="cursor-pointer text-xs font-medium text-sky-700 hover:text-sky-900">
            Show the webhook payload
          </summary>
          <pre className="mt-2 max-h-80 overflow-auto rounded-lg border border-slate-200 bg-slate-50 p-3 font-mono text-xs leading-relaxed whitespace-pre-wrap text-slate-800">
            {JSON.stringify(hook.body, null, 2)}
          </pre>
        </details>
      ) : null}
    </li>
  );
}
