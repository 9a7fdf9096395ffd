// Shown instead of a page the signed-in user's role does not open: says which
// role it needs and who they are, rather than sending them elsewhere unexplained.
import Link from "next/link";
import type { Me } from "@/lib/session";

export function NeedsRole({ role, me, page }: { role: "admin"; me: Me; page: string }) {
  return (
    <section
      role="alert"
      aria-labelledby="needs-role-title"
      className="mx-auto mt-10 max-w-xl rounded-xl border border-amber-300 bg-amber-50 p-6 text-sm text-amber-900 shadow-sm"
    >
      <h1 id="needs-role-title" className="text-base font-semibold">
        {page} needs the {role} role
      </h1>
      <p className="mt-2">
        You are signed in as <span className="font-medium">{me.email}</span> with the{" "}
        <span className="font-medium">{me.role}</span> role. Ask an admin of this Conveyor if you need this page or what
        it manages.
      </p>
      <Link
        href="/"
        className="mt-4 inline-block rounded-lg border border-amber-300 bg-white px-3 py-1.5 font-medium text-amber-900 hover:bg-amber-100"
      >
        Go to the overview
      </Link>
    </section>
  );
}
