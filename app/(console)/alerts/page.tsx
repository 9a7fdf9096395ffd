import { requireUser } from "@/lib/session";
import { Alerts } from "./alerts";

export const metadata = { title: "Alerts · Conveyor" };

export default async function Page() {
  const me = await requireUser("/alerts");
  return <Alerts isAdmin={me.role === "admin"} />;
}
