-- CreateEnum
CREATE TYPE "RunStatus" AS ENUM ('requested', 'approved', 'denied', 'expired', 'escalated', 'deescalated', 'errored');

-- CreateEnum
CREATE TYPE "EventStatus" AS ENUM ('pending', 'success', 'error');

-- CreateEnum
CREATE TYPE "EventChannel" AS ENUM ('slack', 'api', 'sdk', 'internal');

-- CreateTable
CREATE TABLE "Run" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "flowId" UUID,
    "flowSlug" TEXT NOT NULL,
    "flowVersion" INTEGER NOT NULL,
    "environmentId" UUID,
    "requesterId" UUID NOT NULL,
    "targetId" UUID,
    "durationSeconds" INTEGER,
    "fields" JSONB NOT NULL DEFAULT '{}',
    "context" JSONB NOT NULL DEFAULT '{}',
    "snapshot" JSONB NOT NULL DEFAULT '{}',
    "status" "RunStatus" NOT NULL DEFAULT 'requested',
    "version" INTEGER NOT NULL DEFAULT 0,
    "requestExpiresAt" TIMESTAMPTZ(3),
    "expiresAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    "decidedAt" TIMESTAMPTZ(3),
    "escalatedAt" TIMESTAMPTZ(3),
    "deescalatedAt" TIMESTAMPTZ(3),
    "endedAt" TIMESTAMPTZ(3),

    CONSTRAINT "Run_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RunEvent" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "runId" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "actorId" UUID,
    "channel" "EventChannel" NOT NULL,
    "fields" JSONB NOT NULL DEFAULT '{}',
    "status" "EventStatus" NOT NULL DEFAULT 'pending',
    "error" TEXT,
    "output" JSONB,
    "verified" BOOLEAN,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMPTZ(3),

    CONSTRAINT "RunEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Grant" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "strategyType" TEXT NOT NULL,
    "identity" TEXT NOT NULL,
    "applied" BOOLEAN NOT NULL DEFAULT false,
    "appliedAt" TIMESTAMPTZ(3),
    "removedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Grant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "GrantLease" (
    "id" UUID NOT NULL,
    "grantId" UUID NOT NULL,
    "runId" UUID NOT NULL,
    "startedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3),
    "endedAt" TIMESTAMPTZ(3),

    CONSTRAINT "GrantLease_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditEntry" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "runId" UUID NOT NULL,
    "eventId" UUID NOT NULL,
    "flowId" UUID,
    "userId" UUID,
    "eventType" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "entry" JSONB NOT NULL,
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,

    CONSTRAINT "AuditEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditChainHead" (
    "orgId" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,

    CONSTRAINT "AuditChainHead_pkey" PRIMARY KEY ("orgId")
);

-- CreateTable
CREATE TABLE "IdempotencyKey" (
    "orgId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "responseStatus" INTEGER,
    "responseBody" JSONB,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "IdempotencyKey_pkey" PRIMARY KEY ("orgId","userId","key")
);

-- CreateIndex
CREATE INDEX "Run_orgId_status_createdAt_idx" ON "Run"("orgId", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Run_orgId_flowId_createdAt_idx" ON "Run"("orgId", "flowId", "createdAt");

-- CreateIndex
CREATE INDEX "Run_orgId_requesterId_createdAt_idx" ON "Run"("orgId", "requesterId", "createdAt");

-- CreateIndex
CREATE INDEX "Run_status_expiresAt_idx" ON "Run"("status", "expiresAt");

-- CreateIndex
CREATE INDEX "Run_status_requestExpiresAt_idx" ON "Run"("status", "requestExpiresAt");

-- CreateIndex
CREATE INDEX "RunEvent_status_createdAt_idx" ON "RunEvent"("status", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "RunEvent_runId_seq_key" ON "RunEvent"("runId", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "Grant_orgId_key_key" ON "Grant"("orgId", "key");

-- CreateIndex
CREATE UNIQUE INDEX "GrantLease_runId_key" ON "GrantLease"("runId");

-- CreateIndex
CREATE INDEX "GrantLease_grantId_endedAt_idx" ON "GrantLease"("grantId", "endedAt");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEntry_eventId_key" ON "AuditEntry"("eventId");

-- CreateIndex
CREATE INDEX "AuditEntry_orgId_timestamp_idx" ON "AuditEntry"("orgId", "timestamp");

-- CreateIndex
CREATE INDEX "AuditEntry_orgId_runId_seq_idx" ON "AuditEntry"("orgId", "runId", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEntry_orgId_seq_key" ON "AuditEntry"("orgId", "seq");

-- CreateIndex
CREATE INDEX "IdempotencyKey_createdAt_idx" ON "IdempotencyKey"("createdAt");

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_flowId_fkey" FOREIGN KEY ("flowId") REFERENCES "Flow"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_requesterId_fkey" FOREIGN KEY ("requesterId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RunEvent" ADD CONSTRAINT "RunEvent_runId_fkey" FOREIGN KEY ("runId") REFERENCES "Run"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RunEvent" ADD CONSTRAINT "RunEvent_actorId_fkey" FOREIGN KEY ("actorId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Grant" ADD CONSTRAINT "Grant_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "GrantLease" ADD CONSTRAINT "GrantLease_grantId_fkey" FOREIGN KEY ("grantId") REFERENCES "Grant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "GrantLease" ADD CONSTRAINT "GrantLease_runId_fkey" FOREIGN KEY ("runId") REFERENCES "Run"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The audit trail is append-only: entries are never changed, and removed only with their organization.
CREATE FUNCTION "audit_entry_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM "Organization" WHERE "id" = OLD."orgId") THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit entries are append-only (% of entry %)', TG_OP, OLD."id" USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "AuditEntry_append_only" BEFORE UPDATE OR DELETE ON "AuditEntry"
  FOR EACH ROW EXECUTE FUNCTION "audit_entry_append_only"();
