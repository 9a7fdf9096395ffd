import { requireUser } from "@/lib/session";
import { Alerts } from "./alerts";

export const metadata = { title: "Alerts · Conveyor" };

export default async function Page({ searchParams }: { searchParams: Promise<{ rule?: string | string[] }> }) {
  const me = await requireUser("/alerts");
  const { rule } = await searchParams;
  const id = typeof rule === "string" && /^[0-9a-f-]{36}$/i.test(rule) ? rule : undefined;
  return <Alerts isAdmin={me.role === "admin"} initialRule={id} />;
}
