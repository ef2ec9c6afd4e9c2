/**
 * Slack's v0 request signing (https://api.slack.com/authentication/verifying-requests-from-slack): HMAC-SHA256 of
 * `v0:<timestamp>:<raw body>` with the app's signing secret, sent as `X-Slack-Signature: v0=<hex>` next to
 * `X-Slack-Request-Timestamp`. Verified on the raw bytes, in constant time, within a replay window.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** Requests signed longer ago (or further ahead) than this are refused as replays. */
export const SLACK_REPLAY_WINDOW_SECONDS = 300

export function slackSignature(secret: string, timestamp: string | number, rawBody: string | Buffer): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`
}

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string }

export interface SignedRequest {
  readonly timestamp: string | undefined
  readonly signature: string | undefined
  readonly rawBody: Buffer
}

export function verifySlackSignature(secret: string, req: SignedRequest, nowMs: number): SignatureCheck {
  const { timestamp, signature } = req
  if (!timestamp || !signature) return { ok: false, reason: 'missing X-Slack-Request-Timestamp or X-Slack-Signature' }
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed timestamp' }
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > SLACK_REPLAY_WINDOW_SECONDS) return { ok: false, reason: 'stale timestamp' }
  const expected = Buffer.from(slackSignature(secret, timestamp, req.rawBody))
  const given = Buffer.from(signature)
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'signature mismatch' }
  return { ok: true }
}
