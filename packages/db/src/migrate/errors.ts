/** A failure with a message meant for the person running the command (no stack trace needed). */
export class MigrateError extends Error {
  override readonly name = 'MigrateError'
  constructor(
    message: string,
    /** Prisma error code when the engine reported one (e.g. P3005). */
    readonly code?: string,
  ) {
    super(message)
  }
}
