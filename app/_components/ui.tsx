"use client";
// Small shared pieces: status badges, panels, empty / loading / error states, times.
import { useEffect, useState } from "react";
import { TRPCClientError } from "@trpc/client";
import { STATES, type State } from "@/server/engine/states";
import { cx } from "./cx";
import { shortId } from "@/server/engine/short-id";

export { STATES, type State };

export const STATE_LABEL: Record<State, string> = {
  pending: "Pending",
  running: "Running",
  awaiting: "Awaiting",
  retrying: "Retrying",
  succeeded: "Succeeded",
  failed: "Failed",
  exception: "Exception",
  compensating: "Compensating",
  compensated: "Compensated",
  cancelled: "Cancelled",
};

// Literal class names (Tailwind scans the sources for them).
export const STATE_STYLE: Record<State, { badge: string; dot: string; bar: string }> = {
  pending: { badge: "bg-sky-50 text-sky-700 ring-sky-600/20", dot: "bg-sky-500", bar: "bg-sky-500" },
  running: { badge: "bg-blue-50 text-blue-700 ring-blue-600/20", dot: "bg-blue-500", bar: "bg-blue-500" },
  awaiting: { badge: "bg-indigo-50 text-indigo-700 ring-indigo-600/20", dot: "bg-indigo-500", bar: "bg-indigo-500" },
  retrying: { badge: "bg-amber-50 text-amber-800 ring-amber-600/25", dot: "bg-amber-500", bar: "bg-amber-500" },
  succeeded: {
    badge: "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
    dot: "bg-emerald-500",
    bar: "bg-emerald-500",
  },
  failed: { badge: "bg-orange-50 text-orange-800 ring-orange-600/25", dot: "bg-orange-500", bar: "bg-orange-500" },
  exception: { badge: "bg-red-50 text-red-700 ring-red-600/25", dot: "bg-red-600", bar: "bg-red-600" },
  compensating: {
    badge: "bg-violet-50 text-violet-700 ring-violet-600/20",
    dot: "bg-violet-500",
    bar: "bg-violet-500",
  },
  compensated: {
    badge: "bg-fuchsia-50 text-fuchsia-700 ring-fuchsia-600/20",
    dot: "bg-fuchsia-500",
    bar: "bg-fuchsia-500",
  },
  cancelled: { badge: "bg-slate-100 text-slate-600 ring-slate-500/20", dot: "bg-slate-400", bar: "bg-slate-400" },
};

const isState = (s: string): s is State => (STATES as readonly string[]).includes(s);

export function StatusBadge({ status }: { status: string }) {
  const st = isState(status) ? STATE_STYLE[status] : STATE_STYLE.cancelled;
  return (
    <span
      data-status={status}
      className={`inline-flex items-center gap-1.5 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset whitespace-nowrap ${st.badge}`}
    >
      <span className={`h-1.5 w-1.5 rounded-full ${st.dot}`} aria-hidden />
      {isState(status) ? STATE_LABEL[status] : status}
    </span>
  );
}

export function RoleBadge({ role }: { role: string }) {
  const cls =
    role === "admin"
      ? "bg-slate-900 text-white"
      : role === "operator"
        ? "bg-slate-200 text-slate-800"
        : "bg-white text-slate-600 ring-1 ring-inset ring-slate-300";
  return <span className={`rounded-full px-2 py-0.5 text-xs font-medium ${cls}`}>{role}</span>;
}

export function PageHeader({
  title,
  subtitle,
  children,
}: {
  title: string;
  subtitle?: React.ReactNode;
  children?: React.ReactNode;
}) {
  return (
    <div className="mb-6 flex flex-wrap items-end justify-between gap-4">
      <div className="min-w-0">
        <h1 className="text-xl font-semibold tracking-tight text-slate-900">{title}</h1>
        {subtitle ? <div className="mt-1 text-sm text-slate-500">{subtitle}</div> : null}
      </div>
      {children ? <div className="flex flex-wrap items-center gap-2">{children}</div> : null}
    </div>
  );
}

export function Panel({
  title,
  actions,
  children,
  className = "",
  bodyClass = "p-4",
}: {
  title?: React.ReactNode;
  actions?: React.ReactNode;
  children: React.ReactNode;
  className?: string;
  bodyClass?: string;
}) {
  return (
    <section className={`rounded-xl border border-slate-200 bg-white shadow-sm ${className}`}>
      {title ? (
        <header className="flex items-center justify-between gap-2 border-b border-slate-100 px-4 py-3">
          <h2 className="text-sm font-semibold text-slate-800">{title}</h2>
          {actions}
        </header>
      ) : null}
      <div className={bodyClass}>{children}</div>
    </section>
  );
}

