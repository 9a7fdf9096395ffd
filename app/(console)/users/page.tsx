import { requireUser } from "@/lib/session";
import { NeedsRole } from "@/app/_components/needs-role";
import { Users } from "./users";

export const metadata = { title: "Users · Conveyor" };

export default async function Page() {
  const me = await requireUser("/users");
  if (me.role !== "admin") return <NeedsRole role="admin" me={me} page="Users" />;
  return <Users myEmail={me.email} />;
}
