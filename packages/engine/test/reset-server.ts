/**
 * A keep-alive HTTP server that answers the first request of each connection and meets a second one on the same
 * connection with a reset — as a server closing an idle keep-alive connection does when a request crosses its close.
 * For tests of what clients do on a stale pooled connection.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net'

export interface ResetServer {
  /** `http://127.0.0.1:<port>` */
  readonly base: string
  /** The requests answered: their connection (1, 2, …), request line and body. */
  readonly requests: Array<{ readonly connection: number; readonly line: string; readonly body: string }>
  /** Requests met with a reset. */
  readonly resets: () => number
  readonly connections: () => number
  /** From now on, reset every request (also the first of a connection). */
  resetEverything(): void
  close(): Promise<void>
}

export async function startResetServer(reply: string): Promise<ResetServer> {
  const requests: Array<{ connection: number; line: string; body: string }> = []
  const sockets = new Set<Socket>()
  let connections = 0
  let resets = 0
  let resetAll = false
  const server = createServer((socket) => {
    sockets.add(socket)
    const connection = ++connections
    let served = 0
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8')
      const end = buffered.indexOf('\r\n\r\n')
      if (end < 0) return
      const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
      if (buffered.length < end + 4 + length) return
      const line = buffered.slice(0, buffered.indexOf('\r\n'))
      const body = buffered.slice(end + 4, end + 4 + length)
      buffered = ''
      if (served++ > 0 || resetAll) {
        resets++
        socket.resetAndDestroy()
        return
      }
      requests.push({ connection, line, body })
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(reply)}\r\nconnection: keep-alive\r\n\r\n${reply}`)
    })
    socket.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    resets: () => resets,
    connections: () => connections,
    resetEverything: () => void (resetAll = true),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
