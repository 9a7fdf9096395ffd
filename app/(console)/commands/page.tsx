import { requireUser, withQuery } from "@/lib/session";
import { CommandsList, type InitialFilter } from "./list";

export const metadata = { title: "Commands · Conveyor" };

type SP = Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

export default async function Page({ searchParams }: { searchParams: Promise<SP> }) {
  const sp = await searchParams;
  const me = await requireUser(withQuery("/commands", sp));
  const initial: InitialFilter = {
    status: (one(sp.status) ?? "").split(",").filter(Boolean),
    type: one(sp.type) ?? "",
    q: one(sp.q) ?? "",
    range: one(sp.range) ?? "",
    from: one(sp.from) ?? "",
    to: one(sp.to) ?? "",
  };
  return <CommandsList initial={initial} canAct={me.role !== "viewer"} />;
}
