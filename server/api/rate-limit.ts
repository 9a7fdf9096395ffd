// Per-client intake rate limit (INTAKE_RATE_LIMIT commands per second, per web
// process): a token bucket holding two seconds of burst. Over the limit the
// call is refused whole with TOO_MANY_REQUESTS, and nothing is stored.
import { AppError } from "../errors";

export type RateLimiter = { take: (clientId: string, n: number) => void };

export function createRateLimiter(perSecond: number, now: () => number = Date.now): RateLimiter {
  const capacity = perSecond * 2;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(clientId, n) {
      const t = now();
      const b = buckets.get(clientId) ?? { tokens: capacity, at: t };
      b.tokens = Math.min(capacity, b.tokens + ((t - b.at) / 1000) * perSecond);
      b.at = t;
      if (b.tokens < n) {
        buckets.set(clientId, b);
        const waitS = Math.max(1, Math.ceil((n - b.tokens) / perSecond));
        throw new AppError(
          "TOO_MANY_REQUESTS",
          `Rate limit: at most ${perSecond} commands per second for this client; retry in ${waitS} s`,
          undefined,
          waitS,
        );
      }
      b.tokens -= n;
      buckets.set(clientId, b);
      if (buckets.size > 100_000) buckets.clear();
    },
  };
}
