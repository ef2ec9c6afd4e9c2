-- CreateTable
CREATE TABLE "SlackInstallation" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "integrationId" UUID NOT NULL,
    "teamId" TEXT NOT NULL,
    "teamName" TEXT,
    "appId" TEXT,
    "botUserId" TEXT NOT NULL,
    "botToken" TEXT NOT NULL,
    "scopes" TEXT NOT NULL,
    "installedBy" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "SlackInstallation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SlackMessage" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "runId" UUID NOT NULL,
    "teamId" TEXT NOT NULL,
    "link" INTEGER NOT NULL,
    "channel" TEXT NOT NULL,
    "ts" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SlackMessage_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SlackDelivery" (
    "key" TEXT NOT NULL,
    "orgId" UUID NOT NULL,
    "runId" UUID,
    "eventId" UUID,
    "teamId" TEXT,
    "channel" TEXT,
    "slackUser" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SlackDelivery_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE UNIQUE INDEX "SlackInstallation_integrationId_key" ON "SlackInstallation"("integrationId");

-- CreateIndex
CREATE INDEX "SlackInstallation_teamId_idx" ON "SlackInstallation"("teamId");

-- CreateIndex
CREATE INDEX "SlackMessage_runId_idx" ON "SlackMessage"("runId");

-- CreateIndex
CREATE UNIQUE INDEX "SlackMessage_runId_channel_link_key" ON "SlackMessage"("runId", "channel", "link");

-- CreateIndex
CREATE INDEX "SlackDelivery_eventId_idx" ON "SlackDelivery"("eventId");

-- CreateIndex
CREATE INDEX "SlackDelivery_createdAt_idx" ON "SlackDelivery"("createdAt");
