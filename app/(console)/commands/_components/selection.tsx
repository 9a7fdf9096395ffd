"use client";
import { useEffect, useState } from "react";
import { ActionButtons, matchingPhrase, type Target } from "@/app/_components/actions";
import { MAX_ACTION_TARGETS } from "@/server/engine/actions";
import { btn } from "@/app/_components/ui";

/** The commands ticked on the page, or "all that match the filter"; a new filter (`filterKey`) starts with nothing selected. */
export function useSelection(filterKey: string) {
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [allMatching, setAllMatching] = useState(false);

  useEffect(() => {
    setSelected(new Set());
    setAllMatching(false);
  }, [filterKey]);

  const clear = () => {
    setSelected(new Set());
    setAllMatching(false);
  };
  const toggle = (id: string) => {
    setAllMatching(false);
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  };
  /** Ticks every command of the page (`pageIds`), or unticks them when all are (`allOnPage`). */
  const togglePage = (pageIds: string[], allOnPage: boolean) => {
    setAllMatching(false);
    setSelected((s) => {
      const n = new Set(s);
      if (allOnPage) for (const id of pageIds) n.delete(id);
      else for (const id of pageIds) n.add(id);
      return n;
    });
  };
  return { selected, allMatching, setAllMatching, clear, toggle, togglePage };
}

/** The bar above the list while something is selected: how much, "Select all that match", Clear selection and the actions. */
export function SelectionBar(props: {
  allMatching: boolean;
  allOnPage: boolean;
  selCount: number | null;
  matchCount: number | undefined;
  target: Target;
  onSelectAllMatching: () => void;
  onClear: () => void;
}) {
  const { allMatching, allOnPage, selCount, matchCount, target, onSelectAllMatching, onClear } = props;
  return (
    <div
      className="mb-3 flex flex-wrap items-center gap-3 rounded-xl border border-sky-200 bg-sky-50 px-4 py-2.5"
      aria-label="Selection"
    >
      <span className="text-sm font-medium text-sky-900" data-testid="selection-count">
        {allMatching
          ? matchCount === undefined
            ? "All commands that match this filter are selected (counting…)"
            : (matchCount === 1
                ? "The 1 command that matches this filter is selected"
                : `All ${matchCount.toLocaleString()} commands that match this filter are selected`) +
              (matchCount > MAX_ACTION_TARGETS
                ? ` (an action takes the newest ${MAX_ACTION_TARGETS.toLocaleString()})`
                : "")
          : `${selCount} selected`}
      </span>
      {!allMatching && allOnPage ? (
        <button type="button" className={btn.link} onClick={onSelectAllMatching}>
          {matchCount === undefined
            ? "Select all that match this filter (counting…)"
            : `Select all ${matchCount.toLocaleString()} that match this filter`}
        </button>
      ) : null}
      <button type="button" className={btn.link} onClick={onClear}>
        Clear selection
      </button>
      <div className="ml-auto">
        <ActionButtons
          target={target}
          what={
            allMatching
              ? matchingPhrase(matchCount, MAX_ACTION_TARGETS)
              : `${selCount} selected command${selCount === 1 ? "" : "s"}`
          }
          size="sm"
          onDone={onClear}
        />
      </div>
    </div>
  );
}
