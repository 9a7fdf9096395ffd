import { requireUser, withQuery } from "@/lib/session";
import { CommandsList } from "./list";

export const metadata = { title: "Commands · Conveyor" };

type SP = Record<string, string | string[] | undefined>;

export default async function Page({ searchParams }: { searchParams: Promise<SP> }) {
  const sp = await searchParams;
  const me = await requireUser(withQuery("/commands", sp));
  // The list reads its filters and page from the URL itself (and follows Back / Forward).
  return <CommandsList canAct={me.role !== "viewer"} />;
}
