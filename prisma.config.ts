// Prisma 7 reads the datasource URL from here, not from schema.prisma. The URL
// is only needed by CLI commands that talk to a database; `prisma generate`
// works without one, so an unset DATABASE_URL must not throw here.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://localhost/conveyor" },
});
