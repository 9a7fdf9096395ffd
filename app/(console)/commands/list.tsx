"use client";
import { useEffect, useMemo, useState } from "react";
import Link from "next/link";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { ActionButtons, matchingPhrase, type Filter, type Target } from "@/app/_components/actions";
import { MAX_ACTION_TARGETS } from "@/server/commands/action-rules";
import { btn, Empty, ErrorBox, input, label, Loading, PageHeader, RelTime, ShortId, StatusBadge, STATE_LABEL, STATES, type State } from "@/app/_components/ui";

export type InitialFilter = { status: string[]; type: string; q: string; range: string; from: string; to: string };

const PAGE = 50;
const RANGES: { value: string; label: string; ms?: number }[] = [
  { value: "", label: "Any time" },
  { value: "15m", label: "Last 15 minutes", ms: 15 * 60_000 },
  { value: "1h", label: "Last hour", ms: 3600_000 },
  { value: "24h", label: "Last 24 hours", ms: 86_400_000 },
  { value: "7d", label: "Last 7 days", ms: 7 * 86_400_000 },
  { value: "custom", label: "Custom range…" },
];

const isState = (s: string): s is State => (STATES as readonly string[]).includes(s);
const localToIso = (v: string) => (v ? new Date(v).toISOString() : undefined);

