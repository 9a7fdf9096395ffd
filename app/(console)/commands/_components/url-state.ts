"use client";
import { useEffect, useMemo, useRef, useState } from "react";
import { useSearchParams } from "next/navigation";
import type { Filter } from "@/app/_components/actions";
import { STATES, type State } from "@/app/_components/ui";

export const RANGES: { value: string; label: string; ms?: number }[] = [
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
export type UrlState = {
  status: string[];
  type: string;
  q: string;
  range: string;
  from: string;
  to: string;
  /** DESIGN §7: only the commands of this ordering key. */
  orderingKey: string;
  cursor: string;
};

function readUrl(sp: URLSearchParams): UrlState {
  return {
    status: (sp.get("status") ?? "").split(",").filter(Boolean),
    type: sp.get("type") ?? "",
    q: sp.get("q") ?? "",
    range: sp.get("range") ?? "",
    from: sp.get("from") ?? "",
    to: sp.get("to") ?? "",
    orderingKey: sp.get("orderingKey") ?? "",
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
  if (u.orderingKey) sp.set("orderingKey", u.orderingKey);
  if (u.cursor) sp.set("cursor", u.cursor);
  return sp.size ? `?${sp.toString().replaceAll("%2C", ",")}` : "";
}

/**
 * Kept in the history entry beside the URL: the cursors of the pages before
 * this one (so Previous and the page number survive a reload), and whether the
 * entry was made by typing in the search box (typing on in the same search
 * replaces it rather than adding an entry per pause).
 */
export type EntryState = { conveyorPages?: string[] | null; conveyorTyping?: boolean };
const entry = (): EntryState => (typeof window === "undefined" ? {} : ((window.history.state ?? {}) as EntryState));

export type Go = (next: UrlState, how: "push" | "replace", state?: EntryState) => void;
export type SetFilter = (patch: Partial<UrlState>, how?: "push" | "replace", state?: EntryState) => void;

/** The list's state as the URL holds it, and the ways to change it (each a history entry, or in place of this one). */
export function useListUrl() {
  const searchParams = useSearchParams();
  const search = searchParams.toString();
  const url = useMemo(() => readUrl(new URLSearchParams(search)), [search]);
  const status = useMemo(() => url.status.filter(isState), [url.status]);
  const unknownStates = url.status.filter((s) => !isState(s));
  const range = RANGES.some((r) => r.value === url.range) ? url.range : "";

  /** Goes to the list as `next` describes it: a new history entry (Back returns here), or in place of this one. */
  const go: Go = (next, how, state = {}) => {
    const target = `${window.location.pathname}${toSearch(next)}`;
    if (target === window.location.pathname + window.location.search && how === "push") return;
    window.history[how === "push" ? "pushState" : "replaceState"](state, "", target);
  };
  /** A new filter starts again at the first page. */
  const setFilter: SetFilter = (patch, how = "push", state = {}) => go({ ...url, ...patch, cursor: "" }, how, state);

  return { search, url, status, unknownStates, range, go, setFilter };
}

/**
 * A text field of the filter (the search box, the ordering key) follows the
 * URL (Back, a link), and the URL follows the field after a pause in typing.
 */
export function useSearchText(q: string, setFilter: SetFilter, field: "q" | "orderingKey" = "q") {
  const [text, setText] = useState(q);
  const textRef = useRef(text);
  textRef.current = text;
  useEffect(() => {
    if (textRef.current.trim() !== q) setText(q);
  }, [q]);
  useEffect(() => {
    const t = setTimeout(() => {
      const v = text.trim();
      // Still typing the same search (it grows or shrinks): in place of its entry; another search: an entry of its own.
      const same = entry().conveyorTyping && q !== "" && v !== "" && (v.startsWith(q) || q.startsWith(v));
      if (v !== q) setFilter({ [field]: v }, same ? "replace" : "push", { conveyorTyping: true });
    }, 300);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text]);
  return [text, setText] as const;
}

/** The pages before this one, as this history entry remembers them; null when the page came from a link. */
export function useEarlierPages(search: string, cursor: string) {
  const [earlier, setEarlier] = useState<string[] | null>([]);
  useEffect(() => {
    const known = entry().conveyorPages;
    setEarlier(cursor ? (known ?? null) : []);
  }, [search, cursor]);
  const pageNo = cursor ? (earlier ? earlier.length + 1 : null) : 1;
  return { earlier, pageNo };
}

/** What the list asks the server for; "Last hour" and the like count back from `anchor`. */
export function toFilter(p: {
  status: State[];
  type: string;
  q: string;
  range: string;
  anchor: number;
  from: string;
  to: string;
  orderingKey: string;
}): Filter {
  const { status, type, q, range, anchor, from, to, orderingKey } = p;
  const f: Filter = {};
  if (status.length) f.status = status;
  if (type) f.type = type;
  if (q) f.q = q;
  if (orderingKey) f.orderingKey = orderingKey;
  const r = RANGES.find((x) => x.value === range);
  if (r?.ms) f.createdAfter = new Date(anchor - r.ms).toISOString();
  if (range === "custom") {
    if (from) f.createdAfter = localToIso(from);
    if (to) f.createdBefore = localToIso(to);
  }
  return f;
}
