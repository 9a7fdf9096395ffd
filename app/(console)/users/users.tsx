"use client";
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import {
  btn,
  Empty,
  ErrorBox,
  input,
  label,
  Loading,
  PageHeader,
  Panel,
  RelTime,
  RoleBadge,
} from "@/app/_components/ui";

type Role = "viewer" | "operator" | "admin";
const ROLES: { value: Role; help: string }[] = [
  { value: "viewer", help: "reads everything" },
  { value: "operator", help: "also retries, compensates, cancels, resolves" },
  { value: "admin", help: "also manages users and API tokens" },
];

export function Users({ myEmail }: { myEmail: string }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const list = useQuery(trpc.users.list.queryOptions());
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("operator");
  const refresh = () => void qc.invalidateQueries(trpc.users.list.pathFilter());
  const create = useMutation(
    trpc.users.create.mutationOptions({
      onSuccess: () => {
        setEmail("");
        setPassword("");
        refresh();
      },
    }),
  );
  const update = useMutation(trpc.users.update.mutationOptions({ onSuccess: refresh }));

  return (
    <>
      <PageHeader title="Users" subtitle="People who sign in to this console, and what they may do." />
      <div className="grid items-start gap-6 xl:grid-cols-3">
        <Panel title="Add a user">
          <form
            className="space-y-4"
            onSubmit={(e) => {
              e.preventDefault();
              create.mutate({ email: email.trim(), password, role });
            }}
          >
            <div>
              <label htmlFor="user-email" className={label}>
                Email
              </label>
              <input
                id="user-email"
                type="email"
                value={email}
                onChange={(e) => setEmail(e.target.value)}
                required
                className={input}
              />
            </div>
            <div>
              <label htmlFor="user-password" className={label}>
                Initial password
              </label>
              <input
                id="user-password"
                type="password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                required
                minLength={12}
                autoComplete="new-password"
                className={input}
              />
              <p className="mt-1 text-xs text-slate-500">
                At least 12 characters. They must change it at first sign-in.
              </p>
            </div>
            <div>
              <label htmlFor="user-role" className={label}>
                Role
              </label>
              <select id="user-role" value={role} onChange={(e) => setRole(e.target.value as Role)} className={input}>
                {ROLES.map((r) => (
                  <option key={r.value} value={r.value}>
                    {r.value}: {r.help}
                  </option>
                ))}
              </select>
            </div>
            {create.error ? <ErrorBox error={create.error} title="Could not add the user" /> : null}
            {create.data ? (
              <p className="text-sm text-emerald-700" role="status">
                Added {create.data.email}.
              </p>
            ) : null}
            <button type="submit" className={btn.primary} disabled={create.isPending}>
              Add user
            </button>
          </form>
        </Panel>

        <Panel title="Users" className="xl:col-span-2" bodyClass="">
          {update.error ? (
            <div className="p-4 pb-0">
              <ErrorBox error={update.error} title="Could not change the user" />
            </div>
          ) : null}
          {list.error ? (
            <div className="p-4">
              <ErrorBox error={list.error} title="Could not load users" onRetry={() => list.refetch()} />
            </div>
          ) : !list.data ? (
            <Loading />
          ) : list.data.items.length === 0 ? (
            <Empty title="No users" />
          ) : (
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
                  <tr>
                    <th className="px-4 py-2.5">Email</th>
                    <th className="px-3 py-2.5">Role</th>
                    <th className="px-3 py-2.5">Last sign-in</th>
                    <th className="px-3 py-2.5">Created</th>
                    <th className="px-3 py-2.5">Status</th>
                    <th className="px-4 py-2.5" />
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-100">
                  {list.data.items.map((u) => {
                    const me = u.email === myEmail;
                    return (
                      <tr key={u.id} className={u.disabled ? "text-slate-400" : ""}>
                        <td className="px-4 py-2.5">
                          <span className="font-medium">{u.email}</span>
                          {me ? <span className="ml-2 text-xs text-slate-500">(you)</span> : null}
                          {u.sso ? (
                            <span
                              className="ml-2 rounded bg-sky-50 px-1.5 py-0.5 text-xs font-medium text-sky-800 ring-1 ring-sky-200"
                              title="Signs in with single sign-on"
                            >
                              SSO
                            </span>
                          ) : null}
                          {u.name ? <div className="text-xs text-slate-500">{u.name}</div> : null}
                        </td>
                        <td className="px-3 py-2.5">
                          {u.sso ? (
                            <span className="flex items-center gap-2">
                              <RoleBadge role={u.role} />
                              <span className="text-xs text-slate-500">from the identity provider</span>
                            </span>
                          ) : me ? (
                            <RoleBadge role={u.role} />
                          ) : (
                            <select
                              aria-label={`Role of ${u.email}`}
                              value={u.role}
                              disabled={update.isPending}
                              onChange={(e) => update.mutate({ id: u.id, role: e.target.value as Role })}
                              className="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm"
                            >
                              {ROLES.map((r) => (
                                <option key={r.value} value={r.value}>
                                  {r.value}
                                </option>
                              ))}
                            </select>
                          )}
                        </td>
                        <td className="px-3 py-2.5 text-slate-500">
                          {u.lastLoginAt ? <RelTime iso={u.lastLoginAt} /> : "never"}
                        </td>
                        <td className="px-3 py-2.5 text-slate-500">
                          <RelTime iso={u.createdAt} />
                        </td>
                        <td className="px-3 py-2.5 text-xs">
                          {u.disabled ? (
                            <span className="font-medium text-slate-500">disabled</span>
                          ) : u.mustChangePassword ? (
                            <span className="font-medium text-amber-700">must change password</span>
                          ) : (
                            <span className="font-medium text-emerald-700">active</span>
                          )}
                        </td>
                        <td className="px-4 py-2.5 text-right">
                          {me ? null : (
                            <button
                              type="button"
                              className="text-sm font-medium text-slate-700 hover:underline disabled:opacity-50"
                              disabled={update.isPending}
                              onClick={() => update.mutate({ id: u.id, disabled: !u.disabled })}
                            >
                              {u.disabled ? "Enable" : "Disable"}
                            </button>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </Panel>
      </div>
    </>
  );
}
