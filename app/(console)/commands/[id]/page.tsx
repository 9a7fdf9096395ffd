import { requireUser } from "@/lib/session";
import { CommandDetail } from "./detail";

export const metadata = { title: "Command · Conveyor" };

export default async function Page({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const me = await requireUser(`/commands/${encodeURIComponent(id)}`);
  return <CommandDetail id={id} canAct={me.role !== "viewer"} />;
}
