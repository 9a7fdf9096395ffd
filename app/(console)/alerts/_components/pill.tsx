// A small rounded state label with a dot (rule states, alert kinds).
export type Tone = "ok" | "firing" | "muted" | "warn" | "info";

// Literal class names (Tailwind scans the sources for them).
const CLS: Record<Tone, string> = {
  ok: "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
  firing: "bg-red-50 text-red-700 ring-red-600/25",
  muted: "bg-slate-100 text-slate-600 ring-slate-500/20",
  warn: "bg-amber-50 text-amber-800 ring-amber-600/25",
  info: "bg-sky-50 text-sky-700 ring-sky-600/20",
};
const DOT: Record<Tone, string> = {
  ok: "bg-emerald-500",
  firing: "bg-red-600",
  muted: "bg-slate-400",
  warn: "bg-amber-500",
  info: "bg-sky-500",
};

export function Pill({ tone, children, title }: { tone: Tone; children: React.ReactNode; title?: string }) {
  return (
    <span
      title={title}
      className={`inline-flex items-center gap-1.5 rounded-full px-2 py-0.5 text-xs font-medium whitespace-nowrap ring-1 ring-inset ${CLS[tone]}`}
    >
      <span
        className={`h-1.5 w-1.5 rounded-full ${DOT[tone]} ${tone === "firing" ? "animate-pulse" : ""}`}
        aria-hidden
      />
      <span>{children}</span>
    </span>
  );
}
