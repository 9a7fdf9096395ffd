"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { RoleBadge } from "./ui";
import type { Me } from "@/lib/session";
import { cx } from "./cx";

const ITEMS: { href: string; label: string; admin?: boolean }[] = [
  { href: "/", label: "Overview" },
  { href: "/commands", label: "Commands" },
  { href: "/flow", label: "Flow" },
  { href: "/alerts", label: "Alerts" },
  { href: "/schedules", label: "Schedules", admin: true },
  { href: "/audit", label: "Audit log" },
  { href: "/tokens", label: "API tokens", admin: true },
  { href: "/users", label: "Users", admin: true },
];

export function Nav({ me }: { me: Me }) {
  const path = usePathname() ?? "/";
  const active = (href: string) => (href === "/" ? path === "/" : path === href || path.startsWith(`${href}/`));
  const items = me.mustChangePassword ? [] : ITEMS.filter((i) => !i.admin || me.role === "admin");
  return (
    <header className="sticky top-0 z-20 border-b border-slate-200 bg-white/90 backdrop-blur">
      <div className="mx-auto flex h-14 max-w-[1600px] items-center gap-6 px-4 sm:px-6">
        <Link href="/" className="flex items-center gap-2 font-semibold tracking-tight text-slate-900">
          <span className="flex h-7 w-7 items-center justify-center rounded-lg bg-slate-900 text-white" aria-hidden>
            <svg viewBox="0 0 20 20" className="h-4 w-4" fill="currentColor">
              <path d="M2 6h12l-3-3h2.5L18 7.5 13.5 12H11l3-3H2V6Zm16 8H6l3 3H6.5L2 12.5 6.5 8H9l-3 3h12v3Z" />
            </svg>
          </span>
          Conveyor
        </Link>
        <nav aria-label="Main" className="-mb-px flex h-full min-w-0 items-stretch gap-1 overflow-x-auto">
          {items.map((i) => (
            <Link
              key={i.href}
              href={i.href}
              aria-current={active(i.href) ? "page" : undefined}
              className={cx(
                "flex items-center whitespace-nowrap border-b-2 px-2.5 text-sm font-medium",
                active(i.href)
                  ? "border-slate-900 text-slate-900"
                  : "border-transparent text-slate-500 hover:border-slate-300 hover:text-slate-800",
              )}
            >
              {i.label}
            </Link>
          ))}
        </nav>
        <div className="ml-auto flex shrink-0 items-center gap-3">
          <Link href="/account" className="hidden text-right leading-tight sm:block" title="Account">
            <span className="block text-sm text-slate-800" data-testid="me-email">
              {me.email}
            </span>
          </Link>
          <RoleBadge role={me.role} />
          <form method="post" action="/api/auth/logout">
            <button
              type="submit"
              className="rounded-lg border border-slate-300 px-2.5 py-1 text-sm font-medium text-slate-700 hover:bg-slate-50"
            >
              Sign out
            </button>
          </form>
        </div>
      </div>
    </header>
  );
}
