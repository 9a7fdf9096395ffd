import { requireUser } from "@/lib/session";
import { Users } from "./users";

export const metadata = { title: "Users · Conveyor" };

export default async function Page() {
  const me = await requireUser("/users", { admin: true });
  return <Users myEmail={me.email} />;
}
