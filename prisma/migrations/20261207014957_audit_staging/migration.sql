-- Audit entries are staged by the transaction that completes their event and chained afterwards, in batches, by the
-- org's chainer (packages/engine/src/audit.ts): completing an event no longer holds the org's chain head until its
-- commit is flushed, which had serialised every audited transaction of an org.

-- CreateTable
CREATE TABLE "AuditStaged" (
    "pos" BIGSERIAL NOT NULL,
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "runId" UUID NOT NULL,
    "eventId" UUID NOT NULL,
    "flowId" UUID,
    "userId" UUID,
    "eventType" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "entry" JSONB NOT NULL,
    "stagedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuditStaged_pkey" PRIMARY KEY ("pos")
);

-- CreateIndex
CREATE UNIQUE INDEX "AuditStaged_eventId_key" ON "AuditStaged"("eventId");

-- CreateIndex
CREATE INDEX "AuditStaged_orgId_pos_idx" ON "AuditStaged"("orgId", "pos");
