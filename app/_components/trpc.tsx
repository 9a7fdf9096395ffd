"use client";
// The browser's tRPC client: plain JSON over /api/trpc (no transformer), the
// session cookie rides along. A query answered UNAUTHORIZED (session expired)
// sends the browser to the sign-in page and back.
import { useState } from "react";
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink, splitLink, TRPCClientError } from "@trpc/client";
import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { AppRouter } from "@/server/api/root";

const trpcContext = createTRPCContext<AppRouter>();
const { TRPCProvider } = trpcContext;
export const { useTRPC, useTRPCClient } = trpcContext;

function onAuthError(err: unknown) {
  if (err instanceof TRPCClientError && err.data?.code === "UNAUTHORIZED" && typeof window !== "undefined") {
    const next = window.location.pathname + window.location.search;
    window.location.assign(`/login?next=${encodeURIComponent(next)}`);
  }
}

export function Providers({ children }: { children: React.ReactNode }) {
  const [queryClient] = useState(
    () =>
      new QueryClient({
        queryCache: new QueryCache({ onError: onAuthError }),
        mutationCache: new MutationCache({ onError: onAuthError }),
        defaultOptions: {
          queries: {
            staleTime: 2_000,
            retry: (n, err) =>
              !(err instanceof TRPCClientError && err.data?.httpStatus && err.data.httpStatus < 500) && n < 2,
          },
        },
      }),
  );
  // A query with a long input (the preview of a selection of up to 1,000 ids) goes by POST: in a URL it would pass the server's header limit.
  const [trpcClient] = useState(() =>
    createTRPCClient<AppRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === "query" && JSON.stringify(op.input ?? null).length > 2_000,
          true: httpBatchLink({ url: "/api/trpc", methodOverride: "POST" }),
          false: httpBatchLink({ url: "/api/trpc" }),
        }),
      ],
    }),
  );
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
