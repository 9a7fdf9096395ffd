// Tracing for a process (DESIGN §10): started when the environment names an
// OTLP endpoint (server/env.ts TRACING), not at all otherwise. A failure to
// start is logged and the process runs untraced.
import type { Env } from "./env";
import { loggableUrl, type Logger } from "./log";
import { startTracing } from "./lib/tracing";

export async function startConfiguredTracing(e: Env, serviceName: string, log: Logger): Promise<void> {
  if (!e.TRACING) return;
  try {
    await startTracing({
      serviceName,
      url: e.TRACING.url,
      protocol: e.TRACING.protocol,
      warn: (message) => log.warn({ tracing: true }, `OpenTelemetry: ${message}`),
    });
    log.info({ endpoint: loggableUrl(e.TRACING.url), protocol: e.TRACING.protocol }, "exporting spans over OTLP/HTTP");
  } catch (err) {
    log.error({ err: String(err) }, "could not start tracing; running without it");
  }
}
