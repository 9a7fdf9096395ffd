// ESLint: typescript-eslint's recommended rules and the rules of hooks. Not
// type-aware on purpose: it stays a few seconds on two cores, and `tsc --noEmit`
// (npm run typecheck) already checks types. Layering is checked by
// dependency-cruiser (.dependency-cruiser.cjs), also part of `npm run lint`.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";

export default tseslint.config(
  {
    ignores: ["node_modules/", ".next/", ".data/", "server/db/generated/", "next-env.d.ts", "tmp/", "packages/*/dist/"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      // `_`-prefixed names are deliberately unused (destructuring to drop a field, callback arity).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true },
      ],
      "no-empty": ["error", { allowEmptyCatch: true }],
    },
  },
  {
    // Tests and benchmarks read untyped JSON answers; `any` there is the honest type.
    // Exact log formats are asserted with their spaces written out.
    files: ["test/**", "bench/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off", "no-regex-spaces": "off" },
  },
  {
    files: ["app/**/*.tsx", "app/**/*.ts"],
    plugins: { "react-hooks": reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      // The console is not built with the React Compiler, and these flag deliberate patterns there: a clock read
      // while rendering relative times, a ref that mirrors the latest input, state reset when the filter changes.
      "react-hooks/purity": "off",
      "react-hooks/refs": "off",
      "react-hooks/set-state-in-effect": "off",
    },
  },
);
