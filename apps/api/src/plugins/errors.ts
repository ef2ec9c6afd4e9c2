/**
 * One error handler for the whole API. Validation failures become 400s naming the field; ApiErrors keep their
 * code; anything else is logged in full and answered with a generic 500 that leaks nothing.
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { EngineError } from '@opensym/engine'
import { ApiError, ERRORS, errorBody, kindOfCode, type FieldError, type ErrorKind } from '../errors.js'

interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  message?: string
}

/** `/params/prompt_fields/0/type` → `params.prompt_fields[0].type`. */
export function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (extra !== undefined) parts.push(extra)
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '')
}

/** A message a person can act on, for one AJV error. */
export function describeAjvError(e: AjvError): FieldError {
  const p = e.params
  switch (e.keyword) {
    case 'required':
      return { field: fieldPath(e.instancePath, String(p.missingProperty)), message: 'is required' }
    case 'additionalProperties':
      return { field: fieldPath(e.instancePath, String(p.additionalProperty)), message: 'is not a known field' }
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map((v) => String(v)).join(', ')
      return { field: fieldPath(e.instancePath), message: `must be one of: ${allowed}` }
    }
    case 'format':
      return { field: fieldPath(e.instancePath), message: p.format === 'uuid' ? 'must be a UUID' : `must be a valid ${String(p.format)}` }
    case 'pattern':
      return {
        field: fieldPath(e.instancePath),
        message: 'must contain only letters, digits, "_", "." and "-", and start with a letter or digit',
      }
    case 'propertyNames':
      return { field: fieldPath(e.instancePath, String(p.propertyName)), message: 'is not an allowed key' }
    case 'type':
      return { field: fieldPath(e.instancePath), message: `must be ${p.type === 'object' ? 'an object' : `a ${String(p.type)}`}` }
    case 'minLength':
      return { field: fieldPath(e.instancePath), message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` }
    case 'maxLength':
      return { field: fieldPath(e.instancePath), message: `must be at most ${String(p.limit)} characters` }
    default:
      return { field: fieldPath(e.instancePath), message: e.message ?? 'is invalid' }
  }
}

function validationErrors(err: FastifyError): FieldError[] {
  const ajv = (err.validation ?? []) as AjvError[]
  // propertyNames also reports a nested pattern error for the same key; keep the clearer one.
  const errors = ajv.filter((e, i) => !(e.keyword === 'pattern' && ajv[i + 1]?.keyword === 'propertyNames')).map(describeAjvError)
  const where = err.validationContext
  const prefix = where === 'body' ? '' : `${where ?? 'request'}.`
  const seen = new Set<string>()
  return errors
    .map((e) => ({ field: where === 'body' ? e.field : `${prefix}${e.field}`.replace(/\.$/, ''), message: e.message }))
    .filter((e) => !seen.has(`${e.field}|${e.message}`) && seen.add(`${e.field}|${e.message}`))
}

const FASTIFY_CODES: Partial<Record<string, ErrorKind>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
}

export default fp(
  async function errors(app: FastifyInstance) {
    app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
      const engineError = (err as unknown) instanceof EngineError ? (err as unknown as EngineError) : undefined
      const engineKind = engineError && kindOfCode(engineError.code)
      if (engineError && engineKind) return reply.code(ERRORS[engineKind].status).send(errorBody(engineKind, engineError.message, engineError.errors))
      if (err instanceof ApiError) {
        if (err.status >= 500) req.log.error({ err }, 'request failed')
        return reply.code(err.status).send(errorBody(err.kind, err.message, err.errors))
      }
      if (err.validation) {
        const errors = validationErrors(err)
        const message = errors.map((e) => `${e.field}: ${e.message}`).join('; ')
        // The Events API answers with its own code, like the engine's own validation does.
        const kind: ErrorKind = /^\/api\/v1\/(events|runs)(\/|\?|$)/.test(req.url) ? 'EVENTS_INVALID_REQUEST' : 'INVALID_REQUEST'
        return reply.code(400).send(errorBody(kind, message, errors))
      }
      const known = err.code ? FASTIFY_CODES[err.code] : undefined
      if (known) return reply.code(ERRORS[known].status).send(errorBody(known, err.message))
      if (err.statusCode === 400 && err instanceof SyntaxError) {
        return reply.code(400).send(errorBody('INVALID_REQUEST', `body is not valid JSON: ${err.message}`))
      }
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        return reply.code(err.statusCode).send(errorBody('INVALID_REQUEST', err.message))
      }
      req.log.error({ err }, 'unhandled error')
      return reply.code(500).send(errorBody('INTERNAL', `internal error; quote request id ${req.id} to support`))
    })
    app.setNotFoundHandler((req, reply) =>
      reply.code(404).send(errorBody('ROUTE_NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`)),
    )
  },
  { name: 'errors' },
)
