"use client";
import { useMemo, useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import type { Target } from "@/app/_components/actions";
import { Empty, ErrorBox, fmtTime, Loading, PageHeader, type State } from "@/app/_components/ui";
import { toFilter, useEarlierPages, useListUrl, useSearchText } from "./_components/url-state";
import { ActiveFilters, FilterFields, StateTabs } from "./_components/filter-bar";
import { SelectionBar, useSelection } from "./_components/selection";
import { CommandsTable } from "./_components/commands-table";
import { Pager, SearchWindowNote } from "./_components/pager";

const PAGE = 50;

/**
 * The commands list. What it shows (the filters and the page) lives in the URL
 * (`./_components/url-state`); the filter bar, the selection bar, the table and
 * the pager are in `./_components`.
 */
export function CommandsList({
  canAct,
  batch,
}: {
  canAct: boolean;
  /** The list of one batch's commands (its page): filtered by it, its counts in the state tabs, no page header. */
  batch?: { id: string; counts: Record<State, number> };
}) {
  const trpc = useTRPC();
  const { search, url, status, unknownStates, range, go, setFilter } = useListUrl();
  const { type, from, to, q, orderingKey } = url;

  const [text, setText] = useSearchText(url.q, setFilter);
  const [keyText, setKeyText] = useSearchText(url.orderingKey, setFilter, "orderingKey");

  // "Last hour" and the like count back from when they were chosen (or the page opened).
  const [anchor, setAnchor] = useState(() => Date.now());

  const { earlier, pageNo } = useEarlierPages(search, url.cursor);

  const batchId = batch?.id;
  const filter = useMemo(
    () => ({ ...toFilter({ status, type, q, range, anchor, from, to, orderingKey }), ...(batchId ? { batchId } : {}) }),
    [status, type, q, range, anchor, from, to, orderingKey, batchId],
  );

  // A new filter starts with nothing selected.
  const { selected, allMatching, setAllMatching, clear, toggle, togglePage } = useSelection(JSON.stringify(filter));

  const cursor = url.cursor || undefined;
  const list = useQuery(
    trpc.commands.list.queryOptions(
      { ...filter, cursor, limit: PAGE },
      { refetchInterval: 3_000, placeholderData: keepPreviousData },
    ),
  );
  const allCounts = useQuery(trpc.commands.counts.queryOptions(undefined, { refetchInterval: 3_000, enabled: !batch }));
  const counts = batch ? { data: batch.counts } : allCounts;
  const types = useQuery(trpc.commands.types.queryOptions());

  const items = list.data?.items ?? [];
  const pageIds = items.map((i) => i.id);
  const allOnPage = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
  const total = counts.data ? Object.values(counts.data).reduce((a, b) => a + b, 0) : null;
  const target: Target = allMatching ? { filter } : { ids: [...selected] };
  const selCount = allMatching ? null : selected.size;
  // How many "all that match" is, said before the operator selects them (the server counts; the dialog counts again).
  const matching = useQuery(
    trpc.commands.countMatching.queryOptions(filter, {
      enabled: canAct && (allOnPage || allMatching),
      staleTime: 10_000,
    }),
  );
  const matchCount = matching.data?.total;

  return (
    <>
      {batch ? null : (
        <PageHeader title="Commands" subtitle="Every command Conveyor holds. The list refreshes every few seconds." />
      )}

      <StateTabs status={status} total={total} counts={counts.data} setFilter={setFilter} />

      <FilterFields
        url={url}
        range={range}
        text={text}
        setText={setText}
        keyText={keyText}
        setKeyText={setKeyText}
        types={types.data}
        setFilter={setFilter}
        go={go}
        onRangeChosen={() => setAnchor(Date.now())}
      />

      <ActiveFilters
        url={url}
        status={status}
        range={range}
        unknownStates={unknownStates}
        pageNo={pageNo}
        setText={setText}
        setKeyText={setKeyText}
        setFilter={setFilter}
      />

      {canAct && (selected.size > 0 || allMatching) ? (
        <SelectionBar
          allMatching={allMatching}
          allOnPage={allOnPage}
          selCount={selCount}
          matchCount={matchCount}
          target={target}
          onSelectAllMatching={() => setAllMatching(true)}
          onClear={clear}
        />
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
              ? `None of the ${list.data.searched.window.toLocaleString()} newest commands of this filter` +
                ` (created back to ${fmtTime(list.data.searched.to)}) matches.` +
                ` "Search older" reads the next ones.`
              : Object.keys(filter).length > (batch ? 1 : 0)
                ? "Try another state, a wider time range, or clear the filters."
                : "Commands appear here as soon as a client submits them."}
          </Empty>
        ) : (
          <CommandsTable
            items={items}
            canAct={canAct}
            selected={selected}
            allMatching={allMatching}
            allOnPage={allOnPage}
            onToggle={toggle}
            onTogglePage={() => togglePage(pageIds, allOnPage)}
          />
        )}
        {list.data?.searched && items.length > 0 ? <SearchWindowNote searched={list.data.searched} /> : null}
        {list.data && (url.cursor || list.data.nextCursor) ? (
          <Pager url={url} go={go} earlier={earlier} pageNo={pageNo} data={list.data} />
        ) : null}
      </div>
      {list.error && list.data ? (
        <p className="mt-2 text-xs text-amber-700">Refreshing failed; showing the last answer. {list.error.message}</p>
      ) : null}
    </>
  );
}
