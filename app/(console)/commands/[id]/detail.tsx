"use client";
import Link from "next/link";
import { useEffect, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { ActionButtons } from "@/app/_components/actions";
import { EditRetryButton } from "@/app/_components/edit-retry";
import { CopyButton, Empty, ErrorBox, fmtTime, Json, Loading, Panel, RelTime, StatusBadge } from "@/app/_components/ui";
import { QUEUED } from "@/server/engine/states";
import { KeyLineNote, OrderingKeyFact } from "./key-line";
import { cx } from "@/app/_components/cx";
import { shortId } from "@/server/engine/short-id";

const isQueued = (s: string) => (QUEUED as readonly string[]).includes(s);

const OUTCOME_STYLE: Record<string, string> = {
  success: "bg-emerald-500",
  succeeded: "bg-emerald-500",
  failure: "bg-orange-500",
  failed: "bg-orange-500",
  exception: "bg-red-600",
  accepted: "bg-indigo-500",
  unknown: "bg-amber-500",
  not_found: "bg-slate-400",
};

export function CommandDetail({ id, canAct }: { id: string; canAct: boolean }) {
  const trpc = useTRPC();
  const q = useQuery(trpc.commands.get.queryOptions({ id }, { refetchInterval: 3_000, retry: false }));

  if (q.error && !q.data) {
    const code = (q.error.data as { code?: string } | undefined)?.code;
    return (
      <div className="mx-auto max-w-2xl">
        <BackLink />
        {code === "NOT_FOUND" || code === "BAD_REQUEST" ? (
          <Panel>
            <Empty title="No such command">
              <span className="font-mono">{id}</span> is not a command Conveyor holds.{" "}
              <Link className="text-sky-700 hover:underline" href="/commands">
                Back to the list
              </Link>
            </Empty>
          </Panel>
        ) : (
          <ErrorBox error={q.error} title="Could not load the command" onRetry={() => q.refetch()} />
        )}
      </div>
    );
  }
  if (!q.data) return <Loading label="Loading the command…" />;

  const { command: c, attempts, audit, callbacks, ordering } = q.data;
  const inProgress = attempts.find((a) => a.finishedAt === null) ?? null;
  const facts: [string, React.ReactNode][] = [
    ["Type", c.type],
    ["Client", c.client],
    [
      "Batch",
      c.batchId ? (
        <Link key="b" className="font-mono text-xs text-sky-700 hover:underline" href={`/batches/${c.batchId}`}>
          {shortId(c.batchId)}
        </Link>
      ) : (
        "—"
      ),
    ],
    [
      "Idempotency key",
      c.idempotencyKey ? <span className="break-all font-mono text-xs">{c.idempotencyKey}</span> : "—",
    ],
    ["Ordering key", <OrderingKeyFact key="o" line={ordering} />],
    [
      "Attempts",
      <span key="a" title={ATTEMPT_MEANS}>
        {attemptsLabel(c.attemptCount, inProgress)}
      </span>,
    ],
    ...(c.status === "awaiting"
      ? []
      : ([
          [
            "Tries this round",
            <span key="t" title={TRY_MEANS}>
              {c.maxAttempts ? `${c.tries} of max ${c.maxAttempts}` : String(c.tries)}
            </span>,
          ],
        ] as [string, React.ReactNode][])),
    ["Phase", c.phase],
    ...(c.payloadEdited
      ? ([["Payload", "edited by an operator (Edit & retry: see the audit trail)"]] as [string, React.ReactNode][])
      : []),
    ["Priority", String(c.priority)],
    ["Created", <RelTime key="c" iso={c.createdAt} />],
    ["Updated", <RelTime key="u" iso={c.updatedAt} />],
    ["Finished", <RelTime key="f" iso={c.finishedAt} />],
    [
      "Next run",
      !isQueued(c.status) ? (
        "—"
      ) : ordering?.waiting ? (
        "after the earlier commands of its ordering key"
      ) : (
        <RelTime key="r" iso={c.runAt} />
      ),
    ],
    ["Worker", c.worker ?? "—"],
    ["Reconcile first", c.needsReconcile ? "yes: the last outcome is unknown" : "no"],
    ["Callback URL", c.callbackUrl ? <span className="break-all font-mono text-xs">{c.callbackUrl}</span> : "—"],
  ];

  return (
    <>
      <BackLink />
      <div className="mb-6 flex flex-wrap items-start justify-between gap-4">
        <div className="min-w-0">
          <div className="flex flex-wrap items-center gap-3">
            <h1 className="text-xl font-semibold tracking-tight text-slate-900">{c.type}</h1>
            <span data-testid="command-status">
              <StatusBadge status={c.status} />
            </span>
          </div>
          <div className="mt-1 flex items-center gap-2 text-sm text-slate-500">
            <span className="font-mono">{c.id}</span>
            <CopyButton text={c.id} label="Copy id" small />
          </div>
        </div>
        {canAct ? (
          <ActionButtons
            target={{ ids: [c.id] }}
            what="this command"
            refreshKey={`${c.status}|${c.worker ?? ""}|${c.updatedAt}`}
          >
            <EditRetryButton command={c} />
          </ActionButtons>
        ) : null}
      </div>

      {c.error ? (
        <div className="mb-6 rounded-xl border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800" role="note">
          <span className="font-medium">Last error: </span>
          {c.error}
        </div>
      ) : null}

      <KeyLineNote line={ordering} />

      <div className="grid gap-6 lg:grid-cols-3">
        <div className="space-y-6 lg:col-span-2">
          <Panel title="Payload">
            <Json value={c.payload} />
          </Panel>
          {c.result !== null && c.result !== undefined ? (
            <Panel title="Result">
              <Json value={c.result} />
            </Panel>
          ) : null}
          {c.failure !== null && c.failure !== undefined ? (
            <Panel title="Failure">
              <Json value={c.failure} />
            </Panel>
          ) : null}

          <div data-testid="attempts-panel">
            <Panel title={`Attempts (${attemptsLabel(c.attemptCount, inProgress)})`}>
              <p className="mb-4 text-xs text-slate-500">{ATTEMPT_MEANS}</p>
              {attempts.length === 0 ? (
                isQueued(c.status) ? (
                  <Empty title="No attempt yet">
                    {ordering?.waiting
                      ? "It waits for an earlier command of its ordering key."
                      : "A worker has not picked this command up."}
                  </Empty>
                ) : (
                  <Empty title="No attempt was made" />
                )
              ) : (
                <ol className="relative ml-2 border-l border-slate-200" aria-label="Attempts">
                  {attempts.map((a) => (
                    <li
                      key={a.number}
                      className="mb-5 ml-5 last:mb-0"
                      data-testid={a.finishedAt === null ? "attempt-in-progress" : undefined}
                    >
                      <span
                        className={cx(
                          "absolute -left-[7px] mt-1.5 h-3.5 w-3.5 rounded-full ring-4 ring-white",
                          a.finishedAt === null
                            ? "animate-pulse bg-blue-500"
                            : a.outcome
                              ? (OUTCOME_STYLE[a.outcome] ?? "bg-slate-400")
                              : "bg-slate-400",
                        )}
                        aria-hidden
                      />
                      <div className="flex flex-wrap items-baseline gap-x-3 gap-y-1 text-sm">
                        <span className="font-medium text-slate-900">
                          #{a.number} {a.kind}
                        </span>
                        {a.finishedAt === null ? (
                          <>
                            <span className="rounded bg-blue-50 px-1.5 py-0.5 text-xs font-medium text-blue-700">
                              in progress
                            </span>
                            <span className="text-xs text-slate-500" title="When the worker claimed the command">
                              started {fmtTime(a.startedAt)}
                            </span>
                            <Elapsed ms={a.elapsedMs ?? 0} since={q.dataUpdatedAt} />
                          </>
                        ) : (
                          <>
                            <span className="rounded bg-slate-100 px-1.5 py-0.5 text-xs font-medium text-slate-700">
                              {a.outcome ?? "no outcome"}
                            </span>
                            <span className="text-xs text-slate-500" title={fmtTime(a.startedAt)}>
                              {fmtTime(a.startedAt)}
                            </span>
                            {a.durationMs !== null ? (
                              <span className="text-xs text-slate-500">{a.durationMs.toLocaleString()} ms</span>
                            ) : null}
                          </>
                        )}
                        <span className="text-xs text-slate-400">
                          {a.finishedAt === null ? `on ${a.worker}` : a.worker}
                        </span>
                      </div>
                      {a.finishedAt === null && a.leaseExpired ? (
                        <p className="mt-1 text-sm text-amber-800">
                          Lease expired <RelTime iso={a.leaseExpiresAt} />: the worker stopped renewing it. The rescuer
                          takes the command back and records this attempt as an exception.
                        </p>
                      ) : null}
                      {a.error ? <p className="mt-1 text-sm text-red-700">{a.error}</p> : null}
                      {a.detail !== null && a.detail !== undefined ? (
                        <details className="mt-1">
                          <summary className="cursor-pointer text-xs text-slate-500 hover:text-slate-700">
                            Details
                          </summary>
                          <Json value={a.detail} className="mt-1" />
                        </details>
                      ) : null}
                    </li>
                  ))}
                </ol>
              )}
              {c.status === "awaiting" && !inProgress ? (
                <p className="mt-4 text-sm text-slate-600">
                  The backend accepted the command; its result is awaited{" "}
                  {c.runAt ? (
                    <>
                      by inbound callback or the next poll, <RelTime iso={c.runAt} />
                    </>
                  ) : (
                    "by inbound callback (this command is not polled)"
                  )}
                  .
                </p>
              ) : null}
            </Panel>
          </div>
        </div>

        <div className="space-y-6">
          <Panel title="Facts">
            <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 text-sm" data-testid="facts">
              {facts.map(([k, v]) => (
                <div key={k} className="contents">
                  <dt className="text-slate-500">{k}</dt>
                  <dd className="min-w-0 text-slate-800">{v}</dd>
                </div>
              ))}
            </dl>
          </Panel>

          <Panel title="Audit trail" bodyClass="">
            {audit.length === 0 ? (
              <Empty title="No operator action yet" />
            ) : (
              <ul className="divide-y divide-slate-100" aria-label="Audit trail">
                {audit.map((a, i) => (
                  <li key={i} className="px-4 py-2.5 text-sm">
                    <div className="flex items-center justify-between gap-2">
                      <span className="font-medium text-slate-900">{a.action}</span>
                      <RelTime iso={a.at} className="text-xs text-slate-500" />
                    </div>
                    <div className="text-xs text-slate-500">by {a.actor}</div>
                    {a.reason ? (
                      <p className="mt-1 rounded bg-slate-50 px-2 py-1 text-slate-700">“{a.reason}”</p>
                    ) : null}
                    {a.edit ? <EditChange edit={a.edit} /> : null}
                  </li>
                ))}
              </ul>
            )}
          </Panel>

          <Panel title={`Callback deliveries (${callbacks.length})`} bodyClass="">
            {callbacks.length === 0 ? (
              <Empty title={c.callbackUrl ? "Nothing delivered yet" : "No callback URL"}>
                {c.callbackUrl ? "The caller is notified when the command reaches a final state." : null}
              </Empty>
            ) : (
              <ul className="divide-y divide-slate-100" aria-label="Callback deliveries">
                {callbacks.map((b) => (
                  <li key={b.id} className="px-4 py-2.5 text-sm" aria-label={`Notification of ${b.status}`}>
                    <div className="flex items-center justify-between gap-2">
                      <span className="text-xs font-medium text-slate-800">
                        Notification of{" "}
                        <span
                          className={`rounded px-1.5 py-0.5 ${b.deliveredAt ? "bg-emerald-50 text-emerald-700" : "bg-amber-50 text-amber-800"}`}
                        >
                          {b.status}
                        </span>
                      </span>
                      <span className="text-xs text-slate-500">
                        {b.attempts} {b.attempts === 1 ? "try" : "tries"}
                        {b.lastStatus ? ` · HTTP ${b.lastStatus}` : ""}
                      </span>
                    </div>
                    <p className="mt-1 break-all font-mono text-xs text-slate-600">{b.url}</p>
                    <p className="mt-0.5 text-xs text-slate-500">
                      {b.deliveredAt ? (
                        <>
                          delivered <RelTime iso={b.deliveredAt} />
                        </>
                      ) : b.tries.some((x) => x.inProgress) ? (
                        <>sending now</>
                      ) : b.nextAt ? (
                        <>
                          next try <RelTime iso={b.nextAt} />
                        </>
                      ) : (
                        <>given up</>
                      )}
                    </p>
                    {b.tries.length > 0 ? (
                      <ol className="mt-1.5 space-y-0.5 text-xs text-slate-600">
                        {b.tries.map((x) => (
                          <li key={x.number}>
                            try {x.number}:{" "}
                            {x.inProgress
                              ? "sending"
                              : x.outcome === "success"
                                ? "delivered"
                                : x.outcome
                                  ? "not delivered"
                                  : "no result"}
                            {x.httpStatus ? ` · HTTP ${x.httpStatus}` : ""}
                            {x.startedAt ? <span className="text-slate-400"> · {fmtTime(x.startedAt)}</span> : null}
                            {x.error && x.error !== `HTTP ${x.httpStatus}` ? (
                              <span className="text-red-700"> · {x.error}</span>
                            ) : null}
                          </li>
                        ))}
                      </ol>
                    ) : null}
                  </li>
                ))}
              </ul>
            )}
          </Panel>
        </div>
      </div>
    </>
  );
}

const ATTEMPT_MEANS =
  "Attempts are the requests made to the backend for this command (execute, reconcile, poll, compensate), numbered in the order they were made." +
  " Upstream notifications are under Callback deliveries.";
const TRY_MEANS =
  "Tries count against the retry limit (maxAttempts): an execute, a compensate, a reconcile that could not tell, an expired lease." +
  " A reconcile that finds the command never arrived, polls, and attempts cut short by a shutdown use none;" +
  " an operator's retry starts a new round.";

/** Finished attempts (the command's attemptCount), and the one a worker is making. */
function attemptsLabel(finished: number, inProgress: unknown) {
  return `${finished}${inProgress ? " + 1 in progress" : ""}`;
}

/** How long the attempt in progress has run: as of the read, counted on between refreshes. */
function Elapsed({ ms, since }: { ms: number; since: number }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(t);
  }, []);
  const s = Math.floor((ms + Math.max(0, now - since)) / 1000);
  const text =
    s < 60
      ? `${s} s`
      : s < 3600
        ? `${Math.floor(s / 60)} min ${s % 60} s`
        : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return (
    <span className="text-xs text-slate-500" data-testid="attempt-elapsed">
      {text} so far
    </span>
  );
}

/** An Edit & retry in the audit trail: the fields it changed, and the payload before and after (secrets masked). */
function EditChange({ edit }: { edit: { changed: string[]; payloadBefore?: unknown; payloadAfter?: unknown } }) {
  return (
    <details className="mt-1" data-testid="edit-change">
      <summary className="cursor-pointer text-xs text-slate-600 hover:text-slate-900">
        {edit.changed.length
          ? `Changed ${edit.changed.map((f) => f || "the payload").join(", ")}`
          : "Payload unchanged"}
        : before and after
      </summary>
      <div className="mt-1 space-y-1">
        <p className="text-xs font-medium text-slate-500">Before</p>
        <Json value={edit.payloadBefore} className="max-h-48" />
        <p className="text-xs font-medium text-slate-500">After</p>
        <Json value={edit.payloadAfter} className="max-h-48" />
      </div>
    </details>
  );
}

function BackLink() {
  return (
    <Link href="/commands" className="mb-3 inline-block text-sm text-slate-500 hover:text-slate-800">
      ← Commands
    </Link>
  );
}
