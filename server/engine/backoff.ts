// The one place retry delays are computed: exponential backoff with full
// jitter (a uniform wait in [0, min(cap, base * 2^(n-1))]), so that commands
// failing together do not come back together.
export function backoffMs(tries: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, tries - 1));
  return Math.floor(random() * ceiling);
}
