// Recognising database errors without string-matching messages. Services use these to turn constraint
// violations into domain errors and to retry serialization failures.
import pg from 'pg'
import { Prisma } from './generated/prisma/client.js'

export interface ViolatedConstraint {
  /** Constraint or index name, e.g. "User_orgId_username_key". */
  constraint: string | undefined
  /** Column names, when PostgreSQL reported them instead of a constraint name. */
  fields: string[]
}

interface DriverCause {
  kind?: string
  originalCode?: string
  constraint?: { index?: string; fields?: string[] }
}

interface Classified {
  /** Prisma error code (P2002, ...), when Prisma wrapped the error. */
  code: string | undefined
  /** SQLSTATE reported by PostgreSQL. */
  sqlState: string | undefined
  cause: DriverCause | undefined
  /** The native engine's meta.target, read for completeness. */
  target: unknown
}

// Database errors reach us in three shapes: a PrismaClientKnownRequestError carrying the adapter's details in
// meta.driverAdapterError.cause (raw queries report P2010 plus the SQLSTATE), or - for failures at COMMIT, such
// as most serialization failures - the adapter's bare DriverAdapterError with the same `cause`; statements run
// through `db.sql` (sql.ts) raise pg's own DatabaseError.
function classify(e: unknown): Classified | undefined {
  if (e instanceof pg.DatabaseError) {
    return { code: undefined, sqlState: e.code, cause: e.constraint ? { constraint: { index: e.constraint } } : undefined, target: undefined }
  }
  if (e instanceof Prisma.PrismaClientKnownRequestError) {
    const meta = e.meta as { driverAdapterError?: { cause?: unknown }; target?: unknown } | undefined
    const cause = asCause(meta?.driverAdapterError?.cause)
    return { code: e.code, sqlState: cause?.originalCode, cause, target: meta?.target }
  }
  if (e instanceof Error && e.name === 'DriverAdapterError') {
    const cause = asCause((e as { cause?: unknown }).cause)
    return { code: undefined, sqlState: cause?.originalCode, cause, target: undefined }
  }
  return undefined
}

function asCause(value: unknown): DriverCause | undefined {
  return typeof value === 'object' && value !== null ? (value) : undefined
}

function isUnique(c: Classified): boolean {
  return c.code === 'P2002' || c.sqlState === '23505' || c.cause?.kind === 'UniqueConstraintViolation'
}

function isForeignKey(c: Classified): boolean {
  return c.code === 'P2003' || c.sqlState === '23503' || c.cause?.kind === 'ForeignKeyConstraintViolation'
}

function constraintOf(c: Classified): ViolatedConstraint {
  const fields = c.cause?.constraint?.fields ?? (Array.isArray(c.target) ? c.target.map(String) : [])
  return { constraint: c.cause?.constraint?.index ?? (typeof c.target === 'string' ? c.target : undefined), fields }
}

function matches(info: ViolatedConstraint, on: string | undefined): boolean {
  return on === undefined || info.constraint === on || info.fields.includes(on)
}

/** Which constraint a unique or foreign-key violation is about; undefined for other errors. */
export function violatedConstraint(e: unknown): ViolatedConstraint | undefined {
  const c = classify(e)
  return c && (isUnique(c) || isForeignKey(c)) ? constraintOf(c) : undefined
}

/** Unique violation (P2002 / 23505); with `on`, only if it is that constraint name or involves that column. */
export function isUniqueViolation(e: unknown, on?: string): boolean {
  const c = classify(e)
  return c !== undefined && isUnique(c) && matches(constraintOf(c), on)
}

/** Foreign-key violation (P2003 / 23503), e.g. deleting a row still referenced with onDelete: Restrict. */
export function isForeignKeyViolation(e: unknown, on?: string): boolean {
  const c = classify(e)
  return c !== undefined && isForeignKey(c) && matches(constraintOf(c), on)
}

/** Serialization failure or deadlock (P2034 / 40001 / 40P01): the whole transaction may be retried. */
export function isRetriableTxError(e: unknown): boolean {
  const c = classify(e)
  return c !== undefined && (c.code === 'P2034' || c.sqlState === '40001' || c.sqlState === '40P01' || c.cause?.kind === 'TransactionWriteConflict')
}
