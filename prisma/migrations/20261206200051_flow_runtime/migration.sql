-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "permission" JSONB;

-- AlterTable
ALTER TABLE "RunEvent" ADD COLUMN     "notifiedAt" TIMESTAMPTZ(3),
ADD COLUMN     "warning" TEXT;

-- Events completed before notifications existed are not announced now.
UPDATE "RunEvent" SET "notifiedAt" = "completedAt" WHERE "status" <> 'pending';

-- CreateTable
CREATE TABLE "RunNotification" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "runId" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "destinations" JSONB NOT NULL,
    "timeoutSeconds" INTEGER,
    "postedAt" TIMESTAMPTZ(3),
    "dueAt" TIMESTAMPTZ(3),
    "forwardedAt" TIMESTAMPTZ(3),
    "outcome" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RunNotification_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "RunNotification_forwardedAt_postedAt_idx" ON "RunNotification"("forwardedAt", "postedAt");

-- CreateIndex
CREATE UNIQUE INDEX "RunNotification_runId_index_key" ON "RunNotification"("runId", "index");

-- CreateIndex
CREATE INDEX "RunEvent_notifiedAt_status_idx" ON "RunEvent"("notifiedAt", "status");

-- AddForeignKey
ALTER TABLE "RunNotification" ADD CONSTRAINT "RunNotification_runId_fkey" FOREIGN KEY ("runId") REFERENCES "Run"("id") ON DELETE CASCADE ON UPDATE CASCADE;
