/** The error-logger post: failure messages carry people's input, so neither its blocks nor its text may mention anyone. */
import type { Db } from '@opensym/db'
import { describe, expect, it } from 'vitest'
import type { SlackClients } from '../src/client.js'
import type { Installations } from '../src/installations.js'
import { slackErrorReporter } from '../src/reporter.js'

describe('slackErrorReporter', () => {
  it('escapes the failure message in the notification text and the blocks', async () => {
    const posts: Array<{ channel: string; text: string; blocks: unknown }> = []
    // Just what post() reads: the environment's error logger, the run's flow, the installation and a client.
    const db = {
      environment: { findUnique: async () => ({ slug: 'prod', errorLogger: { integrationId: 'i1', destination: '#sym-errors' } }) },
      run: { findUnique: async () => ({ flowSlug: 'db-access' }) },
    } as unknown as Db
    const installations = { byIntegration: async () => ({ id: 'x', orgId: 'o', integrationId: 'i1', teamId: 'T1', botUserId: 'B1', token: 'xoxb-test' }) } as unknown as Installations
    const clients = { forToken: () => ({ chat: { postMessage: async (m: (typeof posts)[number]) => void posts.push(m) } }) } as unknown as SlackClients
    const report = slackErrorReporter({ db, installations, clients })
    await report({ orgId: 'o', runId: 'r1', eventId: 'e1', environmentId: 'env1', step: 'escalate', message: 'no role "<!channel> admin" for <@U999>' })
    expect(posts).toHaveLength(1)
    expect(posts[0]!.text).not.toMatch(/<!channel>|<@U999>/)
    expect(posts[0]!.text).toContain('&lt;!channel&gt;')
    expect(JSON.stringify(posts[0]!.blocks)).not.toMatch(/<!channel>|<@U999>/)
  })
})
