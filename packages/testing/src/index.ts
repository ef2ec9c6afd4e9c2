export { createTestDatabase, uniqueSuffix, type TestDatabase } from './database.js'
export { createTestOrg, type TestOrg } from './org.js'
export { b64, entityBodies } from './entity-bodies.js'
export {
  expectedSignature,
  startHttpReceiver,
  type HttpReceiver,
  type HttpReceiverOptions,
  type ReceivedRequest,
  type Responder,
  type ScriptedResponse,
} from './http-receiver.js'
export { startFakeServer, type Fault, type FaultMatch, type FakeRequest, type FakeResponse, type FakeServer, type FakeServerOptions } from './fakes/core.js'
export {
  AwsFakeError,
  FakeIam,
  FakeIdentityStore,
  FakeLambda,
  FakeSecretsManager,
  FakeSsoAdmin,
  FakeSts,
  startFakeAws,
  type AwsErrorSpec,
  type FakeAssignment,
  type FakeAws,
  type FakeAwsOptions,
  type FakeAwsService,
  type FakeIamGroup,
  type FakeIamUser,
  type FakeSession,
  type FakeSsoUser,
  type FakeRole,
  type LambdaHandler,
  type LambdaInvocation,
} from './fakes/aws.js'
export { startFakeOkta, type FakeOkta, type FakeOktaGroup, type FakeOktaOptions, type FakeOktaUser } from './fakes/okta.js'
export { startFakePagerDuty, type FakeIncident, type FakeOnCall, type FakePagerDuty, type FakePagerDutyOptions, type FakePagerDutySchedule, type FakePagerDutyUser } from './fakes/pagerduty.js'
export { startFakeGithub, type FakeGithub, type FakeGithubOptions, type FakeGithubUser, type FakeInvitation, type FakeRepo } from './fakes/github.js'
export {
  startFakeSlack,
  type FakeSlack,
  type FakeSlackChannel,
  type FakeSlackEphemeral,
  type FakeSlackMessage,
  type FakeSlackOptions,
  type FakeSlackTeam,
  type FakeSlackUser,
  type FakeSlackView,
  type SlackDriver,
  type SlackInbound,
  type SlackUserRef,
} from './fakes/slack.js'
export {
  decodeAwsChunked,
  startFakeAwsLogs,
  type FakeAwsLogs,
  type FakeAwsLogsOptions,
  type FakeLogService,
  type FakeS3Object,
  type FakeStreamRecord,
  type RecordFaultSpec,
} from './fakes/aws-logs.js'
export { startFakeDatadog, startFakeSegment, type FakeDatadog, type FakeDatadogLog, type FakeSegment, type FakeSegmentEvent } from './fakes/log-intake.js'
