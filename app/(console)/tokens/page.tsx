import { requireUser } from "@/lib/session";
import { NeedsRole } from "@/app/_components/needs-role";
import { Tokens } from "./tokens";

export const metadata = { title: "API tokens · Conveyor" };

export default async function Page() {
  const me = await requireUser("/tokens");
  if (me.role !== "admin") return <NeedsRole role="admin" me={me} page="API tokens" />;
  return <Tokens />;
}
