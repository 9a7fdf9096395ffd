"use client";
import { btn, input, label, STATE_LABEL, STATES, type State } from "@/app/_components/ui";
import { RANGES, type Go, type SetFilter, type UrlState } from "./url-state";
import type { Counts } from "./types";
import { cx } from "@/app/_components/cx";

/** The state tabs: one tab per state, with its count; with Ctrl, ⌘ or Shift a click adds the state to those shown (or takes it out). */
export function StateTabs({
  status,
  total,
  counts,
  setFilter,
}: {
  status: State[];
  total: number | null;
  counts: Counts | undefined;
  setFilter: SetFilter;
}) {
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
          if (value && (e.ctrlKey || e.metaKey || e.shiftKey))
            setFilter({ status: on ? status.filter((s) => s !== value) : [...status, value] });
          else setFilter({ status: value ? [value] : [] });
        }}
        className={cx(
          "flex items-center gap-1.5 whitespace-nowrap rounded-lg px-2.5 py-1.5 text-sm font-medium",
          on ? "bg-slate-900 text-white shadow-sm" : "text-slate-600 hover:bg-slate-200/60 hover:text-slate-900",
        )}
      >
        {name}
        {n !== undefined && n !== null ? (
          <span
            className={cx(
              "rounded-full px-1.5 text-xs tabular-nums",
              on
                ? "bg-white/20 text-white"
                : value === "exception" && n > 0
                  ? "bg-red-100 text-red-700"
                  : value === "failed" && n > 0
                    ? "bg-orange-100 text-orange-700"
                    : "bg-slate-200/70 text-slate-600",
            )}
          >
            {n.toLocaleString()}
          </span>
        ) : null}
      </button>
    );
  };

  return (
    <div
      role="tablist"
      aria-label="State"
      aria-multiselectable={status.length > 1 || undefined}
      className="mb-4 flex flex-wrap gap-1 rounded-xl border border-slate-200 bg-slate-100/70 p-1"
    >
      {tab(null, "All", total)}
      {STATES.map((s) => tab(s, STATE_LABEL[s], counts?.[s]))}
    </div>
  );
}

