import { requireUser } from "@/lib/session";
import { Flow } from "./flow";

export const metadata = { title: "Flow · Conveyor" };

export default async function Page() {
  const me = await requireUser("/flow");
  return <Flow role={me.role} />;
}
