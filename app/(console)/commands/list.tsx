"use client";
import { useEffect, useMemo, useRef, useState } from "react";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { ActionButtons, matchingPhrase, type Filter, type Target } from "@/app/_components/actions";
import { MAX_ACTION_TARGETS } from "@/server/engine/actions";
import { btn, Empty, ErrorBox, fmtTime, input, label, Loading, PageHeader, RelTime, StatusBadge, STATE_LABEL, STATES, type State } from "@/app/_components/ui";


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

/**
 * Everything that decides what the list shows lives in the URL (a link, a
 * reload or Back shows the same thing): the filters, and `cursor`, the page.
 * `status` is comma-separated (`?status=exception,failed`, the link alert
 * emails send).
 */
type UrlState = { status: string[]; type: string; q: string; range: string; from: string; to: string; cursor: string };

function readUrl(sp: URLSearchParams): UrlState {
  return {
    status: (sp.get("status") ?? "").split(",").filter(Boolean),
    type: sp.get("type") ?? "",
    q: sp.get("q") ?? "",
    range: sp.get("range") ?? "",
    from: sp.get("from") ?? "",
    to: sp.get("to") ?? "",
    cursor: sp.get("cursor") ?? "",
  };
}

function toSearch(u: UrlState): string {
  const sp = new URLSearchParams();
  if (u.status.length) sp.set("status", u.status.join(","));
  if (u.type) sp.set("type", u.type);
  if (u.q) sp.set("q", u.q);
  if (u.range) sp.set("range", u.range);
  if (u.range === "custom" && u.from) sp.set("from", u.from);
  if (u.range === "custom" && u.to) sp.set("to", u.to);
  if (u.cursor) sp.set("cursor", u.cursor);
  return sp.size ? `?${sp.toString().replaceAll("%2C", ",")}` : "";
}

/**
 * Kept in the history entry beside the URL: the cursors of the pages before
 * this one (so Previous and the page number survive a reload), and whether the
 * entry was made by typing in the search box (typing on in the same search
 * replaces it rather than adding an entry per pause).
 */
type EntryState = { conveyorPages?: string[] | null; conveyorTyping?: boolean };
const entry = (): EntryState => (typeof window === "undefined" ? {} : ((window.history.state ?? {}) as EntryState));

