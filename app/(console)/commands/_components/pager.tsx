"use client";
import { btn, fmtTime } from "@/app/_components/ui";
import type { Go, UrlState } from "./url-state";
import type { ListPage } from "./types";

/** Under a page of search results: how far back in the filter's commands this page read. */
export function SearchWindowNote({ searched }: { searched: NonNullable<ListPage["searched"]> }) {
  return (
    <p className="border-t border-slate-200 bg-amber-50/60 px-4 py-2 text-xs text-amber-900" role="status">
      A page of search results reads at most the {searched.window.toLocaleString()} newest commands of the filter: this
      one read those created back to {fmtTime(searched.to)}. &ldquo;Search older&rdquo; goes on from there.
    </p>
  );
}

/**
 * The page number and Previous / Next (or "Search older"): each page a history
 * entry that remembers the cursors of the pages before it (`earlier`, null when
 * the page came from a link).
 */
export function Pager(props: {
  url: UrlState;
  go: Go;
  earlier: string[] | null;
  pageNo: number | null;
  data: ListPage;
}) {
  const { url, go, earlier, pageNo, data } = props;
  const nextPage = () => {
    const c = data.nextCursor;
    if (c) go({ ...url, cursor: c }, "push", { conveyorPages: earlier ? [...earlier, url.cursor] : null });
  };
  const previousPage = () => {
    if (earlier?.length) go({ ...url, cursor: earlier.at(-1)! }, "push", { conveyorPages: earlier.slice(0, -1) });
    else go({ ...url, cursor: "" }, "push", { conveyorPages: [] });
  };
  return (
    <div className="flex items-center justify-between border-t border-slate-200 bg-slate-50 px-4 py-2.5 text-sm text-slate-600">
      <span>
        {pageNo ? `Page ${pageNo}` : "A later page"} · {data.items.length} shown
      </span>
      <div className="flex gap-2">
        <button type="button" className={btn.secondary} disabled={!url.cursor} onClick={previousPage}>
          {url.cursor && !earlier?.length ? "First page" : "Previous"}
        </button>
        <button type="button" className={btn.secondary} disabled={!data.nextCursor} onClick={nextPage}>
          {data.searched ? "Search older" : "Next"}
        </button>
      </div>
    </div>
  );
}
