"use client";
import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { btn, ErrorBox, input, label, PageHeader, Panel, RoleBadge } from "@/app/_components/ui";
import type { Me } from "@/lib/session";

export function Account({ me, first }: { me: Me; first: boolean }) {
  const trpc = useTRPC();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [mismatch, setMismatch] = useState(false);
  const change = useMutation(
    trpc.auth.changePassword.mutationOptions({
      onSuccess: () => {
        setCurrent("");
        setNext("");
        setAgain("");
        // The server now lets this session into the whole console.
        if (first) window.location.assign("/");
      },
    }),
  );
  return (
    <div className="mx-auto max-w-xl">
      <PageHeader
        title="Account"
        subtitle={
          <span className="flex items-center gap-2">
            {me.email} <RoleBadge role={me.role} />
          </span>
        }
      />
      {first ? (
        <div
          className="mb-6 rounded-xl border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900"
          role="note"
        >
          <p className="font-medium">Choose your own password before you go on.</p>
          <p className="mt-0.5">
            This account was given a temporary password. Until you change it, the rest of the console stays closed.
          </p>
        </div>
      ) : null}
      {me.sso ? (
        <Panel title="Single sign-on">
          <p className="text-sm text-slate-600">
            You sign in with your identity provider: this account has no password here. Your role comes from the
            provider and is taken again each time you sign in.
          </p>
        </Panel>
      ) : (
        <Panel title="Change password">
          <form
            className="space-y-4"
            onSubmit={(e) => {
              e.preventDefault();
              if (next !== again) {
                setMismatch(true);
                return;
              }
              change.mutate({ current, next });
            }}
          >
            <div>
              <label htmlFor="pw-current" className={label}>
                Current password
              </label>
              <input
                id="pw-current"
                type="password"
                autoComplete="current-password"
                value={current}
                onChange={(e) => setCurrent(e.target.value)}
                required
                className={input}
              />
            </div>
            <div>
              <label htmlFor="pw-next" className={label}>
                New password
              </label>
              <input
                id="pw-next"
                type="password"
                autoComplete="new-password"
                minLength={12}
                value={next}
                onChange={(e) => {
                  setNext(e.target.value);
                  setMismatch(false);
                }}
                required
                className={input}
              />
              <p className="mt-1 text-xs text-slate-500">At least 12 characters. Your other sessions are signed out.</p>
            </div>
            <div>
              <label htmlFor="pw-again" className={label}>
                New password again
              </label>
              <input
                id="pw-again"
                type="password"
                autoComplete="new-password"
                value={again}
                onChange={(e) => {
                  setAgain(e.target.value);
                  setMismatch(false);
                }}
                required
                className={input}
              />
              {mismatch ? <p className="mt-1 text-xs text-red-700">The two new passwords differ.</p> : null}
            </div>
            {change.error ? <ErrorBox error={change.error} title="Password not changed" /> : null}
            {change.isSuccess && !first ? (
              <p className="text-sm text-emerald-700" role="status">
                Password changed.
              </p>
            ) : null}
            <button type="submit" className={btn.primary} disabled={change.isPending}>
              Change password
            </button>
          </form>
        </Panel>
      )}
    </div>
  );
}