/** The search box, the type, time range and ordering key, Clear filters, and the custom range's From / To. */
export function FilterFields(props: {
  url: UrlState;
  range: string;
  text: string;
  setText: (text: string) => void;
  keyText: string;
  setKeyText: (text: string) => void;
  types: string[] | undefined;
  setFilter: SetFilter;
  go: Go;
  onRangeChosen: () => void;
}) {
  const { url, range, text, setText, keyText, setKeyText, types, setFilter, go, onRangeChosen } = props;
  const { type, from, to } = url;
  return (
    <div className="mb-4 grid gap-3 sm:grid-cols-2 lg:grid-cols-[minmax(16rem,2fr)_minmax(10rem,1fr)_minmax(10rem,1fr)_minmax(10rem,1fr)_auto]">
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
          {(types ?? (type ? [type] : [])).map((t) => (
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
            onRangeChosen();
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
      <div>
        <label htmlFor="cmd-ordering-key" className={label}>
          Ordering key
        </label>
        <input
          id="cmd-ordering-key"
          type="search"
          value={keyText}
          onChange={(e) => setKeyText(e.target.value)}
          placeholder="Exact key"
          title="Only the commands of this ordering key (they run one at a time, in the order received)"
          className={input}
        />
      </div>
      <div className="flex items-end">
        <button
          type="button"
          className={btn.secondary}
          disabled={!url.status.length && !type && !text && !url.range && !url.cursor && !keyText && !url.orderingKey}
          onClick={() => {
            setText("");
            setKeyText("");
            go({ status: [], type: "", q: "", range: "", from: "", to: "", orderingKey: "", cursor: "" }, "push");
          }}
        >
          Clear filters
        </button>
      </div>
      {range === "custom" ? (
        <div className="flex flex-wrap gap-3 sm:col-span-2 lg:col-span-5">
          <div>
            <label htmlFor="cmd-from" className={label}>
              From
            </label>
            <input
              id="cmd-from"
              type="datetime-local"
              value={from}
              onChange={(e) => setFilter({ from: e.target.value }, "replace")}
              className={input}
            />
          </div>
          <div>
            <label htmlFor="cmd-to" className={label}>
              To
            </label>
            <input
              id="cmd-to"
              type="datetime-local"
              value={to}
              onChange={(e) => setFilter({ to: e.target.value }, "replace")}
              className={input}
            />
          </div>
        </div>
      ) : null}
    </div>
  );
}

/** What the URL filters on, each removable on its own, the page, and the states a link named that Conveyor does not have. */
export function ActiveFilters(props: {
  url: UrlState;
  status: State[];
  range: string;
  unknownStates: string[];
  pageNo: number | null;
  setText: (text: string) => void;
  setKeyText: (text: string) => void;
  setFilter: SetFilter;
}) {
  const { url, status, range, unknownStates, pageNo, setText, setKeyText, setFilter } = props;
  const { type, q, from, to, orderingKey } = url;
  const chips: { key: string; text: string; remove: () => void }[] = [
    ...status.map((s) => ({
      key: `status-${s}`,
      text: `State: ${STATE_LABEL[s]}`,
      remove: () => setFilter({ status: status.filter((x) => x !== s) }),
    })),
    ...(type ? [{ key: "type", text: `Type: ${type}`, remove: () => setFilter({ type: "" }) }] : []),
    ...(q ? [{ key: "q", text: `Text: ${q}`, remove: () => (setText(""), setFilter({ q: "" })) }] : []),
    ...(orderingKey
      ? [
          {
            key: "orderingKey",
            text: `Ordering key: ${orderingKey}`,
            remove: () => (setKeyText(""), setFilter({ orderingKey: "" })),
          },
        ]
      : []),
    ...(range && range !== "custom"
      ? [
          {
            key: "range",
            text: `Created: ${RANGES.find((r) => r.value === range)!.label.toLowerCase()}`,
            remove: () => setFilter({ range: "" }),
          },
        ]
      : []),
    ...(range === "custom" && (from || to)
      ? [
          {
            key: "range",
            text: `Created: ${from ? `from ${from.replace("T", " ")}` : ""}${from && to ? " " : ""}${to ? `until ${to.replace("T", " ")}` : ""}`,
            remove: () => setFilter({ range: "", from: "", to: "" }),
          },
        ]
      : []),
  ];

  if (!(chips.length || unknownStates.length || url.cursor)) return null;
  return (
    <div className="mb-3 flex flex-wrap items-center gap-2 text-sm" role="group" aria-label="Active filters">
      <span className="text-xs font-medium text-slate-500">Showing</span>
      {chips.map((c) => (
        <span
          key={c.key}
          className={cx(
            "inline-flex items-center gap-1 rounded-full border border-slate-300 bg-white py-0.5 pl-2.5 pr-1",
            "text-xs font-medium text-slate-700 shadow-sm",
          )}
        >
          {c.text}
          <button
            type="button"
            onClick={c.remove}
            aria-label={`Remove ${c.text}`}
            className="rounded-full px-1 text-slate-400 hover:bg-slate-100 hover:text-slate-700"
          >
            ×
          </button>
        </span>
      ))}
      {!chips.length ? <span className="text-xs text-slate-600">all commands</span> : null}
      {url.cursor ? (
        <span className="text-xs text-slate-600">
          · {pageNo ? `page ${pageNo}` : "a later page (opened from a link)"}
        </span>
      ) : null}
      {unknownStates.length ? (
        <span role="alert" className="text-xs text-amber-700">
          The link names {unknownStates.length === 1 ? "a state" : "states"} Conveyor does not have, left out:{" "}
          {unknownStates.join(", ")}
        </span>
      ) : null}
    </div>
  );
}
