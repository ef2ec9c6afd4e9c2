/**
 * A server span per API request (continuing the caller's W3C `traceparent`, if any), active while the route
 * handler runs so what it enqueues joins the trace. No-op without a tracing SDK: the span is then invalid and
 * nothing is kept. Registered before any route (it wraps handlers as routes are added).
 */
import { context, propagation, ROOT_CONTEXT, recordError, SpanKind, SpanStatusCode, trace, tracer, type Span } from '@opensym/metrics'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

const spans = new WeakMap<FastifyRequest, Span>()

export default fp(
  async function tracing(app: FastifyInstance) {
    app.addHook('onRequest', (req, _reply, done) => {
      const parent = propagation.extract(ROOT_CONTEXT, req.headers)
      const span = tracer().startSpan(req.method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.url.split('?')[0] } }, parent)
      if (trace.isSpanContextValid(span.spanContext())) spans.set(req, span)
      done()
    })

    app.addHook('onRoute', (route) => {
      const handler = route.handler
      route.handler = function (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
        const span = spans.get(req)
        return span ? context.with(trace.setSpan(context.active(), span), () => handler.call(this, req, reply)) : handler.call(this, req, reply)
      }
    })

    app.addHook('onError', (req, _reply, error, done) => {
      const span = spans.get(req)
      if (span) recordError(span, error)
      done()
    })

    app.addHook('onResponse', (req, reply, done) => {
      const span = spans.get(req)
      if (span) {
        const route = req.routeOptions.url
        if (route) span.updateName(`${req.method} ${route}`).setAttribute('http.route', route)
        span.setAttribute('http.response.status_code', reply.statusCode)
        if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
        spans.delete(req)
      }
      done()
    })
  },
  { name: 'tracing' },
)
