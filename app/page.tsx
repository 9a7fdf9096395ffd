export default function Home() {
  return (
    <main className="mx-auto max-w-3xl p-10">
      <h1 className="text-2xl font-semibold">Conveyor</h1>
      <p className="mt-2 text-slate-600">
        The intake API is served at <code className="rounded bg-slate-200 px-1">/api/trpc</code>. The operator console arrives with the console issue.
      </p>
    </main>
  );
}
