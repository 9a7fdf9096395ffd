import { requireUser } from "@/lib/session";
import { Account } from "./account";

export const metadata = { title: "Account · Conveyor" };

export default async function Page({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const sp = await searchParams;
  const me = await requireUser("/account");
  return <Account me={me} first={sp.first === "1" || me.mustChangePassword} />;
}