export function CommandsList({ canAct }: { canAct: boolean }) {
  const trpc = useTRPC();
  const searchParams = useSearchParams();
  const search = searchParams.toString();
  const url = useMemo(() => readUrl(new URLSearchParams(search)), [search]);
  const status = useMemo(() => url.status.filter(isState), [url.status]);
  const unknownStates = url.status.filter((s) => !isState(s));
  const range = RANGES.some((r) => r.value === url.range) ? url.range : "";
  const { type, from, to, q } = url;

  /** Goes to the list as `next` describes it: a new history entry (Back returns here), or in place of this one. */
  const go = (next: UrlState, how: "push" | "replace", state: EntryState = {}) => {
    const target = `${window.location.pathname}${toSearch(next)}`;
    if (target === window.location.pathname + window.location.search && how === "push") return;
    window.history[how === "push" ? "pushState" : "replaceState"](state, "", target);
  };
  /** A new filter starts again at the first page. */
  const setFilter = (patch: Partial<UrlState>, how: "push" | "replace" = "push", state: EntryState = {}) => go({ ...url, ...patch, cursor: "" }, how, state);

  // The search box follows the URL (Back, a link), and the URL follows the box after a pause in typing.
  const [text, setText] = useState(url.q);
  const textRef = useRef(text);
  textRef.current = text;
  useEffect(() => {
    if (textRef.current.trim() !== url.q) setText(url.q);
  }, [url.q]);
  useEffect(() => {
    const t = setTimeout(() => {
      const v = text.trim();
      // Still typing the same search (it grows or shrinks): in place of its entry; another search: an entry of its own.
      const same = entry().conveyorTyping && url.q !== "" && v !== "" && (v.startsWith(url.q) || url.q.startsWith(v));
      if (v !== url.q) setFilter({ q: v }, same ? "replace" : "push", { conveyorTyping: true });
    }, 300);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text]);

  // "Last hour" and the like count back from when they were chosen (or the page opened).
  const [anchor, setAnchor] = useState(() => Date.now());

  // The pages before this one, as this history entry remembers them; null when the page came from a link.
  const [earlier, setEarlier] = useState<string[] | null>([]);
  useEffect(() => {
    const known = entry().conveyorPages;
    setEarlier(url.cursor ? (known ?? null) : []);
  }, [search, url.cursor]);

  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [allMatching, setAllMatching] = useState(false);

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

  // A new filter starts with nothing selected.
  const filterKey = JSON.stringify(filter);
  useEffect(() => {
    setSelected(new Set());
    setAllMatching(false);
  }, [filterKey]);

  const cursor = url.cursor || undefined;
  const list = useQuery(trpc.commands.list.queryOptions({ ...filter, cursor, limit: PAGE }, { refetchInterval: 3_000, placeholderData: keepPreviousData }));
  const pageNo = url.cursor ? (earlier ? earlier.length + 1 : null) : 1;
  const nextPage = () => {
    const c = list.data?.nextCursor;
    if (c) go({ ...url, cursor: c }, "push", { conveyorPages: earlier ? [...earlier, url.cursor] : null });
  };
  const previousPage = () => {
    if (earlier?.length) go({ ...url, cursor: earlier.at(-1)! }, "push", { conveyorPages: earlier.slice(0, -1) });
    else go({ ...url, cursor: "" }, "push", { conveyorPages: [] });
  };
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

  /** A tab shows one state; with Ctrl, ⌘ or Shift a click adds the state to those shown (or takes it out). */
  const tab = (value: State | null, name: string, n: number | null | undefined) => {
    const on = value === null ? status.length === 0 : status.includes(value);
    return (
      <button
        key={name}
        type="button"
        role="tab"
        aria-selected={on}
        title={value ? "Ctrl-click (⌘ or Shift) to add this state to the ones shown" : undefined}
        onClick={(e) => {
          if (value && (e.ctrlKey || e.metaKey || e.shiftKey)) setFilter({ status: on ? status.filter((s) => s !== value) : [...status, value] });
          else setFilter({ status: value ? [value] : [] });
        }}
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

  // What the URL filters on, each removable on its own.
  const chips: { key: string; text: string; remove: () => void }[] = [
    ...status.map((s) => ({ key: `status-${s}`, text: `State: ${STATE_LABEL[s]}`, remove: () => setFilter({ status: status.filter((x) => x !== s) }) })),
    ...(type ? [{ key: "type", text: `Type: ${type}`, remove: () => setFilter({ type: "" }) }] : []),
    ...(q ? [{ key: "q", text: `Text: ${q}`, remove: () => (setText(""), setFilter({ q: "" })) }] : []),
    ...(range && range !== "custom" ? [{ key: "range", text: `Created: ${RANGES.find((r) => r.value === range)!.label.toLowerCase()}`, remove: () => setFilter({ range: "" }) }] : []),
    ...(range === "custom" && (from || to)
      ? [{ key: "range", text: `Created: ${from ? `from ${from.replace("T", " ")}` : ""}${from && to ? " " : ""}${to ? `until ${to.replace("T", " ")}` : ""}`, remove: () => setFilter({ range: "", from: "", to: "" }) }]
      : []),
  ];

  return (
    <>
      <PageHeader title="Commands" subtitle="Every command Conveyor holds. The list refreshes every few seconds." />

      <div role="tablist" aria-label="State" aria-multiselectable={status.length > 1 || undefined} className="mb-4 flex flex-wrap gap-1 rounded-xl border border-slate-200 bg-slate-100/70 p-1">
        {tab(null, "All", total)}
        {STATES.map((s) => tab(s, STATE_LABEL[s], counts.data?.[s]))}
      </div>

      <div className="mb-4 grid gap-3 sm:grid-cols-2 lg:grid-cols-[minmax(16rem,2fr)_minmax(10rem,1fr)_minmax(10rem,1fr)_auto]">
        <div>
          <label htmlFor="cmd-search" className={label}>
            Search
          </label>
          <input
            id="cmd-search"
            type="search"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="Id, idempotency key, payload, failure or error text"
            title="Every word must appear (in any case) in the command's id, idempotency key, payload, failure or error"
            className={input}
          />
        </div>
        <div>
          <label htmlFor="cmd-type" className={label}>
            Type
          </label>
          <select id="cmd-type" value={type} onChange={(e) => setFilter({ type: e.target.value })} className={input}>
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
              setAnchor(Date.now());
              setFilter({ range: e.target.value });
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
            disabled={!url.status.length && !type && !text && !url.range && !url.cursor}
            onClick={() => {
              setText("");
              go({ status: [], type: "", q: "", range: "", from: "", to: "", cursor: "" }, "push");
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
              <input id="cmd-from" type="datetime-local" value={from} onChange={(e) => setFilter({ from: e.target.value }, "replace")} className={input} />
            </div>
            <div>
              <label htmlFor="cmd-to" className={label}>
                To
              </label>
              <input id="cmd-to" type="datetime-local" value={to} onChange={(e) => setFilter({ to: e.target.value }, "replace")} className={input} />
            </div>
          </div>
        ) : null}
      </div>

      {chips.length || unknownStates.length || url.cursor ? (
        <div className="mb-3 flex flex-wrap items-center gap-2 text-sm" role="group" aria-label="Active filters">
          <span className="text-xs font-medium text-slate-500">Showing</span>
          {chips.map((c) => (
            <span key={c.key} className="inline-flex items-center gap-1 rounded-full border border-slate-300 bg-white py-0.5 pl-2.5 pr-1 text-xs font-medium text-slate-700 shadow-sm">
              {c.text}
              <button type="button" onClick={c.remove} aria-label={`Remove ${c.text}`} className="rounded-full px-1 text-slate-400 hover:bg-slate-100 hover:text-slate-700">
                ×
              </button>
            </span>
          ))}
          {!chips.length ? <span className="text-xs text-slate-600">all commands</span> : null}
          {url.cursor ? <span className="text-xs text-slate-600">· {pageNo ? `page ${pageNo}` : "a later page (opened from a link)"}</span> : null}
          {unknownStates.length ? (
            <span role="alert" className="text-xs text-amber-700">
              The link names {unknownStates.length === 1 ? "a state" : "states"} Conveyor does not have, left out: {unknownStates.join(", ")}
            </span>
          ) : null}
        </div>
      ) : null}

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
          <Empty title={list.data.searched ? "No match yet" : url.cursor ? "No more commands" : "No command matches"}>
            {list.data.searched
              ? `None of the ${list.data.searched.window.toLocaleString()} newest commands of this filter (created back to ${fmtTime(list.data.searched.to)}) matches. "Search older" reads the next ones.`
              : Object.keys(filter).length
                ? "Try another state, a wider time range, or clear the filters."
                : "Commands appear here as soon as a client submits them."}
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
                  <th className="px-3 py-2.5">Failure / last error</th>
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
                    <td className="max-w-[22rem] truncate px-3 py-2 text-xs text-red-700" title={c.failureSummary ?? undefined}>
                      {c.failureSummary ?? ""}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {list.data?.searched && items.length > 0 ? (
          <p className="border-t border-slate-200 bg-amber-50/60 px-4 py-2 text-xs text-amber-900" role="status">
            A page of search results reads at most the {list.data.searched.window.toLocaleString()} newest commands of the filter: this one read those created back to{" "}
            {fmtTime(list.data.searched.to)}. &ldquo;Search older&rdquo; goes on from there.
          </p>
        ) : null}
        {list.data && (url.cursor || list.data.nextCursor) ? (
          <div className="flex items-center justify-between border-t border-slate-200 bg-slate-50 px-4 py-2.5 text-sm text-slate-600">
            <span>
              {pageNo ? `Page ${pageNo}` : "A later page"} · {items.length} shown
            </span>
            <div className="flex gap-2">
              <button type="button" className={btn.secondary} disabled={!url.cursor} onClick={previousPage}>
                {url.cursor && !earlier?.length ? "First page" : "Previous"}
              </button>
              <button type="button" className={btn.secondary} disabled={!list.data.nextCursor} onClick={nextPage}>
                {list.data.searched ? "Search older" : "Next"}
              </button>
            </div>
          </div>
        ) : null}
      </div>
      {list.error && list.data ? <p className="mt-2 text-xs text-amber-700">Refreshing failed; showing the last answer. {list.error.message}</p> : null}
    </>
  );
}
