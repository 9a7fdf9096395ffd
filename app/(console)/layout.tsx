import { Providers } from "@/app/_components/trpc";
import { Nav } from "@/app/_components/nav";
import { currentUser } from "@/lib/session";

export const dynamic = "force-dynamic";

// The console's frame. Each page checks the session itself (requireUser) so
// that it can send a visitor without one to /login and back to that page.
export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  const me = await currentUser();
  return (
    <Providers>
      {me ? <Nav me={me} /> : null}
      <main className="mx-auto max-w-[1600px] px-4 py-6 sm:px-6 lg:py-8">{children}</main>
    </Providers>
  );
}
