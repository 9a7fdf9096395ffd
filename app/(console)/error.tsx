"use client";
export default function ErrorPage({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <div className="mx-auto max-w-xl rounded-xl border border-red-200 bg-red-50 p-6 text-sm text-red-800" role="alert">
      <h1 className="text-base font-semibold">This page failed to load</h1>
      <p className="mt-1">
        {error.digest ? `The server logged the cause (reference ${error.digest}).` : error.message}
      </p>
      <button
        type="button"
        onClick={reset}
        className="mt-4 rounded-lg border border-red-300 bg-white px-3 py-1.5 font-medium hover:bg-red-100"
      >
        Try again
      </button>
    </div>
  );
}
