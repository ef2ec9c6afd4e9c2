-- CreateEnum
CREATE TYPE "LogDeliveryStatus" AS ENUM ('active', 'dead');

-- CreateTable
CREATE TABLE "LogDelivery" (
    "destinationId" UUID NOT NULL,
    "deliveredSeq" BIGINT NOT NULL DEFAULT 0,
    "status" "LogDeliveryStatus" NOT NULL DEFAULT 'active',
    "failures" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,
    "nextAttemptAt" TIMESTAMPTZ(3),
    "delivered" BIGINT NOT NULL DEFAULT 0,
    "deliveredAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "LogDelivery_pkey" PRIMARY KEY ("destinationId")
);

-- CreateIndex
CREATE INDEX "LogDelivery_status_nextAttemptAt_idx" ON "LogDelivery"("status", "nextAttemptAt");

-- AddForeignKey
ALTER TABLE "LogDelivery" ADD CONSTRAINT "LogDelivery_destinationId_fkey" FOREIGN KEY ("destinationId") REFERENCES "LogDestination"("id") ON DELETE CASCADE ON UPDATE CASCADE;
