import { requireUser } from "@/lib/session";
import { Overview } from "./overview";

export const metadata = { title: "Overview · Conveyor" };

export default async function Page() {
  await requireUser("/");
  return <Overview />;
}
