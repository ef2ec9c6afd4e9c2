/** The Slack app manifest the product generates (https://api.slack.com/reference/manifests). */

export const BOT_SCOPES = ['commands', 'chat:write', 'chat:write.public', 'im:write', 'mpim:write', 'users:read', 'users:read.email', 'channels:read', 'groups:read', 'usergroups:read'] as const

export interface ManifestOptions {
  /** Where Slack reaches this deployment, e.g. `https://sym.example.com` (no trailing slash). */
  readonly publicUrl: string
  readonly name?: string
  readonly command?: string
}

export function slackManifest(o: ManifestOptions): Record<string, unknown> {
  const base = o.publicUrl.replace(/\/+$/, '')
  const name = o.name ?? 'Sym'
  return {
    display_information: { name, description: 'Request temporary access; approvers decide here.' },
    features: {
      bot_user: { display_name: name, always_online: true },
      slash_commands: [
        { command: o.command ?? '/sym', url: `${base}/api/v1/slack/commands`, description: 'Request access', usage_hint: 'req [flow] [environment]', should_escape: false },
      ],
    },
    oauth_config: { redirect_urls: [`${base}/api/v1/slack/oauth/callback`], scopes: { bot: [...BOT_SCOPES] } },
    settings: {
      event_subscriptions: { request_url: `${base}/api/v1/slack/events`, bot_events: ['app_uninstalled', 'tokens_revoked', 'user_change'] },
      interactivity: { is_enabled: true, request_url: `${base}/api/v1/slack/interactions`, message_menu_options_url: `${base}/api/v1/slack/interactions` },
      org_deploy_enabled: false,
      socket_mode_enabled: false,
      token_rotation_enabled: false,
    },
  }
}
