// Layering of server/ (docs/architecture.md): each layer may import the ones
// below it, never one above. Checked by `npm run lint`.
//   lib, outbound  <  engine  <  db  <  command-types, commands, auth, flow, alerts, schedules  <  worker, api  <  web
// (lib: small utilities; outbound: the guarded fetch for requests to the outside).
// The console (app/) reaches the server only through tRPC types and the
// dependency-free engine module; type-only imports are not counted
// (tsPreCompilationDeps: false), so `import type { AppRouter }` stays allowed.
const layer = (from, forbidden, comment) => ({
  name: `${from.replace(/[^a-z]+/g, "-").replace(/^-+|-+$/g, "")}-imports-higher`,
  comment,
  severity: "error",
  from: { path: `^server/${from}` },
  to: { path: `^server/(${forbidden.join("|")})/` },
});

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: { path: "^(server|app|scripts)/" }, to: { circular: true } },
    { name: "server-imports-app", severity: "error", from: { path: "^server/" }, to: { path: "^app/" } },
    layer(
      "(lib|outbound)/",
      ["engine", "db", "commands", "command-types", "auth", "flow", "alerts", "schedules", "worker", "api", "web"],
      "utilities below everything of ours",
    ),
    layer(
      "engine/",
      ["outbound", "db", "commands", "command-types", "auth", "flow", "alerts", "schedules", "worker", "api", "web"],
      "the engine is pure: states, transitions, shared types",
    ),
    layer(
      "db/",
      ["commands", "command-types", "auth", "flow", "alerts", "schedules", "worker", "api", "web"],
      "data access knows only the engine's types",
    ),
    layer(
      "(commands|command-types|auth|flow|alerts|schedules)/",
      ["worker", "api", "web"],
      "domain modules are called by workers and routers, never the reverse",
    ),
    layer("worker/", ["api", "web"], "workers do not go through the API layer"),
    layer("api/", ["web", "worker"], "routers call domain modules, not worker internals"),
    {
      name: "web-reaches-email-templates",
      comment:
        "alert emails are rendered by the worker only: the templates and react-dom/server stay out of the web process's bundles (Next.js refuses a static import of react-dom/server in the App Router)",
      severity: "error",
      from: { path: "^(app|server/api|server/web)/" },
      to: { path: "^server/alerts/templates/", reachable: true },
    },
    {
      name: "client-imports-server-runtime",
      comment:
        "console code may import at run time only the dependency-free engine module and the browser-safe modules of alerts (the rule input schema and the alert wording), schedules (the input schema and the cron reader), command types (the payload schemas) and commands (the pure input helpers)",
      severity: "error",
      from: { path: "^app/_components/|^app/.*/_components/|^app/\\(console\\)/.*\\.tsx$" },
      to: {
        path: "^server/",
        pathNot:
          "^server/(engine/|alerts/(rule-input|format)\\.ts$|schedules/(input|cron)\\.ts$|command-types/(http-payload|browser-schemas)\\.ts$|commands/inputs\\.ts$)",
      },
    },
    {
      name: "browser-safe-payload-schemas",
      comment:
        "the console bundles command-types/browser-schemas.ts and the schemas it lists: they may import only each other, the pure input helpers and zod",
      severity: "error",
      from: { path: "^server/command-types/(http-payload|browser-schemas)\\.ts$" },
      to: {
        pathNot:
          "^(server/(command-types/(http-payload|browser-schemas)\\.ts$|commands/inputs\\.ts$)|node_modules/zod/)",
      },
    },
    {
      name: "browser-safe-schedule-modules",
      comment:
        "the console bundles schedules/input.ts and schedules/cron.ts: they may import only each other, the pure input helpers, zod and croner",
      severity: "error",
      from: { path: "^server/schedules/" },
      to: { pathNot: "^(server/(schedules/(input|cron)\\.ts$|commands/inputs\\.ts$)|node_modules/(zod|croner)/)" },
    },
    {
      name: "browser-safe-alert-modules",
      comment:
        "the console bundles alerts/rule-input.ts and alerts/format.ts: they may import only each other, the engine and the pure input helpers",
      severity: "error",
      from: { path: "^server/alerts/(rule-input|format)\\.ts$" },
      to: { pathNot: "^(server/(engine/|alerts/(rule-input|format)\\.ts$|commands/inputs\\.ts$)|node_modules/zod/)" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(node_modules|\\.next|generated)/" },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
      extensions: [".ts", ".tsx", ".js", ".mjs", ".cjs"],
    },
  },
};