export function Empty({ title, children }: { title: string; children?: React.ReactNode }) {
  return (
    <div className="flex flex-col items-center justify-center px-6 py-12 text-center">
      <div
        className="mb-3 flex h-10 w-10 items-center justify-center rounded-full bg-slate-100 text-slate-400"
        aria-hidden
      >
        <svg viewBox="0 0 20 20" className="h-5 w-5" fill="currentColor">
          <path d="M3 4a1 1 0 0 1 1-1h12a1 1 0 0 1 1 1v3H3V4Zm0 5h14v7a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9Zm5 2a1 1 0 1 0 0 2h4a1 1 0 1 0 0-2H8Z" />
        </svg>
      </div>
      <p className="text-sm font-medium text-slate-700">{title}</p>
      {children ? <div className="mt-1 max-w-md text-sm text-slate-500">{children}</div> : null}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="flex items-center justify-center gap-3 px-6 py-12 text-sm text-slate-500" role="status">
      <span className="h-4 w-4 animate-spin rounded-full border-2 border-slate-300 border-t-slate-600" aria-hidden />
      {label}
    </div>
  );
}

function errorText(err: unknown): { message: string; issues: string[] } {
  if (err instanceof TRPCClientError) {
    const data = err.data as { code?: string; issues?: { path: (string | number)[]; message: string }[] } | undefined;
    const issues = (data?.issues ?? []).map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
    return { message: err.message, issues };
  }
  return { message: err instanceof Error ? err.message : String(err), issues: [] };
}

export function ErrorBox({
  error,
  title = "Something went wrong",
  onRetry,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}) {
  const { message, issues } = errorText(error);
  return (
    <div role="alert" className="rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800">
      <div className="flex items-start justify-between gap-4">
        <div>
          <p className="font-medium">{title}</p>
          <p className="mt-0.5">{message}</p>
          {issues.length > 0 && !issues.every((i) => message.includes(i)) ? (
            <ul className="mt-1 list-disc pl-5">
              {issues.map((i) => (
                <li key={i}>{i}</li>
              ))}
            </ul>
          ) : null}
        </div>
        {onRetry ? (
          <button
            type="button"
            onClick={onRetry}
            className="shrink-0 rounded-md border border-red-300 bg-white px-2.5 py-1 text-xs font-medium text-red-700 hover:bg-red-100"
          >
            Try again
          </button>
        ) : null}
      </div>
    </div>
  );
}

const BUTTON =
  "inline-flex items-center justify-center gap-1.5 rounded-lg px-3 py-1.5 text-sm font-medium disabled:cursor-not-allowed disabled:opacity-50";
export const btn = {
  primary: cx(BUTTON, "bg-slate-900 text-white shadow-sm hover:bg-slate-700"),
  secondary: cx(BUTTON, "border border-slate-300 bg-white text-slate-700 shadow-sm hover:bg-slate-50"),
  danger: cx(BUTTON, "bg-red-600 text-white shadow-sm hover:bg-red-500"),
  link: "text-sm font-medium text-sky-700 hover:text-sky-900 hover:underline disabled:opacity-50",
};
export const input = cx(
  "block w-full rounded-lg border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-900 shadow-sm",
  "placeholder:text-slate-400 focus:border-sky-500 focus:outline-none focus:ring-2 focus:ring-sky-500/20",
);
export const label = "mb-1 block text-xs font-medium text-slate-600";

/** Re-renders every few seconds so relative times stay true. */
function useNow(everyMs = 10_000) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

function ago(iso: string, now = Date.now()): string {
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  const fut = s < 0;
  const a = Math.abs(s);
  const v =
    a < 5
      ? "just now"
      : a < 60
        ? `${a} s`
        : a < 3600
          ? `${Math.floor(a / 60)} min`
          : a < 86400
            ? `${Math.floor(a / 3600)} h`
            : `${Math.floor(a / 86400)} d`;
  if (v === "just now") return v;
  return fut ? `in ${v}` : `${v} ago`;
}

export const fmtTime = (iso: string) =>
  new Date(iso).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });

export function RelTime({ iso, className = "" }: { iso: string | null | undefined; className?: string }) {
  const now = useNow();
  if (!iso) return <span className="text-slate-400">—</span>;
  if (new Date(iso).getFullYear() > 9000) return <span className={className}>never</span>;
  return (
    <time dateTime={iso} title={fmtTime(iso)} className={className}>
      {ago(iso, Math.max(now, Date.now()))}
    </time>
  );
}

export function ShortId({ id }: { id: string }) {
  return (
    <span className="font-mono text-xs" title={id}>
      {shortId(id)}
    </span>
  );
}

export function CopyButton({ text, label: l = "Copy", small }: { text: string; label?: string; small?: boolean }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className={
        small
          ? "rounded-md px-1.5 py-0.5 text-xs font-medium text-slate-500 hover:bg-slate-100 hover:text-slate-800"
          : btn.secondary
      }
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          // Clipboard refused (not a secure context): select the text for a manual copy instead.
          const ta = document.createElement("textarea");
          ta.value = text;
          document.body.appendChild(ta);
          ta.select();
          document.execCommand("copy");
          ta.remove();
        }
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? "Copied" : l}
    </button>
  );
}

export function Json({ value, className = "" }: { value: unknown; className?: string }) {
  if (value === null || value === undefined) return <p className="text-sm text-slate-400">None</p>;
  return (
    <pre
      className={`max-h-96 overflow-auto rounded-lg bg-slate-900 p-3 font-mono text-xs leading-relaxed text-slate-100 ${className}`}
    >
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}
