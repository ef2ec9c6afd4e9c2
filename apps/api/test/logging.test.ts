import { describe, expect, it } from 'vitest'
import { redactOAuthQuery } from '../src/app.js'

describe('request log lines', () => {
  it('blank the OAuth code and state of the Slack install callback, and nothing else', () => {
    expect(redactOAuthQuery('/api/v1/slack/oauth/callback?code=4242.1234.abcd&state=eyJ.sig')).toBe('/api/v1/slack/oauth/callback?code=[redacted]&state=[redacted]')
    expect(redactOAuthQuery('/api/v1/slack/oauth/callback?state=s1&error=access_denied')).toBe('/api/v1/slack/oauth/callback?state=[redacted]&error=access_denied')
    expect(redactOAuthQuery('/api/v1/runs?status=escalated&flow=db')).toBe('/api/v1/runs?status=escalated&flow=db')
    // A parameter that merely ends in "code" is not the OAuth code.
    expect(redactOAuthQuery('/api/v1/audit?zipcode=1&x=2')).toBe('/api/v1/audit?zipcode=1&x=2')
  })
})
