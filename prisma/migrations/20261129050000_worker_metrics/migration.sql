-- Worker metrics (attempts, durations, pickup lag, alert and callback
-- figures) live in each worker's memory; workers listen on no port, so each
-- one saves a snapshot here every few seconds and /api/metrics sums them.
-- Rows of stopped workers are kept for a day so that summed counters do not
-- go backwards when a worker restarts under a new id.
CREATE TABLE "worker_metrics" (
    "worker_id" TEXT NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "metrics" JSONB NOT NULL,
    CONSTRAINT "worker_metrics_pkey" PRIMARY KEY ("worker_id")
);