export function CommandsList({ initial, canAct }: { initial: InitialFilter; canAct: boolean }) {
  const trpc = useTRPC();
  const [status, setStatus] = useState<State[]>(initial.status.filter(isState));
  const [type, setType] = useState(initial.type);
  const [text, setText] = useState(initial.q);
  const [q, setQ] = useState(initial.q);
  const [range, setRange] = useState(RANGES.some((r) => r.value === initial.range) ? initial.range : "");
  const [anchor, setAnchor] = useState(() => Date.now());
  const [from, setFrom] = useState(initial.from);
  const [to, setTo] = useState(initial.to);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [allMatching, setAllMatching] = useState(false);

  // Debounced text search.
  useEffect(() => {
    const t = setTimeout(() => setQ(text.trim()), 300);
    return () => clearTimeout(t);
  }, [text]);

  const filter: Filter = useMemo(() => {
    const f: Filter = {};
    if (status.length) f.status = status;
    if (type) f.type = type;
    if (q) f.q = q;
    const r = RANGES.find((x) => x.value === range);
    if (r?.ms) f.createdAfter = new Date(anchor - r.ms).toISOString();
    if (range === "custom") {
      if (from) f.createdAfter = localToIso(from);
      if (to) f.createdBefore = localToIso(to);
    }
    return f;
  }, [status, type, q, range, anchor, from, to]);

  // A new filter starts again at the first page, with nothing selected; the URL follows.
  const filterKey = JSON.stringify(filter);
  useEffect(() => {
    setCursors([undefined]);
    setSelected(new Set());
    setAllMatching(false);
    const sp = new URLSearchParams();
    if (status.length) sp.set("status", status.join(","));
    if (type) sp.set("type", type);
    if (q) sp.set("q", q);
    if (range) sp.set("range", range);
    if (range === "custom" && from) sp.set("from", from);
    if (range === "custom" && to) sp.set("to", to);
    const url = `${window.location.pathname}${sp.size ? `?${sp}` : ""}`;
    if (url !== window.location.pathname + window.location.search) window.history.replaceState(window.history.state, "", url);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filterKey]);

  const cursor = cursors.at(-1);
  const list = useQuery(trpc.commands.list.queryOptions({ ...filter, cursor, limit: PAGE }, { refetchInterval: 3_000, placeholderData: keepPreviousData }));
  const counts = useQuery(trpc.commands.counts.queryOptions(undefined, { refetchInterval: 3_000 }));
  const types = useQuery(trpc.commands.types.queryOptions());

  const items = list.data?.items ?? [];
  const pageIds = items.map((i) => i.id);
  const allOnPage = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
  const total = counts.data ? Object.values(counts.data).reduce((a, b) => a + b, 0) : null;
  const target: Target = allMatching ? { filter } : { ids: [...selected] };
  const selCount = allMatching ? null : selected.size;
  // How many "all that match" is, said before the operator selects them (the server counts; the dialog counts again).
  const matching = useQuery(trpc.commands.countMatching.queryOptions(filter, { enabled: canAct && (allOnPage || allMatching), staleTime: 10_000 }));
  const matchCount = matching.data?.total;

  const toggle = (id: string) => {
    setAllMatching(false);
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  };
  const togglePage = () => {
    setAllMatching(false);
    setSelected((s) => {
      const n = new Set(s);
      if (allOnPage) for (const id of pageIds) n.delete(id);
      else for (const id of pageIds) n.add(id);
      return n;
    });
  };

  const tab = (value: State | null, name: string, n: number | null | undefined) => {
    const on = value === null ? status.length === 0 : status.length === 1 && status[0] === value;
    return (
      <button
        key={name}
        type="button"
        role="tab"
        aria-selected={on}
        onClick={() => setStatus(value ? [value] : [])}
        className={`flex items-center gap-1.5 whitespace-nowrap rounded-lg px-2.5 py-1.5 text-sm font-medium ${on ? "bg-slate-900 text-white shadow-sm" : "text-slate-600 hover:bg-slate-200/60 hover:text-slate-900"}`}
      >
        {name}
        {n !== undefined && n !== null ? (
          <span className={`rounded-full px-1.5 text-xs tabular-nums ${on ? "bg-white/20 text-white" : value === "exception" && n > 0 ? "bg-red-100 text-red-700" : value === "failed" && n > 0 ? "bg-orange-100 text-orange-700" : "bg-slate-200/70 text-slate-600"}`}>
            {n.toLocaleString()}
          </span>
        ) : null}
      </button>
    );
  };

  return (
    <>
      <PageHeader title="Commands" subtitle="Every command Conveyor holds. The list refreshes every few seconds." />

      <div role="tablist" aria-label="State" className="mb-4 flex flex-wrap gap-1 rounded-xl border border-slate-200 bg-slate-100/70 p-1">
        {tab(null, "All", total)}
        {STATES.map((s) => tab(s, STATE_LABEL[s], counts.data?.[s]))}
      </div>

      <div className="mb-4 grid gap-3 sm:grid-cols-2 lg:grid-cols-[minmax(16rem,2fr)_minmax(10rem,1fr)_minmax(10rem,1fr)_auto]">
        <div>
          <label htmlFor="cmd-search" className={label}>
            Search
          </label>
          <input id="cmd-search" type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="Command id, idempotency key, payload or error text" className={input} />
        </div>
        <div>
          <label htmlFor="cmd-type" className={label}>
            Type
          </label>
          <select id="cmd-type" value={type} onChange={(e) => setType(e.target.value)} className={input}>
            <option value="">All types</option>
            {(types.data ?? (type ? [type] : [])).map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="cmd-range" className={label}>
            Created
          </label>
          <select
            id="cmd-range"
            value={range}
            onChange={(e) => {
              setRange(e.target.value);
              setAnchor(Date.now());
            }}
            className={input}
          >
            {RANGES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        <div className="flex items-end">
          <button
            type="button"
            className={btn.secondary}
            disabled={!status.length && !type && !text && !range}
            onClick={() => {
              setStatus([]);
              setType("");
              setText("");
              setQ("");
              setRange("");
              setFrom("");
              setTo("");
            }}
          >
            Clear filters
          </button>
        </div>
        {range === "custom" ? (
          <div className="flex flex-wrap gap-3 sm:col-span-2 lg:col-span-4">
            <div>
              <label htmlFor="cmd-from" className={label}>
                From
              </label>
              <input id="cmd-from" type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} className={input} />
            </div>
            <div>
              <label htmlFor="cmd-to" className={label}>
                To
              </label>
              <input id="cmd-to" type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} className={input} />
            </div>
          </div>
        ) : null}
      </div>

      {canAct && (selected.size > 0 || allMatching) ? (
        <div className="mb-3 flex flex-wrap items-center gap-3 rounded-xl border border-sky-200 bg-sky-50 px-4 py-2.5" aria-label="Selection">
          <span className="text-sm font-medium text-sky-900" data-testid="selection-count">
            {allMatching
              ? matchCount === undefined
                ? "All commands that match this filter are selected (counting…)"
                : `${matchCount === 1 ? "The 1 command that matches this filter is selected" : `All ${matchCount.toLocaleString()} commands that match this filter are selected`}${matchCount > MAX_ACTION_TARGETS ? ` (an action takes the newest ${MAX_ACTION_TARGETS.toLocaleString()})` : ""}`
              : `${selCount} selected`}
          </span>
          {!allMatching && allOnPage ? (
            <button type="button" className={btn.link} onClick={() => setAllMatching(true)}>
              {matchCount === undefined ? "Select all that match this filter (counting…)" : `Select all ${matchCount.toLocaleString()} that match this filter`}
            </button>
          ) : null}
          <button
            type="button"
            className={btn.link}
            onClick={() => {
              setSelected(new Set());
              setAllMatching(false);
            }}
          >
            Clear selection
          </button>
          <div className="ml-auto">
            <ActionButtons target={target} what={allMatching ? matchingPhrase(matchCount, MAX_ACTION_TARGETS) : `${selCount} selected command${selCount === 1 ? "" : "s"}`} size="sm" onDone={() => { setSelected(new Set()); setAllMatching(false); }} />
          </div>
        </div>
      ) : null}

      <div className="overflow-hidden rounded-xl border border-slate-200 bg-white shadow-sm">
        {list.error && !list.data ? (
          <div className="p-4">
            <ErrorBox error={list.error} title="Could not load commands" onRetry={() => list.refetch()} />
          </div>
        ) : !list.data ? (
          <Loading label="Loading commands…" />
        ) : items.length === 0 ? (
          <Empty title={cursors.length > 1 ? "No more commands" : "No command matches"}>
            {Object.keys(filter).length ? "Try another state, a wider time range, or clear the filters." : "Commands appear here as soon as a client submits them."}
          </Empty>
        ) : (
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm">
              <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
                <tr>
                  {canAct ? (
                    <th className="w-10 py-2.5 pl-4">
                      <input type="checkbox" aria-label="Select all on this page" checked={allOnPage} onChange={togglePage} className="h-4 w-4 rounded border-slate-300" />
                    </th>
                  ) : null}
                  <th className="px-3 py-2.5">Command</th>
                  <th className="px-3 py-2.5">Type</th>
                  <th className="px-3 py-2.5">State</th>
                  <th className="px-3 py-2.5 text-right" title="Requests made to the backend (execute, reconcile, poll, compensate); upstream callbacks are not counted">Attempts</th>
                  <th className="px-3 py-2.5">Idempotency key</th>
                  <th className="px-3 py-2.5">Created</th>
                  <th className="px-3 py-2.5">Updated</th>
                  <th className="px-3 py-2.5">Last error</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {items.map((c) => (
                  <tr key={c.id} className={`hover:bg-slate-50 ${selected.has(c.id) || allMatching ? "bg-sky-50/60" : ""}`}>
                    {canAct ? (
                      <td className="py-2 pl-4">
                        <input type="checkbox" aria-label={`Select ${c.id}`} checked={allMatching || selected.has(c.id)} onChange={() => toggle(c.id)} className="h-4 w-4 rounded border-slate-300" />
                      </td>
                    ) : null}
                    <td className="px-3 py-2">
                      <Link href={`/commands/${c.id}`} className="font-mono text-xs text-sky-700 hover:text-sky-900 hover:underline" title={c.id}>
                        {c.id.slice(0, 8)}
                      </Link>
                    </td>
                    <td className="px-3 py-2 text-slate-700">{c.type}</td>
                    <td className="px-3 py-2">
                      <StatusBadge status={c.status} />
                    </td>
                    <td className="whitespace-nowrap px-3 py-2 text-right tabular-nums text-slate-600">
                      {c.attemptCount}
                      {c.worker ? " " : null}
                      {c.worker ? <span className="text-xs text-blue-700" title={`An attempt is in progress on ${c.worker}`}>+ 1 in progress</span> : null}
                    </td>
                    <td className="max-w-[14rem] truncate px-3 py-2 font-mono text-xs text-slate-500" title={c.idempotencyKey ?? undefined}>
                      {c.idempotencyKey ?? <span className="text-slate-300">—</span>}
                    </td>
                    <td className="whitespace-nowrap px-3 py-2 text-slate-500">
                      <RelTime iso={c.createdAt} />
                    </td>
                    <td className="whitespace-nowrap px-3 py-2 text-slate-500">
                      <RelTime iso={c.updatedAt} />
                    </td>
                    <td className="max-w-[22rem] truncate px-3 py-2 text-xs text-red-700" title={c.error ?? undefined}>
                      {c.error ?? ""}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {list.data && (cursors.length > 1 || list.data.nextCursor) ? (
          <div className="flex items-center justify-between border-t border-slate-200 bg-slate-50 px-4 py-2.5 text-sm text-slate-600">
            <span>
              Page {cursors.length} · {items.length} shown
            </span>
            <div className="flex gap-2">
              <button type="button" className={btn.secondary} disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
                Previous
              </button>
              <button type="button" className={btn.secondary} disabled={!list.data.nextCursor} onClick={() => list.data?.nextCursor && setCursors((c) => [...c, list.data!.nextCursor!])}>
                Next
              </button>
            </div>
          </div>
        ) : null}
      </div>
      {list.error && list.data ? <p className="mt-2 text-xs text-amber-700">Refreshing failed; showing the last answer. {list.error.message}</p> : null}
    </>
  );
}
