import { requireUser } from "@/lib/session";
import { Tokens } from "./tokens";

export const metadata = { title: "API tokens · Conveyor" };

export default async function Page() {
  await requireUser("/tokens", { admin: true });
  return <Tokens />;
}
