import { requireUser } from "@/lib/session";
import { AuditLog } from "./audit";

export const metadata = { title: "Audit log · Conveyor" };

export default async function Page() {
  await requireUser("/audit");
  return <AuditLog />;
}
