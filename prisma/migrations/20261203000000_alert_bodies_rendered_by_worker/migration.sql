-- An alert email's bodies are rendered by a worker, never by the web process
-- (the react-email templates stay out of its bundles): a test email asked for
-- in the console is stored with its subject and recipients, its bodies NULL
-- until a worker's mailer renders them, before it sends.
ALTER TABLE "alert_deliveries" ALTER COLUMN "text_body" DROP NOT NULL, ALTER COLUMN "html_body" DROP NOT NULL;
