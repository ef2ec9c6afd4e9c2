/** Who is calling, as far as authorization is concerned. */
export interface Principal {
  readonly orgId: string
  readonly userId: string
  readonly userType: 'normal' | 'bot'
  readonly role: 'admin' | 'member' | 'guest'
}

/** Entity writes (what `terraform apply` does) need an admin user or a bot token. */
export const canWriteEntities = (p: Principal): boolean => p.userType === 'bot' || p.role === 'admin'

/** Members may read configuration (e.g. to find a flow's SRN); guests may not. */
export const canReadEntities = (p: Principal): boolean => p.userType === 'bot' || p.role !== 'guest'

/**
 * The audit trail shows who asked for, approved and used access across the org, so only admins and bots (which
 * export it to log pipelines) may read it; members and guests may not, not even their own entries.
 */
export const canReadAudit = (p: Principal): boolean => p.userType === 'bot' || p.role === 'admin'
