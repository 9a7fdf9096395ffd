import { requireUser } from "@/lib/session";
import { NeedsRole } from "@/app/_components/needs-role";
import { Schedules } from "./schedules";

export const metadata = { title: "Schedules · Conveyor" };

export default async function Page() {
  const me = await requireUser("/schedules");
  if (me.role !== "admin") return <NeedsRole role="admin" me={me} page="Schedules" />;
  return <Schedules />;
}
