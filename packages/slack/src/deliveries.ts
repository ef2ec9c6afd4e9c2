/** At-most-once side effects keyed in `SlackDelivery`: a DM, an ephemeral or a card post happens once per key. */
import { isUniqueViolation, type Db } from '@opensym/db'

export interface DeliveryData {
  readonly orgId: string
  readonly runId?: string | null
  readonly eventId?: string | null
  readonly teamId?: string | null
  readonly channel?: string | null
  readonly slackUser?: string | null
}

/**
 * Claims `key` and runs `fn`; a claim already taken means it was done (or is being done): skip. When `fn` throws,
 * the claim is released so a retry can do it.
 */
export async function once(db: Db, key: string, data: DeliveryData, fn: () => Promise<void>): Promise<boolean> {
  try {
    await db.slackDelivery.create({ data: { key, ...data } })
  } catch (e) {
    if (isUniqueViolation(e)) return false
    throw e
  }
  try {
    await fn()
    return true
  } catch (e) {
    await db.slackDelivery.deleteMany({ where: { key } })
    throw e
  }
}
