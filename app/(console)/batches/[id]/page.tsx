import { requireUser } from "@/lib/session";
import { BatchPage } from "./batch";

export const metadata = { title: "Batch · Conveyor" };

export default async function Page({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const me = await requireUser(`/batches/${encodeURIComponent(id)}`);
  return <BatchPage id={id} canAct={me.role !== "viewer"} />;
}
